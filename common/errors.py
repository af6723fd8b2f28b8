"""The error tree shared by every part of fedstats.

Each error carries a machine-readable ``reason`` (stable, documented, sent over the wire),
a ``field`` saying where the problem is (a query field, a config key, a column) and a
``hint`` saying how to fix it. Nothing in an error may carry a data value.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ERROR_METADATA_KEY",
    "AccessError",
    "BudgetError",
    "ConfigError",
    "DataError",
    "FedstatsError",
    "QueryError",
    "Reason",
]


class Reason(StrEnum):
    """Every machine-readable reason fedstats gives, with its gRPC status and public text.

    The value is the stable name that crosses the wire (``ErrorDetail.code`` carries it as
    the enum ``fedstats.v1.Reason`` with a ``REASON_`` prefix) and that audit entries and
    provenance record. ``status`` is the name of the ``grpc.StatusCode`` a refusal travels
    with (a name, so that this ground floor need not import grpc); ``text`` says in one
    line what the reason means, for documentation and for people reading a failure.
    """

    status: str
    text: str

    def __new__(cls, value: str, status: str, text: str) -> Reason:
        """A member whose value is its name, carrying its status and text."""
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        member.text = text
        return member

    # The query itself.
    MALFORMED_QUERY = "MALFORMED_QUERY", "INVALID_ARGUMENT", "the query is not well formed"
    UNKNOWN_INDICATOR = (
        "UNKNOWN_INDICATOR",
        "INVALID_ARGUMENT",
        "an indicator is not in the catalogue",
    )
    UNKNOWN_DIMENSION = (
        "UNKNOWN_DIMENSION",
        "INVALID_ARGUMENT",
        "a group or breakdown dimension is unknown",
    )
    TOO_MANY_CELLS = (
        "TOO_MANY_CELLS",
        "INVALID_ARGUMENT",
        "the query asks for more cells than allowed",
    )
    VARIABLE_NOT_PROVIDED = (
        "VARIABLE_NOT_PROVIDED",
        "FAILED_PRECONDITION",
        "the node does not provide a variable the query needs",
    )
    PERIOD_NOT_SERVED = (
        "PERIOD_NOT_SERVED",
        "FAILED_PRECONDITION",
        "the node serves no data for the period",
    )
    DESCRIPTION_CHANGED = (
        "DESCRIPTION_CHANGED",
        "FAILED_PRECONDITION",
        "the query was planned from a description the node no longer serves; describe it again",
    )
    # The ledger.
    QUERY_ID_REUSED = "QUERY_ID_REUSED", "ALREADY_EXISTS", "the query id was used for another query"
    QUERY_IN_PROGRESS = "QUERY_IN_PROGRESS", "ABORTED", "the same query id is being answered; retry"
    DATA_CHANGED = (
        "DATA_CHANGED",
        "FAILED_PRECONDITION",
        "the query id was answered over data or mappings the node has changed since; "
        "a new id gets a new release",
    )
    BUDGET_EXCEEDED = (
        "BUDGET_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "the query would pass the remaining budget",
    )
    QUERY_CAP_EXCEEDED = (
        "QUERY_CAP_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "the query asks more rho than one query may spend",
    )
    COORDINATOR_CAP_EXCEEDED = (
        "COORDINATOR_CAP_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "the coordinator's own cap on this node is spent",
    )
    # Identity: the TLS peer and the signature.
    UNAUTHENTICATED = (
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
        "the caller is not authenticated (--insecure: no signed identity)",
    )
    # NO_CLIENT_CERTIFICATE, UNTRUSTED_CERTIFICATE, CERTIFICATE_EXPIRED and
    # CERTIFICATE_NOT_YET_VALID (proto 13-16) left the catalogue: gRPC's own mutual TLS
    # refuses such peers in the handshake, before any node code runs (docs/tls.md).
    NO_IDENTITY = (
        "NO_IDENTITY",
        "UNAUTHENTICATED",
        "the client certificate names no fedstats identity",
    )
    BAD_SIGNATURE = "BAD_SIGNATURE", "UNAUTHENTICATED", "the query's signature does not verify"
    CERTIFICATE_REVOKED = (
        "CERTIFICATE_REVOKED",
        "PERMISSION_DENIED",
        "the peer's certificate is on the federation's revocation list",
    )
    # Policy.
    NOT_A_COORDINATOR = "NOT_A_COORDINATOR", "PERMISSION_DENIED", "the caller is not a coordinator"
    UNKNOWN_COORDINATOR = (
        "UNKNOWN_COORDINATOR",
        "PERMISSION_DENIED",
        "the node's policy does not list the coordinator",
    )
    SIGNER_NOT_PEER = (
        "SIGNER_NOT_PEER",
        "PERMISSION_DENIED",
        "the query is signed by another party than the TLS peer",
    )
    SIGNER_NOT_ISSUER = (
        "SIGNER_NOT_ISSUER",
        "PERMISSION_DENIED",
        "the signer is not the query's issuer",
    )
    WRONG_AUDIENCE = "WRONG_AUDIENCE", "PERMISSION_DENIED", "the query is addressed to another node"
    STALE_QUERY = (
        "STALE_QUERY",
        "PERMISSION_DENIED",
        "the query was signed outside the accepted time window",
    )
    INDICATOR_NOT_ALLOWED = (
        "INDICATOR_NOT_ALLOWED",
        "PERMISSION_DENIED",
        "the policy does not allow an indicator",
    )
    DIMENSION_NOT_ALLOWED = (
        "DIMENSION_NOT_ALLOWED",
        "PERMISSION_DENIED",
        "the policy does not allow a dimension (a group dimension or a breakdown)",
    )
    TABLE_TOO_FINE = (
        "TABLE_TOO_FINE",
        "PERMISSION_DENIED",
        "a table has more cells than the coordinator's grant allows (max_cells)",
    )
    # Configuration and data on either side.
    INVALID_CONFIG = "INVALID_CONFIG", "FAILED_PRECONDITION", "a configuration file is not valid"
    INVALID_DATA = (
        "INVALID_DATA",
        "FAILED_PRECONDITION",
        "the microdata cannot be served as configured",
    )
    MISSING_COLUMN = (
        "MISSING_COLUMN",
        "FAILED_PRECONDITION",
        "a configured column is not in the data",
    )
    EMPTY_DATASET = (
        "EMPTY_DATASET",
        "FAILED_PRECONDITION",
        "the dataset has no rows after its filters",
    )
    COVERAGE_BELOW_THRESHOLD = (
        "COVERAGE_BELOW_THRESHOLD",
        "FAILED_PRECONDITION",
        "the data map or weigh worse than the node's [dataset] thresholds allow",
    )
    UNMAPPED_OUTCOME = (
        "UNMAPPED_OUTCOME",
        "FAILED_PRECONDITION",
        "an outcome variable has values outside its code map and no unmapped declaration",
    )
    LEDGER_INCONSISTENT = (
        "LEDGER_INCONSISTENT",
        "FAILED_PRECONDITION",
        "the node's ledger disagrees with its signed audit chain or the chain's mirrored head",
    )
    # What the coordinator finds in an answer.
    NO_NODE_KEY = (
        "NO_NODE_KEY",
        "FAILED_PRECONDITION",
        "the coordinator has no public key for the node",
    )
    BAD_RESULT_SIGNATURE = (
        "BAD_RESULT_SIGNATURE",
        "UNAUTHENTICATED",
        "the result is not signed by the node's configured key",
    )
    MALFORMED_RESULT = "MALFORMED_RESULT", "DATA_LOSS", "the node's result cannot be read"
    WRONG_NODE = (
        "WRONG_NODE",
        "UNAUTHENTICATED",
        "the answer comes from another node than the one asked",
    )
    PROTOCOL_MISMATCH = (
        "PROTOCOL_MISMATCH",
        "FAILED_PRECONDITION",
        "the node's tables do not match the plan",
    )
    INCOMPATIBLE_RELEASE = (
        "INCOMPATIBLE_RELEASE",
        "FAILED_PRECONDITION",
        "the node's release cannot answer this coordinator's query",
    )
    SECURE_ROUND_REFUSED = (
        "SECURE_ROUND_REFUSED",
        "FAILED_PRECONDITION",
        "the node refuses a secure-aggregation round or one of its steps",
    )
    # Publishing.
    UNSUPPORTED_FORMAT = (
        "UNSUPPORTED_FORMAT",
        "INVALID_ARGUMENT",
        "an output format cannot express the rows",
    )
    UNSUPPORTED_TIME_PERIOD = (
        "UNSUPPORTED_TIME_PERIOD",
        "INVALID_ARGUMENT",
        "a reference period has no SDMX form",
    )
    DUPLICATE_OBSERVATION = (
        "DUPLICATE_OBSERVATION",
        "FAILED_PRECONDITION",
        "two rows share one SDMX key",
    )
    # Transport: a call that ended with a gRPC status and no fedstats detail.
    UNAVAILABLE = "UNAVAILABLE", "UNAVAILABLE", "the node could not be reached"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED", "the node did not answer in time"
    UNIMPLEMENTED = "UNIMPLEMENTED", "UNIMPLEMENTED", "the node does not offer the method called"
    UNKNOWN = "UNKNOWN", "UNKNOWN", "the call failed without a reason"
    INTERNAL = "INTERNAL", "INTERNAL", "an internal error; the party's log has the details"

    @classmethod
    def for_transport(cls, status_name: str) -> Reason:
        """The reason of a call that ended with a bare gRPC status (no fedstats detail)."""
        reason = cls.__members__.get(status_name, cls.UNKNOWN)
        return reason if reason.status == status_name else cls.UNKNOWN


# Binary trailing-metadata key that carries a serialized fedstats.v1.ErrorDetail beside
# the gRPC status of a refused call.
ERROR_METADATA_KEY = "fedstats-error-bin"


class FedstatsError(Exception):
    """Base of every error fedstats raises on purpose.

    Attributes:
        reason: Stable machine-readable reason from the catalogue, e.g.
            ``Reason.UNKNOWN_INDICATOR``.
        field: Where the problem is: a query field, a config key, a column.
        hint: How to fix it.
    """

    default_reason = Reason.INTERNAL

    def __init__(
        self, message: str, *, reason: Reason | None = None, field: str = "", hint: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.field = field
        self.hint = hint

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class QueryError(FedstatsError):
    """A query that cannot be compiled: unknown indicator, dimension, comparator, rho."""

    default_reason = Reason.MALFORMED_QUERY


class AccessError(FedstatsError):
    """A query refused by the node's trust rules: identity, signature, policy.

    Every refusal names its precise reason (``UNKNOWN_COORDINATOR``, ``STALE_QUERY`` ...):
    there is no generic one.
    """

    def __init__(self, message: str, *, reason: Reason, field: str = "", hint: str = "") -> None:
        super().__init__(message, reason=reason, field=field, hint=hint)


class BudgetError(FedstatsError):
    """A query refused by the privacy budget: nothing was charged."""

    default_reason = Reason.BUDGET_EXCEEDED


class ConfigError(FedstatsError):
    """A configuration file that does not say what fedstats needs."""

    default_reason = Reason.INVALID_CONFIG


class DataError(FedstatsError):
    """Microdata that cannot be served as configured (missing column, empty selection)."""

    default_reason = Reason.INVALID_DATA

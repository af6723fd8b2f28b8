"""The error tree shared by every part of fedstats.

Each error carries a machine-readable ``reason`` (stable, documented, sent over the wire),
a ``field`` saying where the problem is (a query field, a config key, a column) and a
``hint`` saying how to fix it. Nothing in an error may carry a data value.
"""

from __future__ import annotations

__all__ = [
    "ERROR_METADATA_KEY",
    "AccessError",
    "BudgetError",
    "ConfigError",
    "DataError",
    "FedstatsError",
    "QueryError",
]

# Binary trailing-metadata key that carries a serialized fedstats.v1.ErrorDetail beside
# the gRPC status of a refused call.
ERROR_METADATA_KEY = "fedstats-error-bin"


class FedstatsError(Exception):
    """Base of every error fedstats raises on purpose.

    Attributes:
        reason: Stable machine-readable reason, e.g. ``"UNKNOWN_INDICATOR"``.
        field: Where the problem is: a query field, a config key, a column.
        hint: How to fix it.
    """

    default_reason = "INTERNAL"

    def __init__(
        self, message: str, *, reason: str | None = None, field: str = "", hint: str = ""
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

    default_reason = "MALFORMED_QUERY"


class AccessError(FedstatsError):
    """A query refused by the node's trust rules: identity, signature, policy."""

    default_reason = "PERMISSION_DENIED"


class BudgetError(FedstatsError):
    """A query refused by the privacy budget: nothing was charged."""

    default_reason = "BUDGET_EXCEEDED"


class ConfigError(FedstatsError):
    """A configuration file that does not say what fedstats needs."""

    default_reason = "INVALID_CONFIG"


class DataError(FedstatsError):
    """Microdata that cannot be served as configured (missing column, empty selection)."""

    default_reason = "INVALID_DATA"

"""The node's policy, deny by default: which coordinators may ask what, and how much.

The node, not the coordinator, is the authority. A coordinator that is not listed under
``[[coordinators]]`` gets nothing; a listed one may ask only for its indicators, group
dimensions and breakdowns, for tables no finer than its ``max_cells`` population cells,
up to its own rho cap on this population (every period of one register shares it),
within the node-wide limits of ``[policy]`` and ``[privacy]``.

The finest table is limited by its number of cells, a fact of the query alone, rather
than by a minimum expected cell size: that would read the true number of persons, and
a refusal that depends on the data discloses something of it outside the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.errors import AccessError, QueryError, Reason
from common.tomlfile import Section
from indicators.catalogue import CATALOGUE
from indicators.spec import BREAKDOWNS, GROUP_DIMS, Plan, is_local
from security.config import public_key

__all__ = ["ANY", "CoordinatorGrant", "Policy", "parse_policy"]

ANY = "*"


@dataclass(frozen=True)
class CoordinatorGrant:
    """What one coordinator may do on this node.

    Attributes:
        id: The coordinator's id (its certificate says ``fedstats://coordinator/<id>``).
        public_key: Its Ed25519 key: queries must carry its signature.
        rho_cap: Total rho it may spend on this dataset.
        indicators: Catalogue entries it may ask for (``*`` = all).
        group_dims: Group dimensions it may ask for (``*`` = all).
        breakdowns: Breakdowns it may ask for (``*`` = all; empty = none).
        max_cells: The most population cells (group x breakdown combinations, outcome
            categories not counted) of any one table it may ask for; None = no limit.
    """

    id: str
    public_key: Ed25519PublicKey
    rho_cap: float
    indicators: frozenset[str]
    group_dims: frozenset[str]
    breakdowns: frozenset[str] = frozenset({ANY})
    max_cells: int | None = None


@dataclass(frozen=True)
class Policy:
    """Node-wide limits and the coordinators' grants."""

    coordinators: dict[str, CoordinatorGrant] = field(default_factory=dict)
    max_cells_per_query: int = 10_000
    window_seconds: float = 300.0

    def grant(self, coordinator: str) -> CoordinatorGrant:
        """The grant of a coordinator, or AccessError when it has none."""
        if coordinator not in self.coordinators:
            raise AccessError(
                f"coordinator {coordinator!r} is not allowed to query this node",
                reason=Reason.UNKNOWN_COORDINATOR,
                field="coordinator",
                hint="the node operator must list it under [[coordinators]]",
            )
        return self.coordinators[coordinator]

    def check(self, grant: CoordinatorGrant, plan: Plan) -> None:
        """Raise when the plan asks for something the grant or the limits do not allow."""
        for name in plan.query.indicators:
            if ANY not in grant.indicators and name not in grant.indicators:
                raise AccessError(
                    f"coordinator {grant.id!r} may not ask for {name!r}",
                    reason=Reason.INDICATOR_NOT_ALLOWED,
                    field="indicators",
                    hint=f"allowed: {', '.join(sorted(grant.indicators))}",
                )
        if ANY not in grant.group_dims and plan.query.group_dim not in grant.group_dims:
            raise AccessError(
                f"coordinator {grant.id!r} may not ask by {plan.query.group_dim!r}",
                reason=Reason.DIMENSION_NOT_ALLOWED,
                field="group_dim",
                hint=f"allowed: {', '.join(sorted(grant.group_dims))}",
            )
        for name in plan.query.breakdowns:
            if ANY not in grant.breakdowns and name not in grant.breakdowns:
                raise AccessError(
                    f"coordinator {grant.id!r} may not ask for the breakdown {name!r}",
                    reason=Reason.DIMENSION_NOT_ALLOWED,
                    field="breakdowns",
                    hint=f"allowed: {', '.join(sorted(grant.breakdowns)) or 'none'}",
                )
        _check_fineness(grant, plan)
        if plan.n_cells > self.max_cells_per_query:
            raise QueryError(
                f"the query would release {plan.n_cells} cells, over this node's limit of "
                f"{self.max_cells_per_query}",
                reason=Reason.TOO_MANY_CELLS,
                field="breakdowns",
                hint="ask for fewer breakdowns or indicators",
            )


def _check_fineness(grant: CoordinatorGrant, plan: Plan) -> None:
    if grant.max_cells is None:
        return
    for table in plan.tables:
        cells = table.n_cells // len(table.outcome.codes)
        if cells > grant.max_cells:
            dims = " x ".join(d.name for d in table.all_dims[:-1])
            raise AccessError(
                f"coordinator {grant.id!r} may ask for tables of at most {grant.max_cells} "
                f"cells; the {table.outcome.name} table by {dims} has {cells}",
                reason=Reason.TABLE_TOO_FINE,
                field="breakdowns",
                hint="ask for fewer breakdowns; the node operator sets max_cells under "
                "[[coordinators]]",
            )


def parse_policy(top: Section) -> Policy:
    """Read ``[policy]`` and ``[[coordinators]]``; no coordinators means no queries."""
    sec = top.sub("policy", required=False)
    sec.check_keys({"max_cells_per_query", "window_seconds"})
    grants: dict[str, CoordinatorGrant] = {}
    for entry in top.tables("coordinators"):
        grant = _grant(entry)
        if grant.id in grants:
            raise entry.error("id", f"coordinator {grant.id!r} listed twice")
        grants[grant.id] = grant
    return Policy(
        coordinators=grants,
        max_cells_per_query=int(sec.positive("max_cells_per_query", 10_000)),
        window_seconds=sec.positive("window_seconds", 300.0),
    )


def _names(
    sec: Section, key: str, known: tuple[str, ...] | list[str], local: bool = False
) -> frozenset[str]:
    """Names from ``known`` (or ``*``); with ``local``, any ``local:NAME`` too."""
    values = sec.get(key, list, [ANY])
    for value in values:
        if local and isinstance(value, str) and is_local(value):
            continue
        if value != ANY and value not in known:
            raise sec.error(key, f"unknown name {value!r}", hint=f"known: {', '.join(known)}")
    return frozenset(values)


def _grant(sec: Section) -> CoordinatorGrant:
    sec.check_keys(
        {"id", "public_key", "rho_cap", "indicators", "group_dims", "breakdowns", "max_cells"}
    )
    max_cells: int | None = sec.get("max_cells", int, None)
    if max_cells is not None and max_cells < 1:
        raise sec.error("max_cells", f"must be at least 1, got {max_cells}")
    return CoordinatorGrant(
        id=sec.get("id", str),
        public_key=public_key(sec, "public_key"),
        rho_cap=sec.positive("rho_cap"),
        indicators=_names(sec, "indicators", list(CATALOGUE)),
        group_dims=_names(sec, "group_dims", GROUP_DIMS, local=True),
        breakdowns=_names(sec, "breakdowns", BREAKDOWNS),
        max_cells=max_cells,
    )

"""A node's national poverty line: configured, or computed by the node once per period.

Eurostat's at-risk-of-poverty line is 60% of the *national* median equivalised disposable
income of all persons, of all ages (ilc_li32/ilc_li33). A node either gives that line
(``[dataset] poverty_line = 14218.0`` with its source) or, when its dataset is its
country's whole population (a register or census) or a national survey, computes it
(``poverty_line = "compute"``, ``poverty_line_rho``):

- it releases one noisy histogram of income, in the public income bins, over every
  person of every age (survey weights clipped as for any table), at ``poverty_line_rho``;
- that release goes through the ledger as its own query, ``national-poverty-line:<period>``:
  charged once, stored, its hash in the signed audit chain like every answer's;
- the median is read from the noisy histogram (post-processing: no further cost) and 60%
  of it is the period's line, used by every query of the period.

A restart reserves the same query id again and gets the stored release back: the same
line, nothing charged. The line is recorded as ``computed, rho=...`` wherever a configured
line shows its source.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from common.errors import FedstatsError, QueryError, Reason
from indicators.catalogue import MAX_AGE
from indicators.spec import Query, TableSpec, compile_query
from indicators.variables import CATEGORICAL
from node.config import DatasetConfig
from node.engines import TableEngine
from node.ledger import Ledger, Request, StoredAnswer
from privacy.estimators import Cells, quantile_linear
from privacy.gaussian import release

__all__ = ["LINE_QUERY", "POVERTY_SHARE", "NationalLine", "configured", "line_spec", "obtain"]

LINE_QUERY = "national-poverty-line"  # query ids of line releases: LINE_QUERY:<period>
POVERTY_SHARE = 0.6  # Eurostat's line: 60% of the national median


@dataclass(frozen=True)
class NationalLine:
    """A period's at-risk-of-poverty line, with where it comes from."""

    value: float
    currency: str
    source: str


def configured(dataset: DatasetConfig) -> NationalLine | None:
    """The line the operator gave in ``[dataset]``, if any."""
    if dataset.poverty_line is None:
        return None
    source = dataset.poverty_line_source or "configured"
    return NationalLine(dataset.poverty_line, dataset.poverty_line_currency, source)


def line_spec() -> TableSpec:
    """The released table: income bins over every person of every age, no breakdown."""
    _, median = compile_query(Query(("median_income_ratio",), "citizen")).indicator(
        "median_income_ratio"
    )
    return TableSpec(0, MAX_AGE, (), median.outcome)


def line_request(period: str, rho: float) -> Request:
    """The ledger request of a period's line release (its id is reserved for it)."""
    what = {"release": LINE_QUERY, "period": period, "table": line_spec().key, "rho": rho}
    spec_hash = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()
    return Request(query_id=f"{LINE_QUERY}:{period}", spec_hash=spec_hash, rho=rho)


def obtain(
    ledger: Ledger, engine: TableEngine, sensitivity: int, dataset: DatasetConfig
) -> NationalLine:
    """The period's computed line: read back from the ledger, or released now.

    Raises:
        BudgetError: The release passes the node's per-query cap or remaining budget.
        QueryError: The noisy histogram gives no usable median: the release is kept and
            charged all the same, and every later call of the period gets this refusal.
    """
    assert dataset.poverty_line_rho is not None
    outcome = ledger.reserve(line_request(dataset.time_period, dataset.poverty_line_rho))
    if isinstance(outcome, StoredAnswer):
        _check_logged(ledger, outcome)
        stored = json.loads(outcome.answer)
        if stored["line"] is None:  # this period's release gave no usable median
            raise _too_noisy(dataset)
        return NationalLine(stored["line"], dataset.poverty_line_currency, _source(stored["rho"]))
    try:
        spec = line_spec()
        noisy = release(engine.count(spec).counts, sensitivity, dataset.poverty_line_rho)
    except BaseException:
        ledger.cancel(outcome)  # no noise was drawn: nothing has been seen
        raise
    line: float | None = POVERTY_SHARE * median_of(noisy.values, noisy.sigma)
    if line is not None and not (math.isfinite(line) and line > 0):
        line = None
    record = {
        "counts": noisy.values.tolist(),
        "sigma": noisy.sigma,
        "rho": noisy.rho,
        "sensitivity": noisy.sensitivity,
        "line": line,
    }
    # Committed even when the median is unusable: whether it is usable is read from the
    # noisy release, so that release is spent; giving the charge back would allow a new
    # free draw on every retry.
    ledger.commit(outcome, json.dumps(record).encode())
    if line is None:
        raise _too_noisy(dataset)
    return NationalLine(line, dataset.poverty_line_currency, _source(noisy.rho))


def _too_noisy(dataset: DatasetConfig) -> QueryError:
    return QueryError(
        f"the national income distribution of {dataset.time_period} was too noisy for a "
        "median at this rho (the release is spent; the period has no computed line)",
        reason=Reason.VARIABLE_NOT_PROVIDED,
        field="dataset.poverty_line_rho",
        hint="configure the national line for this period ([dataset] poverty_line = ...)",
    )


def _check_logged(ledger: Ledger, stored: StoredAnswer) -> None:
    """Refuse a stored line whose bytes are not the ones the signed audit chain logged."""
    logged = ledger.released_sha256(stored.answered_by)
    if logged != hashlib.sha256(stored.answer).hexdigest():
        raise FedstatsError(
            f"the stored national poverty line ({stored.answered_by}) does not match the "
            "release the audit log signed: the ledger was altered",
            reason=Reason.LEDGER_INCONSISTENT,
            field="ledger",
            hint="check it with `fedstats node audit --verify`; restore the ledger from a backup",
        )


def median_of(counts: npt.NDArray[np.int64], sigma: float) -> float:
    """The median of a noisy income histogram in the public income bins."""
    edges = CATEGORICAL["income"].edges
    cells = Cells.of(counts, sigma)
    bins = np.arange(len(counts), dtype=np.intp)
    mask = np.ones(len(counts), dtype=bool)
    return quantile_linear(cells, mask, bins, edges).value


def _source(rho: float) -> str:
    return f"computed, rho={rho:g}"

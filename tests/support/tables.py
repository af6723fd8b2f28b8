"""True contingency tables from microdata made in a test, and noisy releases of them.

Independent of the node's engines: a frame whose columns hold each table dimension's codes
(``age`` as its band code) is counted with numpy, so tests of the coordinator's pure
functions feed it tables built without the code under test.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from coordinator.results import NodeTables
from indicators.spec import TableSpec
from privacy.disclosure import DisclosureRules
from privacy.estimators import Cells
from privacy.gaussian import release

__all__ = ["noisy_node", "true_table"]


def true_table(
    frame: pd.DataFrame, spec: TableSpec, weight: str | None = None
) -> npt.NDArray[np.int64]:
    """The table's true (weighted, rounded) counts, in the spec's cell order.

    Raises:
        ValueError: When a row holds a code outside a dimension's code list.
    """
    index = np.zeros(len(frame), dtype=np.int64)
    for dim in spec.all_dims:
        codes = pd.Categorical(frame[dim.name], categories=list(dim.codes)).codes
        if (codes < 0).any():
            raise ValueError(f"{dim.name} holds codes outside {dim.codes}")
        index = index * len(dim.codes) + codes
    weights = np.ones(len(frame)) if weight is None else frame[weight].to_numpy(np.float64)
    counts = np.bincount(index, weights=weights, minlength=spec.n_cells)
    return np.rint(counts).astype(np.int64)


def noisy_node(
    node_id: str,
    spec: TableSpec,
    true: npt.NDArray[np.int64],
    rho: float,
    *,
    country: str = "XX",
    rules: DisclosureRules | None = None,
    poverty_line: float | None = None,
) -> NodeTables:
    """One register node's release of ``true`` with real OpenDP noise at ``rho`` (no margins)."""
    noisy = release(true, 1, rho)
    cells = Cells.of(noisy.values.astype(np.float64), noisy.sigma)
    return NodeTables(
        node_id=node_id,
        geo=node_id.upper(),
        time_period="2024",
        source="register",
        rules=rules or DisclosureRules(min_count=10, unreliable_below=0, name="register"),
        cells={spec.key: cells},
        cell_flags={spec.key: []},
        poverty_line=poverty_line,
        country=country,
    )

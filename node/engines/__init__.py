"""Table engines: where a node's true counts are computed (DESIGN section 3, [dataset] engine).

Every engine answers the same question — the true counts (and weighted sums) of one table
spec over the node's harmonised data and population filter — and returns exactly what the
in-memory engine returns. Noise, the ledger, flags and everything after stay in the node
(`node.service`); nothing here releases anything.

- ``memory`` (`node.engines.memory`): the node reads the file and keeps code arrays.
- ``duckdb``, ``postgresql``, ``spark`` (`node.engines.sql`): the harmonisation and the
  filter compile, with the table spec, into one ``GROUP BY`` that runs inside the data
  holder's engine; only the group table (a few thousand rows) reaches Python.
"""

from __future__ import annotations

from typing import Protocol

from indicators.spec import TableSpec
from indicators.variables import Variable
from node.config import NodeConfig
from node.engine import TableCounts
from node.harmonise import Coverage, WeightClipping

__all__ = ["ENGINES", "TableEngine", "open_engine"]

ENGINES = ("memory", "duckdb", "postgresql", "spark")
"""Every value of ``[dataset] engine``."""


class TableEngine(Protocol):
    """What the node asks of the engine holding its data."""

    name: str
    rows: int
    weighted: bool
    provided: tuple[str, ...]
    coverage: dict[str, Coverage]
    clipping: WeightClipping | None  # what clipping the weights took away (surveys)

    def variable(self, name: str) -> Variable:
        """A provided variable (or the node's own local one) by name."""
        ...

    def known_shares(self) -> dict[str, float]:
        """Per provided variable, the share of persons whose value is known."""
        ...

    def require(self, spec: TableSpec) -> None:
        """Raise QueryError when the node does not provide a variable the table reads."""
        ...

    def count(self, spec: TableSpec) -> TableCounts:
        """The table's true counts (never leaves the node)."""
        ...

    def content_digest(self) -> str:
        """Digest of the data the engine read (`node.fingerprint`).

        Database engines: their start-up scan; the memory engine: its harmonised arrays.
        """
        ...

    def close(self) -> None:
        """Release connections and sessions."""
        ...


def open_engine(config: NodeConfig) -> TableEngine:
    """The engine ``[dataset] engine`` names, over the period's dataset.

    Raises:
        DataError: When the data cannot be read (missing file, table or column, no rows).
    """
    name = config.dataset.engine
    if name == "memory":
        from node.engines.memory import MemoryEngine

        return MemoryEngine.load(config)
    from node.engines.sql import SqlEngine

    if name == "duckdb":
        from node.engines.duckdb import DuckDBBackend

        return SqlEngine(config, DuckDBBackend(config))
    if name == "postgresql":
        from node.engines.postgresql import PostgresBackend

        return SqlEngine(config, PostgresBackend(config))
    from node.engines.spark import SparkBackend

    return SqlEngine(config, SparkBackend(config))

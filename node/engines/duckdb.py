"""DuckDB over CSV or Parquet files (globs allowed), without loading them into Python."""

from __future__ import annotations

from typing import Any

import duckdb
from sqlglot import exp

from common.errors import DataError
from node.config import NodeConfig

__all__ = ["DuckDBBackend"]


class DuckDBBackend:
    """An in-process DuckDB reading the dataset's files where they are.

    CSV files are read as text (``all_varchar``), exactly as the memory engine reads them,
    so that a code such as ``01`` stays ``01``; Parquet keeps its types.
    """

    dialect = "duckdb"

    def __init__(self, config: NodeConfig) -> None:
        path = config.dataset.path
        if path is None:
            raise DataError(
                f"{config.file}: dataset.path: the duckdb engine reads files",
                field="dataset.path",
                hint='path = "register-*.parquet" (globs allowed)',
            )
        self._path = str(path)
        self._csv = path.suffix.lower() == ".csv"
        self._connection = duckdb.connect(":memory:")
        self._file = config.file

    def source(self) -> exp.Expr:
        """``read_csv(path, all_varchar = TRUE)`` or ``read_parquet(path)``."""
        path = exp.Literal.string(self._path)
        if self._csv:
            option = exp.EQ(this=exp.column("all_varchar"), expression=exp.true())
            return exp.Anonymous(this="read_csv", expressions=[path, option])
        return exp.Anonymous(this="read_parquet", expressions=[path])

    def columns(self) -> list[str]:
        """The files' column names."""
        query = exp.select(exp.Star()).from_(self.source()).limit(0)
        try:
            cursor = self._connection.execute(query.sql(self.dialect))
        except duckdb.Error as error:
            raise DataError(
                f"{self._file}: dataset.path: cannot read {self._path}: {error}",
                field="dataset.path",
                hint="paths are relative to the config file; globs such as *.parquet work",
            ) from error
        return [d[0] for d in cursor.description]

    def rows(self, query: exp.Expr) -> list[tuple[Any, ...]]:
        """Run a query."""
        return self._connection.execute(query.sql(self.dialect)).fetchall()

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

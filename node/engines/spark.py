"""Spark SQL: the table counted by Spark over a catalogue table or Parquet files."""

from __future__ import annotations

import uuid
from typing import Any

from sqlglot import exp

from common.errors import DataError
from node.config import NodeConfig
from node.engines.postgresql import table_name

__all__ = ["SparkBackend", "spark_session"]


def spark_session(master: str) -> Any:
    """The process's Spark session (created on first use), lenient casts (no ANSI errors)."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master(master)
        .appName("fedstats-node")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.conf.set("spark.sql.ansi.enabled", "false")  # a bad number is NULL, as elsewhere
    return session


class SparkBackend:
    """Spark (local mode by default) reading ``table`` or the Parquet files at ``path``."""

    dialect = "spark"

    def __init__(self, config: NodeConfig) -> None:
        self._file = config.file
        self._spark = spark_session(config.dataset.spark_master)
        self._view: str | None = None
        if config.dataset.table is not None:
            self._relation = table_name(config.dataset.table)
            self._what = f"dataset.table: {config.dataset.table!r}"
            return
        path = str(config.dataset.path)
        self._what = f"dataset.path: {path}"
        try:
            frame = self._spark.read.parquet(path)
        except Exception as error:  # Spark raises its own AnalysisException family
            raise DataError(
                f"{self._file}: dataset.path: cannot read {path}: {error}",
                field="dataset.path",
                hint="paths are relative to the config file; globs such as *.parquet work",
            ) from error
        self._view = f"fedstats_{uuid.uuid4().hex}"
        frame.createOrReplaceTempView(self._view)
        self._relation = exp.Table(this=exp.to_identifier(self._view, quoted=True))

    def source(self) -> exp.Expr:
        """The catalogue table, or a temporary view over the Parquet files."""
        return self._relation.copy()

    def columns(self) -> list[str]:
        """The relation's column names."""
        query = exp.select(exp.Star()).from_(self.source()).limit(0)
        try:
            return list(self._spark.sql(query.sql(self.dialect)).columns)
        except Exception as error:
            raise DataError(
                f"{self._file}: {self._what}: cannot read it: {error}",
                field=self._what.split(":")[0],
                hint="name a table in the catalogue, or Parquet files",
            ) from error

    def rows(self, query: exp.Expr) -> list[tuple[Any, ...]]:
        """Run a query; rows collected as tuples (no pandas)."""
        return [tuple(row) for row in self._spark.sql(query.sql(self.dialect)).collect()]

    def close(self) -> None:
        """Drop the temporary view; the session stays for the process."""
        if self._view is not None:
            self._spark.catalog.dropTempView(self._view)

"""PostgreSQL: the table counted by the server, through libpq (psycopg)."""

from __future__ import annotations

from typing import Any

import psycopg
from sqlglot import exp

from common.errors import DataError
from node.config import NodeConfig

__all__ = ["PostgresBackend", "table_name"]


def table_name(name: str) -> exp.Table:
    """``schema.table`` (or ``table``) as quoted identifiers: never parsed as SQL."""
    schema, _, table = name.rpartition(".")
    return exp.Table(
        this=exp.to_identifier(table, quoted=True),
        db=exp.to_identifier(schema, quoted=True) if schema else None,
    )


class PostgresBackend:
    """A read-only session on the data holder's PostgreSQL server.

    ``url`` is a libpq connection string or URI without a password: libpq reads it from
    ``PGPASSWORD`` or ``~/.pgpass``. Every transaction of the session is read-only, on top
    of the read-only role the node should be given.
    """

    dialect = "postgres"

    def __init__(self, config: NodeConfig) -> None:
        url, table = config.dataset.url, config.dataset.table
        assert url is not None and table is not None  # checked by the config reader
        self._file = config.file
        self._table = table
        try:
            self._connection = psycopg.connect(
                url, autocommit=True, options="-c default_transaction_read_only=on"
            )
        except psycopg.Error as error:
            raise DataError(
                f"{config.file}: dataset.url: cannot connect to PostgreSQL: {error}",
                field="dataset.url",
                hint="check host, port, database and user; the password comes from "
                "PGPASSWORD or ~/.pgpass",
            ) from error

    def source(self) -> exp.Expr:
        """The configured table or view."""
        return table_name(self._table)

    def columns(self) -> list[str]:
        """The table's column names."""
        query = exp.select(exp.Star()).from_(self.source()).limit(0)
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(query.sql(self.dialect).encode())
                return [d.name for d in cursor.description or ()]
        except psycopg.Error as error:
            raise DataError(
                f"{self._file}: dataset.table: cannot read {self._table!r}: {error}",
                field="dataset.table",
                hint="name a table or view the node's role may read, as schema.table",
            ) from error

    def rows(self, query: exp.Expr) -> list[tuple[Any, ...]]:
        """Run a query."""
        with self._connection.cursor() as cursor:
            cursor.execute(query.sql(self.dialect).encode())
            return cursor.fetchall()

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

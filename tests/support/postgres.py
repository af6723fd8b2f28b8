"""A real PostgreSQL server for the tests: Debian's binaries, a temporary cluster.

``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres``
user (the package creates it) and the commands run as that user. `.ci/run` installs the
package when it is missing; a machine without it fails these tests with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from psycopg import sql

READER = "fedstats_ro"
"""The read-only role the nodes connect as."""


@dataclass(frozen=True)
class PostgresServer:
    """A running cluster: connect as the superuser through ``admin_url``."""

    directory: Path
    port: int
    bin: Path

    @property
    def admin_url(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres"

    @property
    def reader_url(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=postgres user={READER}"


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    pytest.fail("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does)")


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_postgres() -> PostgresServer:
    """initdb and pg_ctl start a throwaway cluster on a free port of 127.0.0.1."""
    bin_dir = _binaries()
    directory = Path(tempfile.mkdtemp(prefix="fedstats-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    data = directory / "data"
    subprocess.run(
        _as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "start",
                   "-l", str(directory / "log")]),
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = PostgresServer(directory, port, bin_dir)
    with psycopg.connect(server.admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(READER)))
    return server


def stop_postgres(server: PostgresServer) -> None:
    """Stop the cluster and remove its directory."""
    subprocess.run(
        _as_owner([str(server.bin / "pg_ctl"), "-D", str(server.directory / "data"), "-m",
                   "immediate", "stop"]),
        check=False,
        capture_output=True,
    )  # fmt: skip
    shutil.rmtree(server.directory, ignore_errors=True)


def load_table(server: PostgresServer, name: str, frame: pd.DataFrame) -> None:
    """A typed table from a frame (text, bigint, double), readable by the reader role."""
    types = {"int64": "bigint", "float64": "double precision"}
    columns = sql.SQL(", ").join(
        [
            sql.SQL("{} {}").format(sql.Identifier(str(c)), sql.SQL(types.get(str(t), "text")))
            for c, t in frame.dtypes.items()
        ]
    )
    table = sql.Identifier(name)
    with psycopg.connect(server.admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        connection.execute(sql.SQL("CREATE TABLE {} ({})").format(table, columns))
        with connection.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(table)) as copy:
            for row in frame.itertuples(index=False):
                copy.write_row([None if pd.isna(v) else v for v in row])
        connection.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(table, sql.Identifier(READER))
        )

"""Fixtures shared by the tests; their helpers live in ``tests/support``."""

from __future__ import annotations

import os

# gRPC core logs every connection teardown at INFO; keep the test output readable.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cities import PERSONS, ServeCityFn, SyntheticCities
from tests.support.nodes import RunningNode, ServeFn, start_node
from tests.support.postgres import PostgresServer, start_postgres, stop_postgres


@pytest.fixture
def serve() -> Iterator[ServeFn]:
    """Start nodes from config files; all are stopped at teardown."""
    running: list[RunningNode] = []

    def start(config_path: Path) -> RunningNode:
        node = start_node(config_path)
        running.append(node)
        return node

    yield start
    for node in running:
        node.stop()


@pytest.fixture(scope="session")
def cities(tmp_path_factory: pytest.TempPathFactory) -> SyntheticCities:
    """Synthetic city files for the session, each written once on first use."""
    return SyntheticCities(tmp_path_factory.mktemp("cities"))


@pytest.fixture
def serve_city(serve: ServeFn, tmp_path: Path, cities: SyntheticCities) -> ServeCityFn:
    """Start nodes serving synthetic cities, their configs and state in ``tmp_path``."""

    def start(
        node_id: str = "vienna",
        city: str | None = None,
        *,
        persons: int = PERSONS,
        seed: int = 0,
        rho_budget: float = 1e9,
        max_rho: float = 1e9,
        where: str = "",
        extra: str = "",
        without: tuple[str, ...] = (),
    ) -> RunningNode:
        config = tmp_path / f"{node_id}.toml"
        config.write_text(
            cities.node_toml(
                node_id,
                city,
                persons=persons,
                seed=seed,
                rho_budget=rho_budget,
                max_rho=max_rho,
                where=where,
                extra=extra,
                without=without,
            )
        )
        return serve(config)

    return start


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server the test session starts (and stops) itself."""
    server = start_postgres()
    yield server
    stop_postgres(server)


@pytest.fixture(scope="session")
def spark() -> object:
    """The session's one Spark session, in local mode (what a spark node uses)."""
    from node.engines.spark import spark_session

    return spark_session("local[1]")

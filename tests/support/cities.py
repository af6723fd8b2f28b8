"""Synthetic cities made by the project (`fedstats.synth`) served by test nodes, so that
the tests of security, budget and outputs run on any checkout."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fedstats import synth
from tests.support.nodes import RunningNode
from tests.support.pki import pki

PERSONS = 5_000
"""Persons in a synthetic city file unless a test asks for another size."""


def city_node_toml(
    node_id: str,
    city: str,
    data: Path,
    *,
    rho_budget: float = 1e9,
    max_rho: float = 1e9,
    where: str = "",
    extra: str = "",
    without: tuple[str, ...] = (),
) -> str:
    """A node config serving a synthetic city's file, trusting the test coordinator.

    Args:
        node_id: The node's id; its state directory is ``state-<node_id>`` beside the
            config. A node id other than the city's keeps the city's data and variables
            but gets its own geo code (the upper-cased node id).
        city: The `fedstats.synth` city whose file ``data`` is.
        data: The file, absolute or relative to the config.
        rho_budget: ``[privacy] rho_budget``.
        max_rho: ``[privacy] max_rho_per_query``.
        where: A ``[dataset] where`` table in TOML (``{ column = "value" }``), if any.
        extra: TOML appended after ``[privacy]`` (more sections).
        without: Harmonised variables the node does not map, although the city has them.
    """
    facts = synth.city_facts(city)
    geo = facts.geo if node_id == facts.id else node_id.upper()
    max_weight = synth.sampling(city).max_weight
    return (
        textwrap.dedent(f"""
            [node]
            id = "{node_id}"
            geo = "{geo}"
            name = "{facts.name}"
            country = "{facts.country}"
            listen = "127.0.0.1:0"
            state_dir = "state-{node_id}"

            [dataset]
            path = "{data}"
            time_period = "{facts.time_period}"
            """)
        + (f"where = {where}\n" if where else "")
        + synth.dataset_toml(city)
        + textwrap.dedent(f"""
            [privacy]
            rho_budget = {rho_budget}
            max_rho_per_query = {max_rho}
            """)
        + (f"max_weight = {max_weight}\n" if max_weight is not None else "")
        + extra
        + variables_toml(city, without)
        + pki().node_trust_toml(node_id)
    )


def variables_toml(city: str, without: tuple[str, ...] = ()) -> str:
    """The city's ``[variables.*]`` sections (`fedstats.synth.variables_toml`), less those
    of the variables named in ``without``."""
    # Split before each variable's own header; its sub-tables (``[variables.x.map]``) stay
    # with it.
    header = r'(?m)^(?=\[variables\.(?:"[^"]+"|[A-Za-z0-9_]+)\]$)'
    sections = re.split(header, synth.variables_toml(city))
    kept = [s for s in sections if not any(s.startswith(f"[variables.{n}]\n") for n in without)]
    assert len(kept) == len(sections) - len(without), f"{city} lacks one of {without}"
    return "".join(kept)


def city_config(tmp_path: Path, city: str, persons: int = 30_000) -> Path:
    """Write a synthetic city's file and its node's config (node id = city) into a
    directory; returns the config."""
    synth.write(synth.generate(city, persons), tmp_path / f"{city}.csv")
    config = tmp_path / f"{city}.toml"
    config.write_text(city_node_toml(synth.city_facts(city).id, city, Path(f"{city}.csv")))
    return config


@dataclass(frozen=True)
class SyntheticCities:
    """Synthetic city files written once per test session (the ``cities`` fixture) and
    node configs that serve them."""

    directory: Path

    def file(self, city: str, persons: int = PERSONS, seed: int = 0) -> Path:
        """The city's file of that size and seed, written on first use."""
        path = self.directory / f"{city}-{persons}-{seed}.csv"
        if not path.exists():
            partial = path.with_suffix(".partial.csv")
            synth.write(synth.generate(city, persons, seed), partial)
            partial.replace(path)
        return path

    def node_toml(
        self,
        node_id: str,
        city: str | None = None,
        *,
        persons: int = PERSONS,
        seed: int = 0,
        rho_budget: float = 1e9,
        max_rho: float = 1e9,
        where: str = "",
        extra: str = "",
        without: tuple[str, ...] = (),
    ) -> str:
        """A node config serving a synthetic city (by default the one named like the
        node; any name is a city, see `fedstats.synth`); see `city_node_toml`."""
        city = city or node_id
        data = self.file(city, persons, seed)
        return city_node_toml(
            node_id,
            city,
            data,
            rho_budget=rho_budget,
            max_rho=max_rho,
            where=where,
            extra=extra,
            without=without,
        )


class ServeCityFn(Protocol):
    """What the ``serve_city`` fixture gives: start a node serving a synthetic city (its
    config and state in the test's ``tmp_path``); the arguments are `node_toml`'s."""

    def __call__(
        self,
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
    ) -> RunningNode: ...

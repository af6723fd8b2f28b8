"""Node and coordinator configs written by the operator tools, as tables, with tomli-w.

The demo writes one node config per synthetic city and the coordinator's config. Each is
built here as a dict and written by `tomli_w`, so quoting is always right and the result
is always the TOML that `node.config` and `coordinator.config` read; comments go at the
top of the file (tomli-w writes no comments). A city's ``[variables.*]`` sections come
from the generator (`fedstats.synth.variables_toml`), commented.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tomli_w

from fedstats.synth import city_facts, dataset_table, sampling, variables_toml

__all__ = ["coordinator_toml", "key_files", "node_toml", "toml_document"]


def toml_document(comment: str, table: Mapping[str, Any]) -> str:
    """A TOML file: every line of ``comment`` as a ``#`` comment, then the table."""
    lines = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines())
    return lines + tomli_w.dumps(table)


def key_files(pki: str, role: str, ident: str) -> dict[str, Any]:
    """``[tls]`` and ``[signing]`` of a party whose files `fedstats.certs.issue` wrote.

    Args:
        pki: The PKI folder, relative to the config file.
        role: ``"node"`` or ``"coordinator"``.
        ident: The party's id.
    """
    stem = f"{pki}/{role}-{ident}"
    return {
        "tls": {"ca": f"{pki}/ca.pem", "cert": f"{stem}.pem", "key": f"{stem}.key"},
        "signing": {"key": f"{stem}.sign.key"},
    }


RHO_CAP = 0.25
"""Each coordinator's cap per person (every period of one population): the singleton
attribute-inference attack at this cap gains about 6 points over its baseline (bound 10,
tests/attacks/test_noise_and_inference.py; README "Budgets")."""
MAX_RHO_PER_QUERY = RHO_CAP
"""The node's cap on one query: no more than a coordinator may spend in all."""


def node_toml(
    city: str,
    datasets: Sequence[tuple[str, str]],
    coordinator: tuple[str, str],
    indicators: Sequence[str],
    rho_budget: float,
    *,
    node: tuple[str, str, str] | None = None,
) -> str:
    """The node config of one synthetic city, for a federation on this machine.

    Paths are relative to a ``nodes/`` folder next to ``data/``, ``state/`` and ``pki/``.

    Args:
        city: As for `fedstats.synth.generate`.
        datasets: ``(path, time_period)`` of each reference period's file.
        coordinator: The id and public key (``ed25519:...``) of the one coordinator
            allowed to ask.
        indicators: The indicators it may ask for.
        rho_budget: The privacy budget per person, shared by the periods.
        node: ``(id, geo, listen address)`` of a node other than the city's own (many
            nodes serving copies of one city, as the federation benchmark does).
    """
    facts = city_facts(city)
    node_id, geo, listen = node or (facts.id, facts.geo, "127.0.0.1:0")
    coordinator_id, coordinator_key = coordinator
    survey = sampling(city).source == "survey"
    privacy: dict[str, Any] = {"rho_budget": rho_budget, "max_rho_per_query": MAX_RHO_PER_QUERY}
    if sampling(city).max_weight is not None:
        privacy["max_weight"] = sampling(city).max_weight
    table = {
        "node": {
            "id": node_id,
            "geo": geo,
            "geo_level": "city",
            "name": facts.name,
            "country": facts.country,
            "listen": listen,
            "state_dir": f"../state/{node_id}",
        },
        "datasets": [
            {"path": path, "time_period": period, **dataset_table(city)}
            for path, period in datasets
        ],
        "privacy": privacy,
        "disclosure": {"rules": "eu-silc" if survey else "register"},
        **key_files("../pki", "node", node_id),
        "coordinators": [
            {
                "id": coordinator_id,
                "public_key": coordinator_key,
                "rho_cap": RHO_CAP,
                "indicators": list(indicators),
                "group_dims": ["c_birth", "citizen", "reason"],
            }
        ],
    }
    comment = f"""\
Node config of {facts.name}: written by `fedstats demo`.
datasets: two reference periods of one population: they share one budget and cap per
person; the latest answers by default.
disclosure: surveys follow the EU-SILC rules (under 20 observations or over 50% item
non-response unpublished), registers a frequency rule (under 10 persons unpublished).
coordinators: deny by default: only this coordinator may ask, for these indicators, up to
its rho_cap. variables: the city's own columns mapped to the harmonised variables."""
    return toml_document(comment, table) + "\n" + variables_toml(city)


def coordinator_toml(coordinator: str, nodes: Sequence[tuple[str, str, str]]) -> str:
    """The coordinator's config: its keys and every node's address and result key.

    Paths are relative to the folder that holds ``pki/`` and ``state/``.

    Args:
        coordinator: The coordinator's id.
        nodes: ``(id, address, public key)`` of every node.
    """
    table = {
        "coordinator": {"id": coordinator, "state_dir": "state/coordinator"},
        **key_files("pki", "coordinator", coordinator),
        "nodes": [{"id": i, "address": a, "public_key": k} for i, a, k in nodes],
    }
    comment = """\
Coordinator config written by `fedstats demo`. The ports were those of this run's
nodes; start nodes with `fedstats node serve` and put their addresses here."""
    return toml_document(comment, table)

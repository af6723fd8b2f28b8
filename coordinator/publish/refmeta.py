"""Reference metadata per node: a JSON file under ESMS concept names, with every output.

Eurostat's Euro SDMX Metadata Structure (ESMS, the SIMS subset) names what a reader
needs to judge a figure: who produced it (``CONTACT``), what it measures
(``STAT_PRES``: data description, statistical concepts and definitions, reference area),
the reference period (``REF_PERIOD``), confidentiality (``CONF``), accuracy (here the
privacy budget the release spent), comparability (``COMPAR_GEO``: the node's deviations
from the harmonised definitions, with the vocabulary codes) and the source
(``STAT_PROCESS.SOURCE_TYPE``). One file per node (``metadata/<node>.json``) is built
from what the node signed in its answer and from the query; ``metadata/pooled.json``
lists the members of each pooled value. The files sit in the output directory, so
``provenance.json`` hashes them and ``fedstats verify`` checks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coordinator.publish.citation import Citation
from coordinator.publish.jsontext import dumps_indented
from coordinator.publish.outcome import Outcome
from coordinator.results import NodeTables
from coordinator.rows import POOLED
from indicators.catalogue import CATALOGUE
from indicators.concepts import concept_text, harmonised_code
from privacy.budget import DEFAULT_DELTA, epsilon_for

__all__ = ["FOLDER", "write_reference_metadata"]

FOLDER = "metadata"
FORMAT = "fedstats-esms/1"


def _concepts(answer: NodeTables) -> dict[str, Any]:
    """Each variable the node answered with a non-harmonised concept: code and meaning."""
    out: dict[str, Any] = {}
    for variable, codes in sorted(answer.concepts.items()):
        for pair in codes.split(";"):
            source_variable, _, code = pair.partition("=")
            out.setdefault(variable, []).append(
                {
                    "variable": source_variable,
                    "code": code,
                    "meaning": _meaning(source_variable, code),
                    "harmonised": harmonised_code(source_variable),
                }
            )
    return out


def _meaning(variable: str, code: str) -> str:
    try:
        return concept_text(variable, code)
    except KeyError:
        return "not in this release's vocabulary"


def _node_document(node: str, outcomes: Sequence[Outcome], citation: Citation) -> dict[str, Any]:
    answered = [(o, o.answers[node]) for o in outcomes if node in o.answers]
    spent = sum(o.rho_charged.get(node, 0.0) for o in outcomes)
    queries = [
        {
            "query_id": o.query_id,
            "indicators": [
                {"name": i, "title": CATALOGUE[i].title, "definition": CATALOGUE[i].definition}
                for i in o.plan.query.indicators
            ],
            "group_dim": o.plan.query.group_dim,
            "breakdowns": list(o.plan.query.breakdowns),
            "comparator": o.plan.query.comparator,
            "status": "answered" if node in o.answers else _failure(o, node),
        }
        for o in outcomes
    ]
    document: dict[str, Any] = {
        "format": FORMAT,
        "node": node,
        "RELEASE": citation.record(),
        "STAT_PRES": {"DATA_DESCR": queries},
        "ACCURACY": {
            "privacy_budget_spent": {
                "rho_zcdp": spent,
                "epsilon": epsilon_for(spent) if spent else 0.0,
                "delta": DEFAULT_DELTA,
                "note": "charged by this release; 0 when every answer came from the "
                "node's cache (the same query over the same data)",
            }
        },
    }
    if not answered:
        return document
    answer = answered[-1][1]
    rules = answer.rules
    document["CONTACT"] = {"CONTACT_ORGANISATION": answer.name or node}
    document["STAT_PRES"].update(
        REF_AREA={"geo": answer.geo, "geo_level": answer.geo_level, "country": answer.country},
        STAT_CONC_DEF={
            "concepts": _concepts(answer),
            "deviations": dict(sorted(answer.deviations.items())),
        },
    )
    document["REF_PERIOD"] = sorted({a.time_period for _, a in answered})
    document["COHERENCE"] = {
        "COMPAR_GEO": "rows reading a variable listed under STAT_CONC_DEF are flagged d"
        if answer.deviations or answer.concepts
        else "the node follows the harmonised definitions"
    }
    document["CONF"] = {
        "CONF_POLICY": "differential privacy (discrete Gaussian, rho-zCDP) on every released "
        "cell, then the node's disclosure rules on the noisy values",
        "CONF_DATA_TR": {
            "rules": rules.name,
            "min_count": rules.min_count,
            "unreliable_below": rules.unreliable_below,
            "max_cv": rules.max_cv,
        },
    }
    document["STAT_PROCESS"] = {
        "SOURCE_TYPE": answer.source,
        "poverty_line": answer.poverty_line,
    }
    return document


def _failure(outcome: Outcome, node: str) -> str:
    failure = outcome.failures.get(node)
    return f"no answer: {failure.reason}" if failure is not None else "not asked"


def _pooled_document(outcomes: Sequence[Outcome], citation: Citation) -> dict[str, Any]:
    members: dict[str, dict[str, str]] = {}
    for o in outcomes:
        for row in o.rows:
            if row.node == POOLED and row.geo != POOLED:
                members.setdefault(o.query_id, {})[row.indicator] = row.geo
    return {
        "format": FORMAT,
        "RELEASE": citation.record(),
        "STAT_PRES": {"REF_AREA": {"pooled_members_by_query_and_indicator": members}},
    }


def write_reference_metadata(
    outcomes: Sequence[Outcome], out_dir: Path, citation: Citation
) -> list[Path]:
    """Write ``metadata/<node>.json`` for every node of the outcomes and ``pooled.json``."""
    nodes = dict.fromkeys(n for o in outcomes for n in [*o.answers, *o.failures] if n != POOLED)
    folder = out_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for node in nodes:
        path = folder / f"{node}.json"
        path.write_text(dumps_indented(_node_document(node, outcomes, citation)) + "\n")
        paths.append(path)
    pooled = folder / "pooled.json"
    pooled.write_text(dumps_indented(_pooled_document(outcomes, citation)) + "\n")
    return [*paths, pooled]

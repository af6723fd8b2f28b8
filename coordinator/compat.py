"""Nodes of other releases: what a node says it can do, and whether it can be asked.

A node advertises its release's `Capabilities` in its Describe entry (protos/node.proto);
a node of release 0.1 advertises none and is taken for 0.1's feature set
(`RELEASE_0_1`). Before a query goes out, `unanswerable` reads them:

- a node that speaks another protocol (proto package) or compiles queries from another
  version of the indicator catalogue is not asked at all: its tables would not match
  this coordinator's plan. It gets an ``INCOMPATIBLE_RELEASE`` failure naming its release;
- a node that does not know some of the query's indicators is asked for the others, and
  the rows of those it does not know are flagged ``n`` with the reason; if it knows none,
  it is not asked and gets the same failure.

Engines, disclosure rule sets, secure aggregation and the ledger schema are read for
the operator's information (`release_of`); no query needs a particular one yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from common.errors import Reason
from common.versions import software_version
from coordinator.client import NodeFailure
from indicators.catalogue import CATALOGUE_VERSION
from protos import node_pb2 as pb

__all__ = ["INDICATORS_0_1", "PROTOCOL", "RELEASE_0_1", "NodeRelease", "release_of", "unanswerable"]

PROTOCOL = pb.DESCRIPTOR.package
"""The protocol this coordinator speaks: its proto package, ``fedstats.v1``."""

INDICATORS_0_1 = (
    "employment_rate", "unemployment_rate", "activity_rate", "attainment_low",
    "attainment_medium", "attainment_high", "median_income_ratio", "arop_rate",
    "early_leavers", "neet_rate", "tertiary_30_34", "owner_share", "self_employment_share",
    "overqualification_rate",
)  # fmt: skip
"""The indicators release 0.1's catalogue defines (catalogue version 1)."""


@dataclass(frozen=True)
class NodeRelease:
    """What a node's release can do, as its Describe entry says (or 0.1's, if silent).

    Attributes:
        protocol: The proto package it serves.
        software_version: Its fedstats release.
        catalogue_version: Version of its indicator catalogue's definitions.
        catalogue: The indicators its catalogue defines.
        engines: Table engines it runs.
        disclosure_rules: Disclosure rule sets it applies.
        secure_aggregation: Whether it can take part in secure aggregation.
        ledger_schema: Schema version of its budget ledger.
        advertised: Whether the node advertised these (False for a 0.1 node).
    """

    protocol: str
    software_version: str
    catalogue_version: int
    catalogue: frozenset[str]
    engines: tuple[str, ...]
    disclosure_rules: tuple[str, ...]
    secure_aggregation: bool
    ledger_schema: int
    advertised: bool = True

    @property
    def label(self) -> str:
        """The release as a person reads it, e.g. ``fedstats 0.2.0``."""
        if not self.advertised:
            return "fedstats 0.1 (it advertises no capabilities)"
        return f"fedstats {self.software_version or 'of an unknown version'}"


RELEASE_0_1 = NodeRelease(
    protocol="fedstats.v1",
    software_version="0.1",
    catalogue_version=1,
    catalogue=frozenset(INDICATORS_0_1),
    engines=("memory",),
    disclosure_rules=("noisy_thresholds",),
    secure_aggregation=False,
    ledger_schema=1,
    advertised=False,
)


def release_of(description: pb.NodeDescription) -> NodeRelease:
    """A node's release from its Describe entry; 0.1's feature set when it names none."""
    if not description.HasField("capabilities"):
        return RELEASE_0_1
    caps = description.capabilities
    return NodeRelease(
        protocol=caps.protocol,
        software_version=caps.software_version,
        catalogue_version=caps.catalogue_version,
        catalogue=frozenset(caps.catalogue),
        engines=tuple(caps.engines),
        disclosure_rules=tuple(caps.disclosure_rules),
        secure_aggregation=caps.secure_aggregation,
        ledger_schema=caps.ledger_schema,
    )


def unanswerable(
    node_id: str, description: pb.NodeDescription, indicators: Iterable[str]
) -> NodeFailure | dict[str, str]:
    """Why a node's release cannot answer a query, or which of its indicators it cannot.

    Args:
        node_id: The node.
        description: Its Describe entry.
        indicators: The query's indicators.

    Returns:
        A failure when the node cannot be asked at all; otherwise, per indicator its
        release does not know, why (empty when it knows them all).
    """
    release = release_of(description)
    mine = f"this coordinator (fedstats {software_version()})"
    if release.protocol != PROTOCOL:
        return NodeFailure.of(
            Reason.INCOMPATIBLE_RELEASE,
            f"node {node_id} runs {release.label}, which speaks protocol "
            f"{release.protocol or '(none named)'}; {mine} speaks {PROTOCOL}",
            "run releases of the coordinator and the node that share a protocol version",
        )
    if release.catalogue_version != CATALOGUE_VERSION:
        return NodeFailure.of(
            Reason.INCOMPATIBLE_RELEASE,
            f"node {node_id} runs {release.label}, whose indicator catalogue is version "
            f"{release.catalogue_version}; {mine} uses version {CATALOGUE_VERSION}, so "
            "their tables would not match",
            "upgrade the older of the two so that both use the same catalogue version",
        )
    asked = list(dict.fromkeys(indicators))
    unknown = {
        name: f"node {node_id} runs {release.label}, which does not know {name}"
        for name in asked
        if name not in release.catalogue
    }
    if asked and len(unknown) == len(asked):
        return NodeFailure.of(
            Reason.INCOMPATIBLE_RELEASE,
            f"node {node_id} runs {release.label}, which knows none of the indicators "
            f"asked ({', '.join(asked)})",
            "the node operator can upgrade the node to a release that knows them",
        )
    return unknown

"""What verifying published outputs found: checked, failed, and not checkable."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from coordinator.chain import ChainPosition
from security.signing import verify

__all__ = ["VerifyReport", "check_request"]


@dataclass
class VerifyReport:
    """What ``verify_provenance`` found.

    Attributes:
        checked: What verified, one line each, for people.
        problems: What did not, one line each, for people.
        unchecked: What could not be checked from what was given, one line each.
        notices: What verified but a reader must know, one line each (results of one
            node from different data fingerprints).
        requests: Coordinator signatures of requests that verified.
        results: Node results whose signature verified and whose tables were read.
        positions: The audit-chain position of every result whose signature verified.
    """

    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    requests: int = 0
    results: int = 0
    positions: list[ChainPosition] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether everything verified."""
        return not self.problems


def check_request(
    entry: dict[str, Any], coordinator_key: Ed25519PublicKey, where: str, report: VerifyReport
) -> None:
    """Count the coordinator's signature of the request, or record that it does not verify."""
    if "request" not in entry:
        return
    if verify(
        coordinator_key,
        base64.b64decode(entry["request"]),
        base64.b64decode(entry["request_signature"]),
    ):
        report.requests += 1
    else:
        report.problems.append(f"{where}: the request's signature does not verify")

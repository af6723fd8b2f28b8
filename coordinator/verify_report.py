"""What verifying published outputs found: checked, failed, and not checkable."""

from __future__ import annotations

from dataclasses import dataclass, field

from coordinator.chain import ChainPosition

__all__ = ["VerifyReport"]


@dataclass
class VerifyReport:
    """What ``verify_provenance`` found.

    Attributes:
        checked: What verified, one line each, for people.
        problems: What did not, one line each, for people.
        unchecked: What could not be checked from what was given, one line each.
        requests: Coordinator signatures of requests that verified.
        results: Node results whose signature verified and whose tables were read.
        positions: The audit-chain position of every result whose signature verified.
    """

    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    requests: int = 0
    results: int = 0
    positions: list[ChainPosition] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether everything verified."""
        return not self.problems

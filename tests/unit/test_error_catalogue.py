"""The error catalogue: one list of reasons, each with a real gRPC status, on both sides."""

from __future__ import annotations

import ast
from pathlib import Path

import grpc
import pytest

from common.errors import FedstatsError, Reason
from protos import node_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("common", "indicators", "privacy", "security", "node", "coordinator", "fedstats")


def test_every_reason_has_a_grpc_status_and_a_text() -> None:
    for reason in Reason:
        assert reason.value == reason.name
        assert grpc.StatusCode[reason.status] is not grpc.StatusCode.OK, reason
        assert reason.text and not reason.text.endswith("."), reason


def test_the_wire_enum_lists_exactly_the_catalogue() -> None:
    wire = {n.removeprefix("REASON_") for n, _ in pb.Reason.items()} - {"UNSPECIFIED"}
    assert wire == {r.name for r in Reason}


def test_a_bare_transport_status_maps_to_its_reason() -> None:
    assert Reason.for_transport("UNAVAILABLE") is Reason.UNAVAILABLE
    assert Reason.for_transport("DEADLINE_EXCEEDED") is Reason.DEADLINE_EXCEEDED
    # A name that is a reason with another status is not taken for a transport status.
    assert Reason.for_transport("OUT_OF_RANGE") is Reason.UNKNOWN


def _reason_strings(path: Path, root: Path = ROOT) -> list[str]:
    """Places that pass a reason as a plain string instead of a catalogue member."""
    found = []
    for item in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(item, ast.Call):
            continue
        for keyword in item.keywords:
            if keyword.arg == "reason" and isinstance(keyword.value, ast.Constant):
                found.append(f"{path.relative_to(root)}:{item.lineno}")
        name = item.func.attr if isinstance(item.func, ast.Attribute) else ""
        name = item.func.id if isinstance(item.func, ast.Name) else name
        if name == "NodeFailure" and any(isinstance(a, ast.Constant) for a in item.args[:2]):
            found.append(f"{path.relative_to(root)}:{item.lineno}")
    return found


def test_no_reason_is_written_outside_the_catalogue() -> None:
    files = [f for package in SOURCES for f in sorted((ROOT / package).rglob("*.py"))]
    assert files
    assert [place for f in files for place in _reason_strings(f)] == []


def test_the_checker_sees_a_plain_string(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('raise E("x", reason="BUDGET_EXCEEDED")\nNodeFailure("OK", "X", "m")\n')
    assert len(_reason_strings(bad, tmp_path)) == 2


@pytest.mark.parametrize("reason", list(Reason))
def test_an_error_keeps_its_reason(reason: Reason) -> None:
    error = FedstatsError("message", reason=reason)
    assert error.reason is reason
    assert f"{error.reason}" == reason.name

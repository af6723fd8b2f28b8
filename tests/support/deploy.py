"""The deploy/ artefacts as the tests use them: the example federation's PKI, configs
rendered by deploy/render-config.sh, and system tools that CI must have.

A system tool (``systemd-analyze``, ``ip``) or root that is missing skips the tests that
need it, unless ``FEDSTATS_REQUIRE_SYSTEM_TOOLS=1`` (as in CI, `.ci/run`): then it fails
them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fedstats.certs import init_ca, issue

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CITIES = ("vienna", "ghent", "amsterdam")
"""The example federation of deploy/config (compose, Kubernetes overlays)."""
COORDINATOR_ID = "coordinator"


def require(what: str, present: bool) -> None:
    """Skip (or, with FEDSTATS_REQUIRE_SYSTEM_TOOLS=1, fail) when ``what`` is missing."""
    if present:
        return
    if os.environ.get("FEDSTATS_REQUIRE_SYSTEM_TOOLS") == "1":
        pytest.fail(f"{what} is missing, and FEDSTATS_REQUIRE_SYSTEM_TOOLS=1 requires it")
    pytest.skip(f"{what} is missing (CI installs it: .ci/run)")


def require_tool(name: str) -> str:
    """The path of a system tool, or skip/fail as `require` says."""
    path = shutil.which(name)
    require(f"the `{name}` command", path is not None)
    assert path is not None
    return path


def federation_pki(directory: Path, hosts: dict[str, str] | None = None) -> Path:
    """The example federation's CA and keys, as deploy/compose/setup.sh makes them.

    Args:
        directory: Where the CA and every party's files go.
        hosts: Per city, the address its certificate also names (default: its id).
    """
    init_ca(directory)
    for city in CITIES:
        issue(directory, "node", city, ((hosts or {}).get(city, city),))
    issue(directory, "coordinator", COORDINATOR_ID)
    return directory


def render(template: Path, pki: Path) -> str:
    """``deploy/render-config.sh TEMPLATE PKI``'s output."""
    done = subprocess.run(
        [str(DEPLOY / "render-config.sh"), str(template), str(pki)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout

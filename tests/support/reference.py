"""The reference microdata (laeken and simPop EU-SILC files) that the accuracy tests
compare against pandas.

The files are not in the repository: they are looked up in the directory named by
``FEDSTATS_REFERENCE_DATA``, by default ``../shared/data`` beside the checkout. A test that
needs a file it cannot find skips, unless ``FEDSTATS_REQUIRE_REFERENCE_DATA=1`` (as in CI,
``.ci/run``): then it fails, so that a CI run without the data is never green.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests.support.pki import pki

REPO = Path(__file__).resolve().parents[2]
REFERENCE_DATA = Path(os.environ.get("FEDSTATS_REFERENCE_DATA", REPO.parent / "shared" / "data"))
LAEKEN = REFERENCE_DATA / "laeken_eusilc.csv"
SIMPOP = REFERENCE_DATA / "simPop_eusilcP.csv"
LANDS = (
    "Burgenland", "Carinthia", "Lower Austria", "Salzburg", "Styria", "Tyrol",
    "Upper Austria", "Vienna", "Vorarlberg",
)  # fmt: skip

LAEKEN_VARIABLES = """
[variables.sex]
column = "rb090"
map = { male = "M", female = "F" }

[variables.age]
column = "age"

[variables.citizen]
column = "pb220a"
map = { AT = "NAT", EU = "EU27_2020_FOR", Other = "NEU27_2020_FOR" }

[variables.wstatus]
column = "pl030"
map = { 1 = "EMP", 2 = "EMP", 3 = "UNE", 4 = "INAC", 5 = "INAC", 6 = "INAC", 7 = "INAC" }
"""


def require(path: Path) -> Path:
    """A reference file; if it is missing, skip the test, or fail it when the run requires
    the reference data (``FEDSTATS_REQUIRE_REFERENCE_DATA=1``)."""
    if path.exists():
        return path
    where = (
        f"reference data not found at {path} (set FEDSTATS_REFERENCE_DATA to the directory "
        "holding laeken_eusilc.csv and simPop_eusilcP.csv; default ../shared/data)"
    )
    if os.environ.get("FEDSTATS_REQUIRE_REFERENCE_DATA") == "1":
        pytest.fail(f"{where}, and FEDSTATS_REQUIRE_REFERENCE_DATA=1 requires it")
    pytest.skip(where)


def require_laeken() -> Path:
    """The laeken survey file (see `require`)."""
    return require(LAEKEN)


def require_simpop() -> Path:
    """The simPop synthetic population file (see `require`)."""
    return require(SIMPOP)


def laeken_node_toml(
    node_id: str,
    land: str,
    *,
    rho_budget: float = 1e9,
    max_rho: float = 1e9,
    extra: str = "",
    poverty_line: float | None = None,
) -> str:
    """A node config serving one Land of the laeken survey, trusting the test coordinator.

    ``poverty_line`` is the national AROP line the node is configured with (none by default).
    """
    line = "" if poverty_line is None else f"poverty_line = {poverty_line!r}"
    return (
        textwrap.dedent(f"""
        [node]
        id = "{node_id}"
        geo = "AT-{node_id[:3].upper()}"
        name = "{land}"
        country = "AT"
        listen = "127.0.0.1:0"
        state_dir = "state-{node_id}"

        [dataset]
        path = "{LAEKEN}"
        time_period = "2006"
        source = "survey"
        weight = "rb050"
        where = {{ db040 = "{land}" }}
        {line}

        [privacy]
        rho_budget = {rho_budget}
        max_rho_per_query = {max_rho}
        max_weight = 2000.0
        """)
        + extra
        + LAEKEN_VARIABLES
        + pki().node_trust_toml(node_id)
    )

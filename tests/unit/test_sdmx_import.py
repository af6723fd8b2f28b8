"""The SDMX writer imports sdmx1's model and XML writer without its web client and pandas,
and the package is still whole for whoever uses the rest of it."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import sys
import coordinator.publish.sdmx
parts = sorted(m for m in ("pandas", "requests", "sdmx.client") if m in sys.modules)
import sdmx
whole = callable(sdmx.to_csv) and callable(sdmx.read_sdmx) and "sdmx.client" in sys.modules
print(parts, whole)
"""


def test_the_sdmx_writer_leaves_out_the_client_and_the_package_stays_whole() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True
    )
    assert done.stdout.split("\n")[0] == "[] True", done.stdout + done.stderr

"""A federation across hosts: each node in a network namespace of its own, on its own
address, with a certificate for that address, started through deploy/entrypoint.sh (what
the image and the unit run) from deploy/config's example configs; the coordinator runs
`fedstats query` from another namespace. Links are veth pairs to a bridge: pulling one
out cuts a node off mid-query.

Root and iproute2 are needed (CI has both: .ci/run); elsewhere the test skips.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedstats.cli import main
from tests.support.cities import SyntheticCities
from tests.support.deploy import CITIES, DEPLOY, federation_pki, render, require, require_tool
from tests.support.netns import Lan
from tests.support.served import ENTRYPOINT, ServedNode, entrypoint_env

pytestmark = pytest.mark.slow

TIMEOUT = 4.0  # the coordinator's deadline per call ([coordinator] timeout_seconds)
RHO = "0.05"
CUT = "ghent"  # the node whose link is pulled mid-query


class Federation:
    """Three nodes and a coordinator host on one LAN of namespaces."""

    def __init__(self, tmp: Path, cities: SyntheticCities) -> None:
        self.tmp = tmp
        self.lan = Lan()
        self.nodes: dict[str, ServedNode] = {}
        try:
            self.coordinator_address = self.lan.add("coordinator")
            for city in CITIES:
                self.lan.add(city)
            self.pki = federation_pki(tmp / "pki", hosts=dict(self.lan.hosts))
            for city in CITIES:
                config = self._node_config(city, cities)
                self.nodes[city] = ServedNode(config, self.lan.exec_prefix(city))
            for node in self.nodes.values():
                node.wait_for("start")
            self.coordinator_config = self._coordinator_config()
        except BaseException:
            self.close()
            raise

    def _node_config(self, city: str, cities: SyntheticCities) -> Path:
        """deploy/config's config of the city, the container's paths mapped to ``tmp``."""
        address = self.lan.hosts[city]
        home = self.tmp / city
        (home / "data").mkdir(parents=True)
        shutil.copy(cities.file(city), home / "data" / f"{city}.csv")
        text = render(DEPLOY / "config" / f"{city}.toml.in", self.pki)
        for container, here in (
            ("/data/", f"{home}/data/"),
            ("/etc/fedstats/keys/", f"{self.pki}/"),
            ("/var/lib/fedstats/", f"{home}/"),
            ('"0.0.0.0:', f'"{address}:'),
        ):
            assert container in text, container
            text = text.replace(container, here)
        config = home / "node.toml"
        config.write_text(text)
        return config

    def _coordinator_config(self) -> Path:
        text = render(DEPLOY / "config" / "coordinator.toml.in", self.pki)
        text = text.replace("/etc/fedstats/keys/", f"{self.pki}/")
        text = text.replace("/var/lib/fedstats/", f"{self.tmp}/coordinator/")
        text = text.replace("timeout_seconds = 60", f"timeout_seconds = {TIMEOUT}")
        for city, address in self.lan.hosts.items():
            text = text.replace(f'"{city}:50051"', f'"{address}:50051"')
        config = self.tmp / "coordinator.toml"
        config.write_text(text)
        return config

    def on_coordinator_host(
        self, *args: str, timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """``deploy/entrypoint.sh ARGS`` run on the coordinator's host."""
        return subprocess.run(
            [*self.lan.exec_prefix("coordinator"), str(ENTRYPOINT), *args],
            env=entrypoint_env(self.coordinator_config, **env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def query(self, out: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """One `fedstats query` run from the coordinator's host."""
        return self.on_coordinator_host(
            "query", "--indicators", "employment_rate", "--group", "citizen", "--rho", RHO,
            "--out", str(self.tmp / out), *extra,
        )  # fmt: skip

    def close(self) -> None:
        """End every node, then delete every namespace, whatever happened."""
        try:
            for node in self.nodes.values():
                if node.proc.poll() is None:
                    node.proc.send_signal(signal.SIGCONT)
                    node.terminate(timeout=30)
        finally:
            self.lan.close()


@pytest.fixture
def federation(tmp_path: Path, cities: SyntheticCities) -> Iterator[Federation]:
    require("root (network namespaces)", os.geteuid() == 0)
    require_tool("ip")
    running = Federation(tmp_path, cities)
    try:
        yield running
    finally:
        running.close()


def _rows(directory: Path) -> list[dict[str, str]]:
    with (directory / "benchmark.csv").open() as handle:
        return list(csv.DictReader(handle))


def _charged(federation: Federation) -> list[dict[str, float]]:
    """Per query run, what each node charged (the coordinator's own log of its queries)."""
    log = federation.tmp / "coordinator" / "state" / "queries.jsonl"
    return [json.loads(line)["rho_charged"] for line in log.read_text().splitlines()]


PROBE = """
import sys, grpc
from protos import node_pb2 as pb, node_pb2_grpc as pb_grpc
address, ca, node = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3]
def ask(channel):
    try:
        pb_grpc.NodeServiceStub(channel).Describe(pb.DescribeRequest(), timeout=5)
        return "OK"
    except grpc.RpcError as error:
        return error.code().name
plain = ask(grpc.insecure_channel(address))
no_cert = ask(grpc.secure_channel(address, grpc.ssl_channel_credentials(ca),
                                  [("grpc.ssl_target_name_override", node)]))
print(plain, no_cert)
"""


def test_a_federation_across_hosts(
    federation: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    hosts = federation.lan.hosts

    # The health port answers another host (plaintext, health service only).
    for city in CITIES:
        health = federation.on_coordinator_host(
            "health", timeout=30, FEDSTATS_HEALTH_ADDRESS=f"{hosts[city]}:50052"
        )
        assert health.returncode == 0 and "SERVING" in health.stdout, health.stdout

    # Plaintext and certificate-less connections from another host are refused.
    probe = subprocess.run(
        [*federation.lan.exec_prefix("coordinator"), sys.executable, "-c", PROBE,
         f"{hosts['vienna']}:50051", str(federation.pki / "ca.pem"), "vienna"],
        capture_output=True, text=True, timeout=60, check=False, cwd=DEPLOY.parent,
    )  # fmt: skip
    assert probe.stdout.split() == ["UNAVAILABLE", "UNAVAILABLE"], probe.stderr

    # Queries over mutual TLS across interfaces: every node answers.
    first = federation.query("first")
    assert first.returncode == 0, first.stderr
    assert {r["node"] for r in _rows(federation.tmp / "first")} == {*CITIES, "*"}
    assert all(r["status"] != "no_answer" for r in _rows(federation.tmp / "first"))

    # Ghent is frozen (SIGSTOP) while the query is on its way, then its link is pulled.
    cut = federation.nodes[CUT].proc
    cut.send_signal(signal.SIGSTOP)
    started = time.monotonic()
    with subprocess.Popen(
        [*federation.lan.exec_prefix("coordinator"), str(ENTRYPOINT), "query",
         "--indicators", "employment_rate", "--group", "citizen", "--by", "sex",
         "--rho", RHO, "--out", str(federation.tmp / "cut")],
        env=entrypoint_env(federation.coordinator_config),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as running:  # fmt: skip
        time.sleep(1.5)
        federation.lan.link(CUT, up=False)
        cut.send_signal(signal.SIGCONT)
        _, err = running.communicate(timeout=8 * TIMEOUT + 30)
    elapsed = time.monotonic() - started
    assert running.returncode == 0, err  # the others answered (no --strict)
    # Describe and three attempts at the deadline each, with the client's backoff.
    assert elapsed < 5 * TIMEOUT + 10, f"the cut node took {elapsed:.1f} s to give up"
    rows = _rows(federation.tmp / "cut")
    assert {r["status"] for r in rows if r["node"] == CUT} == {"no_answer"}
    assert all(r["status"] != "no_answer" for r in rows if r["node"] in ("vienna", "amsterdam"))

    # The link is back: the same query again charges only the node that missed it.
    federation.lan.link(CUT, up=True)
    rerun = federation.query("rerun", "--by", "sex")
    assert rerun.returncode == 0, rerun.stderr
    assert all(r["status"] != "no_answer" for r in _rows(federation.tmp / "rerun"))
    first_charge, cut_charge, rerun_charge = _charged(federation)
    rho = float(RHO)
    assert first_charge == pytest.approx(dict.fromkeys(CITIES, rho))
    assert cut_charge == pytest.approx({"vienna": rho, "amsterdam": rho})
    assert rerun_charge == pytest.approx({"vienna": 0.0, "amsterdam": 0.0, CUT: rho})

    # Every node's ledger: exactly two charges, audit chain intact, exit 0 on SIGTERM.
    for city, node in federation.nodes.items():
        assert node.terminate(timeout=30) == 0, city
        config = str(federation.tmp / city / "node.toml")
        assert main(["budget", "--config", config]) == 0
        spent = re.search(r"rho total \S+, spent (\S+),", capsys.readouterr().out)
        assert spent and float(spent.group(1)) == pytest.approx(2 * rho), (city, spent)
        assert sum(q["rho_charged"] for q in node.events("query")) == pytest.approx(2 * rho)
        assert main(["node", "audit", "--config", config, "--verify"]) == 0

"""The node's Prometheus endpoint, scraped over real HTTP while a real node serves:
answered and refused calls by reason, latency, certificate days, and rho spent and
remaining exactly as `fedstats budget` reports them."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.errors import ConfigError
from fedstats.cli import main
from node.config import load_config
from node.metrics import NodeMetrics, metrics_address, serve_metrics
from node.server import build_server
from node.service import NodeService
from tests.support.cities import SyntheticCities
from tests.support.nodes import RunningNode
from tests.support.pki import query_request


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_scraped_budget_matches_fedstats_budget_and_calls_are_counted_by_reason(
    tmp_path: Path, cities: SyntheticCities, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "vienna.toml"
    config_path.write_text(cities.node_toml("vienna", persons=3_000, rho_budget=1.0, max_rho=0.5))
    service = NodeService(load_config(config_path))
    metrics = NodeMetrics(service)
    server = build_server(service, "127.0.0.1:0", tls=service.config.tls, interceptors=(metrics,))
    http = serve_metrics(metrics, "127.0.0.1:0")
    node = RunningNode(service, server, f"127.0.0.1:{server.port}", config_path)
    try:
        node.ask(query_request("q-1", rho=0.1))
        node.ask(query_request("q-2", rho=0.2))
        for query_id in ("q-3", "q-4"):  # over the per-query cap: refused, nothing spent
            with pytest.raises(grpc.RpcError):
                node.ask(query_request(query_id, rho=0.7))
        scraped = _scrape(http.port)
    finally:
        http.stop()
        node.stop()

    dataset = service.config.dataset_id
    capsys.readouterr()
    assert main(["budget", "--config", str(config_path)]) == 0
    report = capsys.readouterr().out
    total, spent, left = re.search(
        r"rho total (\S+), spent (\S+), remaining (\S+),", report
    ).groups()  # type: ignore[union-attr]
    key = (("dataset", dataset),)
    assert f"{scraped[('fedstats_node_rho_spent', key)]:g}" == spent == "0.3"
    assert f"{scraped[('fedstats_node_rho_remaining', key)]:g}" == left == "0.7"
    assert f"{scraped[('fedstats_node_rho_total', key)]:g}" == total.rstrip(",")

    method = (("method", "RunQuery"),)
    assert scraped[("fedstats_node_calls_answered_total", method)] == 2
    refused = (("method", "RunQuery"), ("reason", "QUERY_CAP_EXCEEDED"))
    assert scraped[("fedstats_node_calls_refused_total", refused)] == 2
    assert scraped[("fedstats_node_call_seconds_count", method)] == 4
    days = scraped[("fedstats_node_certificate_days_left", (("file", "cert"),))]
    assert 390 < days <= 397  # `fedstats certs issue`'s default lifetime


def _with_metrics(cities: SyntheticCities, listen: str) -> str:
    line = 'state_dir = "state-vienna"'
    toml = cities.node_toml("vienna", persons=3_000)
    return toml.replace(line, f'{line}\nmetrics_listen = "{listen}"')


def test_the_endpoint_is_off_by_default_and_a_bare_port_is_loopback(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    config_path = tmp_path / "vienna.toml"
    config_path.write_text(cities.node_toml("vienna", persons=3_000))
    assert load_config(config_path).metrics_listen is None
    assert metrics_address("9464") == "127.0.0.1:9464"
    assert metrics_address("0.0.0.0:9464") == "0.0.0.0:9464"
    config_path.write_text(_with_metrics(cities, "9464"))
    assert load_config(config_path).metrics_listen == "9464"


def test_an_endpoint_off_loopback_needs_metrics_allow_remote(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    config_path = tmp_path / "vienna.toml"
    for listen in ("0.0.0.0:9464", "10.1.2.3:9464", "[::]:9464", "metrics.example:9464"):
        config_path.write_text(_with_metrics(cities, listen))
        with pytest.raises(
            ConfigError, match=r"not a loopback address.*shows the privacy budget"
        ) as e:
            load_config(config_path)
        assert e.value.field == "node.metrics_listen" and "metrics_allow_remote" in e.value.hint
    for listen in ("127.0.0.1:9464", "localhost:9464", "[::1]:9464"):
        config_path.write_text(_with_metrics(cities, listen))
        assert load_config(config_path).metrics_listen == listen
    config_path.write_text(
        _with_metrics(cities, "0.0.0.0:9464").replace(
            'metrics_listen = "0.0.0.0:9464"',
            'metrics_listen = "0.0.0.0:9464"\nmetrics_allow_remote = true',
        )
    )
    config = load_config(config_path)
    assert (config.metrics_listen, config.metrics_allow_remote) == ("0.0.0.0:9464", True)


@pytest.mark.slow  # a child process
def test_node_serve_starts_the_endpoint_on_loopback(
    tmp_path: Path, cities: SyntheticCities
) -> None:
    config_path = tmp_path / "vienna.toml"
    config_path.write_text(_with_metrics(cities, "0"))
    command = [sys.executable, "-m", "fedstats.cli", "node", "serve", "--config", str(config_path)]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        _scrape_served(process, config_path)


def _scrape_served(process: subprocess.Popen[str], config_path: Path) -> None:
    try:
        assert process.stderr is not None
        found = None
        deadline = time.monotonic() + 60
        while found is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            assert line, "node serve ended before serving metrics"
            found = re.search(r"Prometheus metrics on http://127\.0\.0\.1:(\d+)/metrics", line)
        assert found is not None
        scraped = _scrape(int(found.group(1)))
        key = (("dataset", "vienna/" + load_config(config_path).dataset.time_period),)
        assert scraped[("fedstats_node_rho_spent", key)] == 0
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()  # not left for `with Popen` to wait on forever
            raise

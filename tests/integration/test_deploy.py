"""deploy/: every artefact linted or validated offline by the tool its world uses
(hadolint, the Compose specification's schema, the Kubernetes schemas after kustomize,
systemd-analyze), and the properties the security model asks of each checked here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy import CITIES, DEPLOY, federation_pki, render, require_tool

BIN = Path(sys.executable).parent


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, cwd=cwd
    )


# --- container --------------------------------------------------------------------------


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    config = DEPLOY / "container" / ".hadolint.yaml"
    return _run(BIN / "hadolint", "--no-color", "--config", config, path)


def test_the_containerfile_passes_hadolint_and_runs_as_a_fixed_user() -> None:
    containerfile = DEPLOY / "container" / "Containerfile"
    linted = _hadolint(containerfile)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    text = containerfile.read_text()
    assert len(re.findall(r"(?m)^FROM ", text)) == 2  # build the wheel, then a slim runtime
    assert re.search(r"(?m)^USER 10001:10001$", text)
    assert "/usr/local/bin/fedstats-entrypoint" in text
    assert re.search(r'(?m)^HEALTHCHECK .*\n.*"health"\]$', text)


def test_hadolint_fails_an_image_that_runs_as_root_from_a_floating_tag(tmp_path: Path) -> None:
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM python:latest\nUSER root\nRUN pip install fedstats\n")
    linted = _hadolint(bad)
    assert linted.returncode != 0
    assert "DL3007" in linted.stdout and "DL3002" in linted.stdout


# --- compose ----------------------------------------------------------------------------


def _validate_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", path)


def test_the_compose_file_follows_the_compose_specification() -> None:
    checked = _validate_compose(DEPLOY / "compose" / "compose.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_compose_schema_check_rejects_an_unknown_key(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  vienna:\n    image: fedstats\n    readonly: true\n")
    assert _validate_compose(bad).returncode != 0


def test_compose_nodes_write_only_their_state_and_chain_head() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services: dict[str, Any] = compose["services"]
    assert services["setup"]["restart"] == "no" and "setup.sh" in str(services["setup"])
    for city in CITIES:
        node = services[city]
        assert node["read_only"] is True and node["cap_drop"] == ["ALL"]
        assert node["user"] == "10001:10001"
        assert node["depends_on"]["setup"]["condition"] == "service_completed_successfully"
        writable = [v for v in node["volumes"] if not v.endswith(":ro")]
        assert writable == [
            f"state-{city}:/var/lib/fedstats/state",
            f"head-{city}:/var/lib/fedstats/head",
        ]
        assert f"keys-{city}:/etc/fedstats/keys:ro" in node["volumes"]  # its own keys only
    job = services["coordinator"]
    assert job["profiles"] == ["job"] and job["command"][0] == "query"


# --- Kubernetes -------------------------------------------------------------------------


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    built = _run(BIN / "kubectl", "kustomize", directory)
    assert built.returncode == 0, built.stderr
    out = directory / "built.yaml"
    out.write_text(built.stdout)
    checked = _run(BIN / "kubernetes-validate", "--strict", "--quiet", out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d]


@pytest.fixture(scope="module")
def kubernetes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/kubernetes with every config rendered, as an operator does."""
    tmp = tmp_path_factory.mktemp("k8s")
    pki = federation_pki(tmp / "pki")
    copy = tmp / "kubernetes"
    shutil.copytree(DEPLOY / "kubernetes", copy)
    for city in CITIES:
        text = render(DEPLOY / "config" / f"{city}.toml.in", pki)
        (copy / "overlays" / city / "node.toml").write_text(text)
    text = render(DEPLOY / "config" / "coordinator.toml.in", pki)
    (copy / "coordinator" / "coordinator.toml").write_text(text)
    return copy


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


@pytest.mark.parametrize("city", CITIES)
def test_each_city_overlay_builds_and_validates(kubernetes: Path, city: str) -> None:
    docs = _kustomize(kubernetes / "overlays" / city)
    assert {d["metadata"].get("namespace", d["metadata"]["name"]) for d in docs} == {
        f"fedstats-{city}"
    }
    config = tomllib.loads(_one(docs, "ConfigMap")["data"]["node.toml"])
    assert config["node"]["id"] == city
    assert config["coordinators"][0]["public_key"].startswith("ed25519:")

    node = _one(docs, "StatefulSet")["spec"]
    assert node["replicas"] == 1  # one writer per ledger
    assert {c["metadata"]["name"] for c in node["volumeClaimTemplates"]} == {"state", "head"}
    pod = node["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == 50052  # the health-only port
    assert container["resources"]["requests"]["memory"]
    writable = {m["name"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"state", "head", "tmp"}

    policy = _one(docs, "NetworkPolicy")["spec"]
    query_rules = [r for r in policy["ingress"] if {"port": 50051, "protocol": "TCP"} in r["ports"]]
    (query_rule,) = query_rules
    selector = query_rule["from"][0]["podSelector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "fedstats-coordinator"}


def test_the_coordinator_job_builds_and_validates(kubernetes: Path) -> None:
    docs = _kustomize(kubernetes / "coordinator")
    cron = _one(docs, "CronJob")["spec"]
    assert cron["suspend"] is True and cron["concurrencyPolicy"] == "Forbid"
    pod = cron["jobTemplate"]["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "fedstats-coordinator"
    (container,) = pod["spec"]["containers"]
    assert container["args"][0] == "query"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_kubernetes_schemas_reject_a_misspelt_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
        "spec: {ports: [{port: 1}], selectr: {a: b}}\n"
    )
    assert _run(BIN / "kubernetes-validate", "--strict", "--quiet", bad).returncode != 0


# --- systemd ----------------------------------------------------------------------------


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The node unit as an instance, its ExecStart and fedstats aimed at this checkout."""
    text = (DEPLOY / "systemd" / "fedstats-node@.service").read_text()
    text = re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={DEPLOY / 'entrypoint.sh'}", text)
    text = text.replace("/opt/fedstats/bin/fedstats\n", f"{BIN / 'fedstats'}\n")
    text = text.replace("/opt/fedstats/bin/python\n", f"{sys.executable}\n")
    path = tmp_path / "fedstats-node@test.service"
    path.write_text(text)
    return path


def test_the_systemd_unit_verifies(unit: Path) -> None:
    analyze = require_tool("systemd-analyze")
    verified = _run(analyze, "verify", unit, cwd=unit.parent)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert unit.name not in verified.stderr, verified.stderr  # no warning about the unit


def test_systemd_verify_fails_a_unit_whose_command_is_missing(unit: Path) -> None:
    analyze = require_tool("systemd-analyze")
    text = re.sub(r"(?m)^ExecStart=\S+", "ExecStart=/nonexistent/fedstats", unit.read_text())
    unit.write_text(text)
    assert _run(analyze, "verify", unit, cwd=unit.parent).returncode != 0


def test_the_systemd_unit_is_sandboxed_to_an_ok_exposure(unit: Path) -> None:
    analyze = require_tool("systemd-analyze")
    rated = _run(analyze, "security", "--offline=true", unit, cwd=unit.parent)
    match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", rated.stdout)
    assert match, rated.stdout + rated.stderr
    assert match.group(2) in ("SAFE", "OK"), match.group(0)
    text = unit.read_text()
    for setting in (
        "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
        "PrivateTmp=yes", "SystemCallFilter=@system-service", "MemoryMax=",
        "ReadWritePaths=/var/lib/fedstats/%i /var/lib/fedstats-head/%i\n",
    ):  # fmt: skip
        assert setting in text, setting

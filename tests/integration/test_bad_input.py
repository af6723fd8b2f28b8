"""Bad input is refused with a message saying what is wrong and where, and costs no budget.

Configs, data files and queries that are wrong in one way each: the node's config loader,
its data loader, `fedstats node check`, the node's own query validation over real gRPC,
and the coordinator's local validation.
"""

from __future__ import annotations

import dataclasses
import math
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pandas as pd
import pytest

from common.errors import ERROR_METADATA_KEY, ConfigError, DataError, QueryError
from coordinator.config import load_coordinator_config
from coordinator.run import run_query
from fedstats.cli import main
from indicators.spec import Query
from node.config import load_config
from node.engines import open_engine
from node.harmonise import harmonise
from node.source import load_frame
from protos import node_pb2 as pb
from security.certificates import TlsFiles
from tests.support.cities import ServeCityFn, SyntheticCities
from tests.support.nodes import RunningNode, ServeFn, coordinator_for
from tests.support.pki import pki, sign_request
from tests.support.pki import query_request as request
from tests.support.reference import laeken_node_toml

# --- helpers ----------------------------------------------------------------------------


def write_laeken_config(
    tmp_path: Path, node_id: str = "vienna", land: str = "Vienna", **kwargs: Any
) -> Path:
    config = tmp_path / f"{node_id}.toml"
    config.write_text(laeken_node_toml(node_id, land, **kwargs))
    return config


def refusal(node: RunningNode, req: pb.QueryRequest) -> tuple[grpc.Call, pb.ErrorDetail]:
    """Send a query that must be refused; return the call and its decoded ErrorDetail."""
    with pytest.raises(grpc.RpcError) as info:
        node.stub().RunQuery(sign_request(req, node.node_id), timeout=30)
    error = info.value
    assert isinstance(error, grpc.Call)
    raw = dict(error.trailing_metadata() or ())[ERROR_METADATA_KEY]
    assert isinstance(raw, bytes)
    detail = pb.ErrorDetail.FromString(raw)
    # Never a stack trace over the wire.
    for text in (error.details() or "", detail.message, detail.hint):
        assert "Traceback" not in text
        assert 'File "' not in text
    return error, detail


def spent(node: RunningNode) -> float:
    status: pb.BudgetStatus = node.stub().GetBudget(pb.BudgetRequest(), timeout=30)
    return status.rho_spent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


SMALL_TOML = """
[node]
id = "smallville"
geo = "XX01"
country = "AT"
state_dir = "state"

[dataset]
path = "small.csv"
time_period = "2024"
source = "{source}"
{weight}

[privacy]
rho_budget = 1.0
max_rho_per_query = 1.0
max_weight = 50.0

[variables.age]
column = "age"

[variables.sex]
column = "sex"
map = {{ m = "M", f = "F" }}

[variables.citizen]
column = "cit"
map = {{ AT = "NAT", EU = "EU27_2020_FOR", X = "NEU27_2020_FOR" }}

[variables.wstatus]
column = "ws"
map = {{ 1 = "EMP", 2 = "UNE", 3 = "INAC" }}
"""


def write_small(tmp_path: Path, rows: list[str], *, weight: str | None = None) -> Path:
    """A small register (or, with a weight column, survey) file and its node config."""
    header = "age,sex,cit,ws" + (f",{weight}" if weight else "")
    (tmp_path / "small.csv").write_text("\n".join([header, *rows]) + "\n")
    config = tmp_path / "small.toml"
    config.write_text(
        SMALL_TOML.format(
            source="survey" if weight else "register",
            weight=f'weight = "{weight}"' if weight else "",
        )
        + pki().node_trust_toml("small")
    )
    return config


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("rho_budget = ", "rho_budgte = ", "privacy.rho_budgte"),
        ("[privacy]", "[privcy]\nrho_budget = 1.0\n\n[privacy]", "privcy"),
        ('column = "rb090"', 'colum = "rb090"', "variables.sex.colum"),
    ],
    ids=["typo-in-privacy", "unknown-table", "typo-in-variable"],
)
def test_unknown_config_key_names_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, key: str
) -> None:
    config = write_laeken_config(tmp_path)
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new, 1))

    with pytest.raises(ConfigError) as info:
        load_config(config)

    error = info.value
    assert error.reason == "INVALID_CONFIG"
    assert error.field == key
    assert str(config.resolve()) in error.message
    assert f"{key}: unknown key" in error.message
    assert "allowed keys here" in error.hint

    assert main(["node", "check", "--config", str(config)]) == 2
    out = capsys.readouterr()
    assert f"{config.resolve()}: {key}: unknown key" in out.err
    assert f"where: {key}" in out.err
    assert "Traceback" not in out.err + out.out
    assert not (tmp_path / "state-vienna").exists()  # nothing touched the ledger


@pytest.mark.parametrize(
    ("old", "key"),
    [
        ("rho_budget = 1000000000.0", "privacy.rho_budget"),
        ("max_rho_per_query = 1000000000.0", "privacy.max_rho_per_query"),
        ("max_weight = 2000.0", "privacy.max_weight"),
    ],
    ids=["rho_budget", "max_rho_per_query", "max_weight"],
)
def test_infinite_privacy_parameter_names_the_key(tmp_path: Path, old: str, key: str) -> None:
    config = write_laeken_config(tmp_path)
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, f"{old.split(' = ')[0]} = inf", 1))

    with pytest.raises(ConfigError) as info:
        load_config(config)

    assert info.value.field == key
    assert key in info.value.message and "inf" in info.value.message


@pytest.mark.parametrize(
    ("disclosure", "key", "words"),
    [
        ('rules = "eu_silc"', "disclosure.rules", "unknown rule set 'eu_silc'"),
        ('rules = "lfs"', "disclosure.rules", "the office's own limits"),
        ('rules = "lfs"\nmin_count = 5000', "disclosure.rules", "the office's own limits"),
        ("unknown_flag = 20", "disclosure.unknown_flag", "share between 0 and 1"),
        ("certainty = 0.3", "disclosure.certainty", "must lie in [0.5, 1)"),
    ],
    ids=["unknown-set", "lfs-without-limits", "lfs-without-b", "percent-share", "certainty"],
)
def test_bad_disclosure_rules_name_the_key(
    tmp_path: Path, disclosure: str, key: str, words: str
) -> None:
    config = write_laeken_config(tmp_path)
    config.write_text(config.read_text() + f"\n[disclosure]\n{disclosure}\n")

    with pytest.raises(ConfigError) as info:
        load_config(config)

    assert info.value.field == key
    assert words in info.value.message


def test_named_rules_take_explicit_numbers_over_their_own(tmp_path: Path) -> None:
    config = write_laeken_config(tmp_path)
    text = config.read_text()
    config.write_text(text + '\n[disclosure]\nrules = "eu-silc"\nunreliable_below = 40\n')
    rules = load_config(config).disclosure
    assert (rules.name, rules.min_count, rules.unreliable_below) == ("eu-silc", 20, 40)
    assert (rules.unknown_flag, rules.unknown_suppress) == (0.2, 0.5)
    config.write_text(
        text + '\n[disclosure]\nrules = "lfs"\nmin_count = 3000\nunreliable_below = 7000\n'
    )
    lfs = load_config(config).disclosure
    assert (lfs.weighted, lfs.min_count, lfs.unreliable_below) == (True, 3000, 7000)


COORDINATOR_TOML = """
[coordinator]
id = "eurostat"
timeout_seconds = 30

[tls]
ca = "pki/ca.pem"
cert = "pki/coordinator-eurostat.pem"
key = "pki/coordinator-eurostat.key"

[signing]
key = "pki/coordinator-eurostat.sign.key"

[[nodes]]
id = "vienna"
address = "127.0.0.1:50051"

[[nodes]]
id = "tyrol"
address = "127.0.0.1:50052"
"""


def test_coordinator_config_parses(tmp_path: Path) -> None:
    path = tmp_path / "coordinator.toml"
    path.write_text(COORDINATOR_TOML, encoding="utf-8")
    config = load_coordinator_config(path)
    assert config.id == "eurostat" and config.timeout_seconds == 30.0
    assert config.state_dir == tmp_path / "state"
    assert [(n.id, n.address, n.public_key) for n in config.nodes] == [
        ("vienna", "127.0.0.1:50051", None),
        ("tyrol", "127.0.0.1:50052", None),
    ]
    assert config.tls == TlsFiles(
        tmp_path / "pki/ca.pem",
        tmp_path / "pki/coordinator-eurostat.pem",
        tmp_path / "pki/coordinator-eurostat.key",
    )
    assert config.signing_key == tmp_path / "pki/coordinator-eurostat.sign.key"


BAD_COORDINATOR_CONFIGS = [
    pytest.param(
        'id = "eurostat"', 'id = "eurostat"\nretries = 3',
        "coordinator.retries", "unknown key", "allowed keys here", id="typo-in-coordinator",
    ),
    pytest.param(
        "[coordinator]", "[coordinatr]", "coordinatr", "unknown key", "allowed keys here",
        id="unknown-table",
    ),
    pytest.param(
        'id = "eurostat"', 'id = ""', "coordinator.id", "is empty", "e.g. id", id="empty-id",
    ),
    pytest.param(
        "timeout_seconds = 30", "timeout_seconds = -1", "coordinator.timeout_seconds",
        "must be a positive finite number", "", id="negative-timeout",
    ),
    pytest.param(
        'ca = "pki/ca.pem"', 'ca = "pki/ca.pem"\npem = "x"', "tls.pem", "unknown key",
        "allowed keys here: ca, cert, crl, key, renew_days", id="typo-in-tls",
    ),
    pytest.param(
        'cert = "pki/coordinator-eurostat.pem"', "cert = 3", "tls.cert", "expected str, got int",
        "", id="tls-path-not-text",
    ),
    pytest.param(
        'key = "pki/coordinator-eurostat.sign.key"', 'key = ""', "signing.key", "is empty",
        "relative to the config file", id="empty-signing-key",
    ),
    pytest.param(
        'id = "tyrol"', 'id = "vienna"', "nodes[1].id", "node id 'vienna' appears twice", "",
        id="node-twice",
    ),
    pytest.param(
        'address = "127.0.0.1:50052"', 'adress = "127.0.0.1:50052"', "nodes[1].adress",
        "unknown key", "allowed keys here: address, id, public_key", id="typo-in-node",
    ),
    pytest.param(
        'address = "127.0.0.1:50052"', 'address = "127.0.0.1:50052"\npublic_key = "abc"',
        "nodes[1].public_key", "a public key must look like 'ed25519:<base64>'", ".sign.pub",
        id="bad-public-key",
    ),
    pytest.param(
        COORDINATOR_TOML[COORDINATOR_TOML.index("[[nodes]]") :], "", "nodes",
        "no [[nodes]] given", "add [[nodes]]", id="no-nodes",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "key", "says", "hint"), BAD_COORDINATOR_CONFIGS)
def test_bad_coordinator_config_names_file_and_key(
    tmp_path: Path, old: str, new: str, key: str, says: str, hint: str
) -> None:
    assert old in COORDINATOR_TOML
    path = tmp_path / "coordinator.toml"
    path.write_text(COORDINATOR_TOML.replace(old, new, 1), encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_coordinator_config(path)

    error = info.value
    assert error.reason == "INVALID_CONFIG"
    assert error.field == key
    assert f"{path.resolve()}: {key}: {says}" in error.message
    assert hint in error.hint


@pytest.mark.parametrize("load", [load_config, load_coordinator_config], ids=["node", "coord"])
@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no such config file"),
        (b"[node\n", "not valid TOML"),
        (b'[node]\nname = "Wien \xfc"\n', "not UTF-8 text"),
        ("dir", "cannot read the config"),
    ],
    ids=["missing", "not-toml", "not-utf8", "a-directory"],
)
def test_unreadable_config_names_the_file(
    tmp_path: Path, load: Callable[[Path], object], content: bytes | str | None, says: str
) -> None:
    path = tmp_path / "config.toml"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)

    with pytest.raises(ConfigError) as info:
        load(path)

    assert info.value.message.startswith(f"{path.resolve()}: {says}")


def test_node_key_files_are_read_like_the_coordinators(tmp_path: Path) -> None:
    config = write_laeken_config(tmp_path)
    text = config.read_text()
    config.write_text(text.replace("[signing]\nkey = ", "[signing]\nkeys = ", 1))

    with pytest.raises(ConfigError) as info:
        load_config(config)

    assert info.value.field == "signing.keys"
    assert "allowed keys here: key" in info.value.hint


def test_node_grant_with_a_bad_public_key_names_the_file(tmp_path: Path) -> None:
    config = write_laeken_config(tmp_path)
    text = config.read_text()
    assert 'public_key = "ed25519:' in text
    config.write_text(text.replace('public_key = "ed25519:', 'public_key = "rsa:', 1))

    with pytest.raises(ConfigError) as info:
        load_config(config)

    assert info.value.field == "coordinators[0].public_key"
    assert str(config.resolve()) in info.value.message
    assert "ed25519:<base64>" in info.value.message


# --- data -------------------------------------------------------------------------------


def test_missing_column_names_the_column_and_the_files(
    tmp_path: Path, cities: SyntheticCities, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cities.file("vienna")
    config = tmp_path / "vienna.toml"
    config.write_text(cities.node_toml("vienna"))
    config.write_text(config.read_text().replace('column = "rb090"', 'column = "nosuchcol"'))
    loaded = load_config(config)

    with pytest.raises(DataError) as info:
        load_frame(loaded)

    error = info.value
    assert error.reason == "MISSING_COLUMN"
    assert error.field == "nosuchcol"
    assert "nosuchcol" in error.message
    assert config.name in error.message  # the config that names it
    assert str(data) in error.message  # the data file that lacks it
    assert "rb090" in error.hint  # the columns that do exist

    assert main(["node", "check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "nosuchcol" in err and config.name in err and data.name in err


@pytest.mark.parametrize("engine", ["memory", "duckdb"])
def test_missing_column_suggests_the_likeliest_and_lists_every_column(
    tmp_path: Path, engine: str
) -> None:
    rows = ["30,m,AT,1", "31,f,AT,2"]
    config = write_small(tmp_path, rows)
    wide = pd.read_csv(tmp_path / "small.csv", dtype=str)
    for i in range(58):  # 62 columns, as the survey in issue 11
        wide[f"extra_{i:02d}"] = "0"
    wide.to_csv(tmp_path / "small.csv", index=False)
    text = config.read_text().replace('column = "cit"', 'column = "citt"')
    config.write_text(
        text.replace('time_period = "2024"', f'time_period = "2024"\nengine = "{engine}"')
    )

    with pytest.raises(DataError) as info:
        open_engine(load_config(config))

    error = info.value
    assert error.reason == "MISSING_COLUMN" and error.field == "citt"
    assert "did you mean 'cit'?" in error.message
    assert "62 columns" in error.hint
    assert all(c in error.hint.split(": ", 1)[1].split(", ") for c in wide.columns)


def test_unmapped_codes_are_reported_with_counts_and_counted_as_unk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        "30,m,AT,1", "31,f,AT,1", "32,m,EU,2", "33,f,X,3", "34,m,AT,8",
        "35,f,AT,8", "36,m,EU,x", "37,f,AT,", "38,m,AT,1", "39,f,X,2",
    ]  # fmt: skip
    config = write_small(tmp_path, rows)
    loaded = load_config(config)

    data = harmonise(load_frame(loaded), loaded)

    cov = data.coverage["wstatus"]
    assert cov.rows == 10
    assert cov.unmapped == {"8": 2, "x": 1}
    assert cov.missing == 1
    assert cov.mapped == 6
    assert cov.codes == {"EMP": 3, "UNE": 2, "INAC": 1, "UNK": 4}  # 2 + 1 unmapped, 1 missing
    assert sum(cov.codes.values()) == cov.rows  # nobody silently dropped

    # wstatus is an outcome: `node check` prints its report, then `node serve`'s refusal.
    assert main(["node", "check", "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert "[variables.wstatus] column 'ws': 2 distinct value(s) in 3 of 10 rows" in err
    assert "('8', 'x')" in err and 'unmapped = "unknown"' in err
    assert "unmapped value '8': 2 rows (counted as UNK)" in out
    assert "unmapped value 'x': 1 rows (counted as UNK)" in out
    assert "UNK=4" in out
    assert "no budget was spent" in out
    assert not (tmp_path / "state").exists()  # check never opens the ledger


def test_empty_dataset_after_where_names_the_filter(
    tmp_path: Path, serve: ServeFn, cities: SyntheticCities, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cities.file("vienna")
    config = tmp_path / "atlantis.toml"
    config.write_text(cities.node_toml("atlantis", "vienna", where='{ rb090 = "Atlantis" }'))

    with pytest.raises(DataError) as info:
        load_frame(load_config(config))

    error = info.value
    assert error.reason == "EMPTY_DATASET"
    assert error.field == "dataset.where"
    assert "rb090 = 'Atlantis'" in error.message
    assert data.name in error.message

    with pytest.raises(DataError):
        serve(config)  # the node does not start on an empty selection
    assert not (tmp_path / "state-atlantis").exists()

    assert main(["node", "check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "rb090 = 'Atlantis'" in err and "dataset.where" in err


def test_missing_weight_names_the_column_and_the_count(
    tmp_path: Path, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = ["30,m,AT,1,10.5", "31,f,AT,2,", "32,m,EU,3,7", "33,f,X,1,12"]
    config = write_small(tmp_path, rows, weight="w")
    loaded = load_config(config)

    with pytest.raises(DataError) as info:
        harmonise(load_frame(loaded), loaded)

    error = info.value
    assert "'w'" in error.message
    assert "has 1 missing" in error.message
    assert "small.csv" in error.message
    assert error.field == "dataset.weight (w)"

    with pytest.raises(DataError):
        serve(config)
    assert not (tmp_path / "state").exists()  # no ledger, nothing spent

    assert main(["node", "check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "'w'" in err and "has 1 missing" in err


# --- queries over gRPC: the node's own validation ---------------------------------------


INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT

BAD_QUERIES = [
    pytest.param(
        request(indicators=("employment_rat",)),
        INVALID_ARGUMENT, "UNKNOWN_INDICATOR", "indicators", "'employment_rat'",
        id="unknown-indicator",
    ),
    pytest.param(
        request(indicators=("employment_rate", "happiness")),
        INVALID_ARGUMENT, "UNKNOWN_INDICATOR", "indicators", "'happiness'",
        id="one-unknown-indicator-of-two",
    ),
    pytest.param(
        request(group_dim="nationality"),
        INVALID_ARGUMENT, "UNKNOWN_DIMENSION", "group_dim", "'nationality'",
        id="unknown-group-dimension",
    ),
    pytest.param(
        request(group_dim=""),
        INVALID_ARGUMENT, "UNKNOWN_DIMENSION", "group_dim", "''",
        id="no-group-dimension",
    ),
    pytest.param(
        request(breakdowns=("region",)),
        INVALID_ARGUMENT, "UNKNOWN_DIMENSION", "breakdowns", "'region'",
        id="unknown-breakdown",
    ),
    pytest.param(
        request(breakdowns=("sex", "sex")),
        INVALID_ARGUMENT, "MALFORMED_QUERY", "breakdowns", "twice",
        id="breakdown-twice",
    ),
    pytest.param(
        request(comparator="EU"),
        INVALID_ARGUMENT, "MALFORMED_QUERY", "comparator", "'EU'",
        id="bad-comparator",
    ),
    pytest.param(
        request(rho=0.0), INVALID_ARGUMENT, "MALFORMED_QUERY", "rho", "got 0.0", id="rho-zero"
    ),
    pytest.param(
        request(rho=-0.5),
        INVALID_ARGUMENT, "MALFORMED_QUERY", "rho", "got -0.5",
        id="rho-negative",
    ),
    pytest.param(
        request(rho=math.nan), INVALID_ARGUMENT, "MALFORMED_QUERY", "rho", "got nan", id="rho-nan"
    ),
    pytest.param(
        request(rho=math.inf), INVALID_ARGUMENT, "MALFORMED_QUERY", "rho", "got inf", id="rho-inf"
    ),
    pytest.param(
        request(query_id=""),
        INVALID_ARGUMENT, "MALFORMED_QUERY", "query_id", "query_id",
        id="empty-query-id",
    ),
    pytest.param(
        request(query_id="a b/c"),
        INVALID_ARGUMENT, "MALFORMED_QUERY", "query_id", "query_id",
        id="query-id-with-bad-characters",
    ),
    pytest.param(
        request(query_id="q" * 129),
        INVALID_ARGUMENT, "MALFORMED_QUERY", "query_id", "1-128 characters",
        id="query-id-too-long",
    ),
    pytest.param(
        request(indicators=()),
        INVALID_ARGUMENT, "MALFORMED_QUERY", "indicators", "names no indicator",
        id="no-indicator",
    ),
    pytest.param(
        pb.QueryRequest(query_id="q-1"),
        INVALID_ARGUMENT, "MALFORMED_QUERY", "indicators", "names no indicator",
        id="no-spec-at-all",
    ),
    pytest.param(
        request(indicators=("attainment_low",)),
        grpc.StatusCode.FAILED_PRECONDITION, "VARIABLE_NOT_PROVIDED", "isced11", "'isced11'",
        id="variable-not-mapped",
    ),
    pytest.param(
        request(group_dim="c_birth"),
        grpc.StatusCode.FAILED_PRECONDITION, "VARIABLE_NOT_PROVIDED", "c_birth", "'c_birth'",
        id="group-variable-not-mapped",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("req", "code", "reason", "field", "says"), BAD_QUERIES)
def test_node_refuses_bad_query_and_charges_nothing(
    serve_city: ServeCityFn,
    req: pb.QueryRequest,
    code: grpc.StatusCode,
    reason: str,
    field: str,
    says: str,
) -> None:
    node = serve_city(rho_budget=10.0, max_rho=5.0, without=("isced11",))

    error, detail = refusal(node, req)

    assert error.code() == code
    assert detail.reason == reason
    assert detail.field == field
    assert says in detail.message
    assert detail.hint or reason == "MALFORMED_QUERY"
    assert error.details() == f"{reason}: {detail.message}"
    assert spent(node) == 0
    assert node.service.ledger.entries() == []
    # The refusal left nothing behind: a good query under the same id is still new.
    if req.query_id == "q-1":
        good = node.ask(request("q-1"))
        assert not good.cached and good.rho_charged == pytest.approx(0.5)


def test_internal_errors_cross_the_wire_without_details(
    tmp_path: Path, serve_city: ServeCityFn
) -> None:
    node = serve_city(rho_budget=10.0, max_rho=5.0)
    # Pull the ledger out from under the node: its next query fails inside SQLite.
    for path in node.service.ledger.path.parent.glob("ledger.sqlite*"):
        path.unlink()

    error, detail = refusal(node, request("q-1"))

    assert error.code() == grpc.StatusCode.INTERNAL
    assert detail.reason == "INTERNAL"
    assert "node's log" in detail.message
    text = (error.details() or "") + detail.message + detail.hint + detail.field
    for leak in ("sqlite", "releases", "OperationalError", str(tmp_path)):
        assert leak not in text


# --- the coordinator's own validation ---------------------------------------------------


@pytest.mark.parametrize(
    ("query", "reason", "field"),
    [
        (Query(("employment_rat",), "citizen"), "UNKNOWN_INDICATOR", "indicators"),
        (Query(("employment_rate",), "nationality"), "UNKNOWN_DIMENSION", "group_dim"),
        (Query(("employment_rate",), "citizen", rho=math.nan), "MALFORMED_QUERY", "rho"),
    ],
    ids=["unknown-indicator", "unknown-group", "rho-nan"],
)
def test_coordinator_validates_before_contacting_any_node(
    tmp_path: Path, query: Query, reason: str, field: str
) -> None:
    config = coordinator_for(tmp_path, [("nowhere", f"127.0.0.1:{free_port()}")])
    config = dataclasses.replace(config, timeout_seconds=30.0)

    started = time.monotonic()
    with pytest.raises(QueryError) as info:
        run_query(config, query)

    assert time.monotonic() - started < 1.0  # asking the dead node would take far longer
    assert info.value.reason == reason
    assert info.value.field == field
    assert not (config.state_dir / "queries.jsonl").exists()  # nothing was sent or logged

"""What produced a node's answers: a fingerprint of its dataset and its effective config.

An answer is reused (a retry, or the same query again) only over the same fingerprint
(DESIGN section 4), every signed result carries it (section 5), and the audit log records
it, so a table computed before a fix of the data or of a mapping can never be served as
current, and downstream users can see which results came from the same data.

The fingerprint is an HMAC-SHA256, under a key only the node holds (derived from its
signing key), over two parts:

- the dataset, per engine:

  - ``memory``: the harmonised arrays the node counts from (every mapped variable's
    codes, ages, clipped weights), in the file's row order: what the file's bytes
    became, the same whether the node read the file or was handed the data (tests,
    benchmarks); a column the node does not read does not change it;
  - files read by a database engine (``duckdb`` and ``spark`` reading ``path``): the
    bytes of every file the path names (a glob, or every file under a directory), in
    name order;
  - a database table (``postgresql``; ``spark`` reading ``table``): the start-up scan
    the engine already runs for its coverage report, in the same ``GROUP BY``: the joint
    counts (and clipped weight sums) of every categorical variable with age, and each
    numeric variable's bin counts. An edit that keeps all of these (say, moving income
    between two persons within the same bins) is not seen, and neither is a table that
    changes under a running node until it restarts: serve a snapshot or a view that does
    not change, as the engines already require;

- the effective config: everything that changes the released numbers (the mappings, the
  population filter ``where``/``where_not``, the weight column, ``max_weight``, the
  node's country, the budget shares of the margins and sample counts, the disclosure
  rules that flag cells). Notes (``deviation``), names and addresses are left out.

Why keyed: a plain hash of the data is a deterministic function of every person's
record, published in every signed result. Someone who knew every record but one could
hash each candidate value of the last person and find it; the privacy guarantee would be
void. Under the node's secret key the fingerprint shows only whether two results came
from the same data and config. A new signing key gives new fingerprints, so answers
cached under the old key are not reused (a new query is a new, charged release).
"""

from __future__ import annotations

import glob
import hashlib
import hmac
import json
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from node.config import NodeConfig
from node.harmonise import Harmonised

__all__ = ["config_digest", "file_digest", "fingerprint", "fingerprint_key", "harmonised_digest"]

_CHUNK = 1 << 20
_BLOCK = 1 << 16  # rows converted to int64 and hashed at once


def fingerprint_key(signing_key: Ed25519PrivateKey) -> bytes:
    """The node's fingerprint key: HKDF-SHA256 of its signing key, for this use only."""
    raw = signing_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"fedstats fingerprint v1")
    return kdf.derive(raw)


def fingerprint(config: NodeConfig, data_digest: str, key: bytes) -> str:
    """The period's fingerprint: its dataset's digest and its effective config's, keyed."""
    body = json.dumps({"data": data_digest, "config": config_digest(config)})
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 over the bytes of every file ``path`` names (a glob or a directory)."""
    text = str(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    elif glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True))
    else:
        files = [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.stat().st_size}\n".encode())
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def harmonised_digest(*parts: Harmonised, sort: bool = True) -> str:
    """SHA-256 over harmonised records: the arrays every count is made from.

    With ``sort`` (a database's scan, whose groups come in any order) the records are put
    in a canonical order first; without it (the memory engine's rows, in the file's
    order) they are hashed as they are. Weight sums are rounded to micro-units, since a
    database may add them in any order.
    """
    digest = hashlib.sha256()
    for data in parts:
        names = sorted(data.codes)
        digest.update(json.dumps(names).encode())
        if not sort:
            _update_by_column(digest, data, names)
            continue
        columns: list[np.ndarray[Any, Any]] = [np.asarray(data.codes[n], np.int64) for n in names]
        columns.append(np.asarray(data.age, np.int64))
        ones = np.ones(data.rows, np.int64)
        columns.append(ones if data.persons is None else np.asarray(data.persons, np.int64))
        if data.weights is not None:
            columns.append(_micro_units(np.asarray(data.weights)))
        table = np.stack(columns)
        if data.rows:
            table = table[:, np.lexsort(table[::-1])]
        digest.update(np.ascontiguousarray(table).tobytes())
    return digest.hexdigest()


def _update_by_column(digest: Any, data: Harmonised, names: list[str]) -> None:
    """Hash the records' columns one after the other, each as int64, a block at a time.

    The same bytes as the stacked table `harmonised_digest` hashes when it sorts, here
    in row order (a C-ordered stack of the columns is the columns one after the other),
    without making that table: ten int64 columns of 10M rows would be 800 MB.
    """
    rows = data.rows
    columns: list[np.ndarray[Any, Any]] = [data.codes[n] for n in names]
    columns.append(data.age)
    for column in columns:
        for start in range(0, rows, _BLOCK):
            digest.update(np.ascontiguousarray(column[start : start + _BLOCK], np.int64))
    if data.persons is None:  # every record one person: a column of ones
        ones = np.ones(min(rows, _BLOCK), np.int64)
        for start in range(0, rows, _BLOCK):
            digest.update(ones[: min(_BLOCK, rows - start)])
    else:
        for start in range(0, rows, _BLOCK):
            digest.update(np.ascontiguousarray(data.persons[start : start + _BLOCK], np.int64))
    if data.weights is not None:
        for start in range(0, rows, _BLOCK):
            digest.update(_micro_units(data.weights[start : start + _BLOCK]))


def _micro_units(weights: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Weights (or weight sums) rounded to millionths, as int64."""
    return np.rint(np.asarray(weights) * 1e6).astype(np.int64)


def config_digest(config: NodeConfig) -> str:
    """SHA-256 of the canonical JSON of everything in ``config`` that changes the numbers."""
    dataset = config.dataset
    privacy = config.privacy
    effective = {
        "variables": {n: _without_notes(m) for n, m in sorted(config.variables.items())},
        "time_period": dataset.time_period,
        "where": dataset.where,
        "where_not": getattr(dataset, "where_not", {}),
        "weight": dataset.weight,
        "max_weight": privacy.max_weight,
        "sample_rho_share": privacy.sample_rho_share,
        "margin_rho_share": privacy.margin_rho_share,
        "country": config.country,
        "disclosure": _plain(config.disclosure),
    }
    body = json.dumps(effective, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _without_notes(mapping: object) -> object:
    plain = _plain(mapping)
    if isinstance(plain, dict):
        plain.pop("deviation", None)
    return plain


def _plain(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value

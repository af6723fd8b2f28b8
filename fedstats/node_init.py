"""`fedstats node init`: a commented node config written from a data file's columns.

The config is a start, not a guess passed off as a mapping: it names every column of the
file, sets the columns it recognises by name (age; for a survey, the weight and a
``max_weight`` that clips nothing), and writes each harmonised variable's section
commented out, with the column it would read and that column's values as a map to fill
in. It loads as it is (`fedstats node check` runs on it); an operator uncomments and
completes one variable at a time, checking each with `node check`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from common.errors import ConfigError, DataError
from indicators.concepts import OUTCOME_INPUTS
from indicators.variables import CATEGORICAL

__all__ = ["KINDS", "init_config"]

KINDS = ("register", "survey")
SAMPLE_ROWS = 200_000  # rows read for the values shown; the whole file is read for weights
MAX_VALUES = 40  # values listed per column; beyond that the column is not one of codes

# Names (lower case) a column of each variable is often given, in order of preference.
_GUESSES: dict[str, tuple[str, ...]] = {
    "age": ("age", "rx010", "alter", "leeftijd", "ika", "ilikia", "age_years"),
    "sex": ("sex", "gender", "rb090", "geslacht", "sukupuoli", "fylo"),
    "citizen": ("citizen", "citizenship", "nationality", "pb220a", "kansalaisuus"),
    "c_birth": ("c_birth", "country_of_birth", "pb210", "birth_country", "geboorteland"),
    "wstatus": ("wstatus", "pl032", "pl031", "pl030", "ilostat", "labour_status"),
    "isced11": ("isced11", "isced", "pe041", "pe040", "education"),
    "in_educ": ("in_educ", "pe010", "education_current"),
    "tenure": ("tenure", "hh021"),
    "income": ("income", "eqincome", "hx090", "equivalised_income"),
    "yearesid": ("year_of_arrival", "arrival_year", "pb230"),
}
_WEIGHTS = ("weight", "rb050", "pb040", "db090", "gewicht", "paino", "w")
_WEIGHT_PARTS = ("weight", "wgt", "gewicht", "paino", "vary", "poids")  # within a name


def init_config(
    data: Path, kind: str, node_id: str, country: str, path: str = "", weight: str | None = None
) -> str:
    """The commented config text for a node serving ``data`` as a ``kind`` dataset.

    ``path`` is how the config names the file (default: its name, beside the config);
    ``weight`` the survey's weight column (default: recognised by its name).

    Raises:
        DataError: The file cannot be read.
        ConfigError: ``kind`` is not one of `KINDS`.
    """
    if kind not in KINDS:
        raise ConfigError(f"--kind {kind!r}: use one of {', '.join(KINDS)}", field="kind")
    frame = _read(data)
    columns = [str(c) for c in frame.columns]
    taken: set[str] = set()
    if weight is not None and weight not in columns:
        raise DataError(
            f"{data}: no weight column {weight!r}",
            field="weight",
            hint=f"the file has {len(columns)} columns: {', '.join(columns)}",
        )
    if kind == "survey" and weight is None:
        weight = _guess(columns, _WEIGHTS, taken) or next(
            (c for c in columns if any(p in c.lower() for p in _WEIGHT_PARTS)), None
        )
    if weight is not None:
        taken.add(weight)
    header = _header(path or data.name, columns, node_id, country, kind, weight, frame)
    parts = [header]
    for name in _GUESSES:
        column = _guess(columns, _GUESSES[name], taken)
        parts.append(_variable(name, column, frame))
    return "\n".join(parts)


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: no such file", field="data", hint="give a CSV or Parquet file")
    try:
        frame: pd.DataFrame
        if path.suffix.lower() == ".parquet":
            frame = pq.read_table(path).to_pandas().head(SAMPLE_ROWS)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=SAMPLE_ROWS)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it: {exc}", field="data") from exc
    return frame


def _guess(columns: list[str], names: tuple[str, ...], taken: set[str]) -> str | None:
    lower = {c.lower(): c for c in columns if c not in taken}
    for name in names:
        if name in lower:
            taken.add(lower[name])
            return lower[name]
    return None


def _toml(value: object) -> str:
    """A TOML string or key (JSON's escapes are TOML's)."""
    return json.dumps(str(value))


def _header(
    data: str,
    columns: list[str],
    node_id: str,
    country: str,
    kind: str,
    weight: str | None,
    frame: pd.DataFrame,
) -> str:
    listed = "\n".join(f"#   {c}" for c in columns)
    lines = [
        f"# Node config for {Path(data).name}, written by `fedstats node init --kind {kind}`.",
        "# Every key is DESIGN section 6; the README explains each. Fill in what is marked",
        "# TODO, uncomment and complete one variable at a time, and check each with",
        f"#   fedstats node check --config {node_id}.toml",
        f"# The file has {len(columns)} columns:",
        listed,
        "",
        "[node]",
        f"id = {_toml(node_id)}          # stable id: certificates, outputs, audit log",
        'geo = "TODO"                   # the code published in tables (a city code)',
        '# geo_level = "city"           # city | lau | fua | nuts3 | nuts2 | country',
        f"name = {_toml(node_id.capitalize())}",
        f"country = {_toml(country)}                # ISO 3166 alpha-2: who counts as NAT",
        'listen = "0.0.0.0:50051"',
        'state_dir = "state"            # ledger, audit log; back it up',
        '# chain_head = "/other/disk/chain-head"   # mirror of the audit chain head',
        "",
        "[dataset]",
        f"path = {_toml(data)}",
        'time_period = "TODO"           # the reference period, e.g. "2024"',
        f'source = "{kind}"',
    ]
    if kind == "survey":
        lines += _weight_lines(weight)
    lines += [
        '# where = { region = ["AT13", "AT12"] }   # keep rows whose value is one of these',
        '# where_not = { status = ["X"] }         # leave these rows out',
        "# poverty_line = 14218.0       # the national AROP line for this period, if known",
        "# max_unmapped_share = 0.05    # refuse to start when a variable has more unmapped",
        "",
        "[privacy]",
        "rho_budget = 1.0               # per person, shared by every period of this population",
        "max_rho_per_query = 0.25",
    ]
    if kind == "survey":
        lines += _max_weight_lines(weight, frame)
    lines += [
        "",
        "[disclosure]",
        f'rules = "{"eu-silc" if kind == "survey" else "register"}"'
        "             # eu-silc | lfs | register",
        "",
        "# [tls] ca/cert/key and [signing] key: `fedstats certs issue --node ID`;",
        "# [[coordinators]] id/public_key/rho_cap: who may ask (README, Running a federation)",
        "",
    ]
    return "\n".join(lines)


def _weight_lines(weight: str | None) -> list[str]:
    if weight is None:
        return [
            '# weight = "TODO"             # the survey weight column: none was recognised',
        ]
    return [f"weight = {_toml(weight)}            # survey weight (persons each row stands for)"]


def _max_weight_lines(weight: str | None, frame: pd.DataFrame) -> list[str]:
    values = pd.to_numeric(frame[weight], errors="coerce").dropna() if weight else pd.Series([])
    if values.empty:
        return ["max_weight = 1000.0           # TODO: at least the largest weight"]
    largest = float(values.max())
    bound = float(10 ** math.ceil(math.log10(largest)) if largest > 0 else 1.0)
    bound = max(math.ceil(largest / (bound / 10)) * (bound / 10), 1.0)
    return [
        f"max_weight = {bound:g}             # the largest weight read is {largest:g}: nothing",
        "#   is clipped. Lower it and the noise shrinks, but every weight over it is cut,",
        "#   and `node check` shows how much of the total weight that removes",
    ]


def _variable(name: str, column: str | None, frame: pd.DataFrame) -> str:
    header = f"[variables.{name}]"
    if name == "age":
        if column is None:
            return f'{header}\ncolumn = "TODO"  # the age in years: no column was recognised\n'
        return f"{header}\ncolumn = {_toml(column)}\n"
    if name == "income":
        return (
            f"# {header}              # equivalised disposable income (a number)\n"
            f"# column = {_toml(column or 'TODO')}\n"
        )
    if name == "yearesid":
        return (
            f"# {header}              # years since arrival, from the arrival year\n"
            f"# arrival_year = {_toml(column or 'TODO')}\n"
            '# missing = "NAP"         # empty = born here (a native)\n'
        )
    codes = ", ".join(CATEGORICAL[name].codes)
    lines = [f"# {header}              # codes: {codes}", f"# column = {_toml(column or 'TODO')}"]
    if column is not None:
        texts = frame[column].astype(str).str.strip()
        values = sorted(set(texts[(texts != "") & (texts != "nan")]))  # empty: `missing`
        if len(values) > MAX_VALUES:
            lines.append(f"#   {len(values)} distinct values: map them, or set default")
        else:
            shown = ", ".join(f'{_toml(v)} = "TODO"' for v in values)
            lines.append(f"# map = {{ {shown} }}")
    lines += [
        '# default = "TODO"          # optional: the code of values not in the map',
        '# deviation = "..."         # when your definition differs from the harmonised one',
    ]
    if name in OUTCOME_INPUTS:
        lines.append(
            '# unmapped = "unknown"      # an outcome: values not in the map refuse the node'
            " unless declared unknown (rows then flagged d)"
        )
    return "\n".join(lines) + "\n"

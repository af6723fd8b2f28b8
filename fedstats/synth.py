"""Synthetic register microdata for one city, in that city's own local format.

Everything here is **synthetic**: no real person, register or survey is behind these rows.
The generator exists so that the demo, the tests and the benchmarks have realistic input
that a node must harmonise before it can answer a query, the way a real data holder would.

What it models, per person (one row each, a register: no weights):

- **age** from an urban age pyramid (0 to 99; children included), per city;
- **sex**, with more women at old ages;
- **migrant structure**: a city-specific share of foreign-born people, concentrated at
  working ages, split into EU-born and non-EU-born with plausible origin countries per
  city; an **arrival year** for the foreign-born (never before birth, and never before the
  origin's migration history starts, e.g. Syrians from 2011); **citizenship** correlated
  with the country of birth, naturalisation rising with years since arrival after a
  city-specific waiting time (rare for EU citizens); some native-born foreign citizens
  (the second generation) and a few stateless people;
- **education** (ISCED 2011 groups) from age 15 by birth cohort, with a bimodal pattern for
  people who arrived from outside the EU as adults (more low and some high attainment);
- **labour status** (ILO employed / unemployed / inactive) from age 15, depending on age
  (lower at 20-24 and 55-64), sex, education and origin: non-EU-born people have lower
  employment, higher unemployment and a larger gender gap, closing with years since
  arrival; plus the detail local registers keep (part-time, student, retired ...);
- **equivalised disposable income** (lognormal; lower for the non-employed and for recent
  non-EU arrivals).

At ages 20-64 the native-born employment rate comes out at roughly 70-80 %, the non-EU-born
one roughly 10-20 points lower, the EU-born one in between. Under-15s have no labour status
and no education (empty cells, which a node maps to ``UNK``).

Each of the five demo cities writes its own column names and codes (Dutch, transliterated
Greek, Flemish, Finnish, EU-SILC style), and each has a small realistic share of missing or
unmapped values so that ``fedstats node check`` has something to report. `variables_toml`
returns the matching ``[variables.*]`` sections of the city's node configuration
(DESIGN section 6), which map those local columns to the harmonised variables of DESIGN
section 2.

Any other city name gets a generic profile: English column names, ISO 3166 alpha-2 country
codes, text labels, and Germany (`GENERIC_COUNTRY`, ``"DE"``) as the home country, with
German-style origin countries. Germany is used because the generator has no local
knowledge of an unknown city and needs a real home country for its origin mix; put the same
country in the node's ``[node] country``.

Generation is vectorised numpy: a million persons take one to two seconds on one core.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "CITIES",
    "GENERIC_COUNTRY",
    "TIME_PERIOD",
    "WRITE_SUFFIXES",
    "CityFacts",
    "city_facts",
    "generate",
    "variables_toml",
    "write",
]

CITIES: tuple[str, ...] = ("amsterdam", "athens", "ghent", "helsinki", "vienna")
"""The cities with a hand-made local format, in alphabetical order."""

TIME_PERIOD = "2025"
"""Reference period of the synthetic registers (arrival years never pass it)."""

GENERIC_COUNTRY = "DE"
"""Home country (ISO 3166 alpha-2) of the generic profile used for unknown city names."""

WRITE_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
"""File suffixes `write` accepts."""

_REFERENCE_YEAR = int(TIME_PERIOD)
_MAX_AGE = 99
_CITY_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ObjectArray = npt.NDArray[np.object_]

# Internal codes. Birth and citizenship groups:
_NAT, _EU, _NEU, _STLS = 0, 1, 2, 3
# Labour status (-1: not applicable, under 15):
_EMP, _UNE, _INAC = 0, 1, 2
# Kind of inactivity:
_STUDENT, _RETIRED, _DISABLED, _CARE = 0, 1, 2, 3
# Education groups (-1: not applicable, under 15):
_LOW, _MID, _HIGH = 0, 1, 2
_NONE = -1


@dataclass(frozen=True)
class CityFacts:
    """Public facts about a city's node, as they go into its ``[node]`` configuration.

    Attributes:
        id: Stable lowercase node id, e.g. ``"vienna"``.
        name: Display name, e.g. ``"Vienna"``.
        geo: Code published in tables: the NUTS-2 region for the demo cities (``"AT13"``),
            the uppercased id for other cities.
        country: ISO 3166 alpha-2 code of the node's country, Eurostat style (Greece is
            ``"EL"``): who counts as ``NAT``.
        time_period: Reference period of the data, e.g. ``"2025"``.
    """

    id: str
    name: str
    geo: str
    country: str
    time_period: str


@dataclass(frozen=True)
class _Origin:
    """An origin country: ISO code, relative weight, first plausible arrival year."""

    code: str
    weight: float
    since: int = 1950


@dataclass(frozen=True)
class _Var:
    """One ``[variables.NAME]`` section of a node configuration."""

    column: str
    comment: str = ""
    map: tuple[tuple[str, str], ...] = ()
    default: str | None = None
    missing: str | None = None
    iso_country: bool = False


@dataclass(frozen=True)
class _Persons:
    """Simulated persons, in internal codes, before a city writes them in its format."""

    countries: tuple[str, ...]  # index 0 is the home country; the last entry is "STLS"
    age: IntArray
    female: BoolArray
    birth: IntArray  # index into countries
    birth_group: IntArray  # _NAT, _EU, _NEU
    citizen: IntArray  # index into countries
    citizen_group: IntArray  # _NAT, _EU, _NEU, _STLS
    arrival_year: IntArray  # -1 for the native-born
    status: IntArray  # _EMP, _UNE, _INAC or _NONE
    inactive: IntArray  # _STUDENT, _RETIRED, _DISABLED, _CARE (meaningful for _INAC)
    part_time: BoolArray  # meaningful for _EMP
    education: IntArray  # _LOW, _MID, _HIGH or _NONE
    income: FloatArray

    @property
    def size(self) -> int:
        """Number of persons."""
        return int(self.age.size)

    def country_codes(self, index: IntArray) -> ObjectArray:
        """ISO codes (or ``"STLS"``) for an array of country indices."""
        table: ObjectArray = np.array(self.countries, dtype=object)
        return table[index]


Formatter = Callable[[_Persons, np.random.Generator], pd.DataFrame]


@dataclass(frozen=True)
class _Profile:
    """Everything that makes one city's population and format its own."""

    facts: CityFacts
    age_knots: tuple[tuple[int, float], ...]
    foreign_born: float  # share of the population born abroad
    eu_share: float  # share of the foreign-born who were born in another EU country
    eu_origins: tuple[_Origin, ...]
    neu_origins: tuple[_Origin, ...]
    second_generation: float  # share of native-born children holding a foreign citizenship
    naturalise_max: float  # long-run share of non-EU-born who naturalise
    naturalise_wait: int  # years of residence before naturalisation starts
    stateless: float  # share of non-EU-born foreign citizens who are stateless
    employment: float  # city factor on employment probabilities
    unemployment: float  # native prime-age unemployment rate
    tertiary: tuple[float, float]  # native ED5-8 share at 30 and at 80
    low: tuple[float, float]  # native ED0-2 share at 30 and at 80
    income_median: float  # EUR per year, equivalised
    variables: tuple[tuple[str, _Var], ...]
    formatter: Formatter


# --------------------------------------------------------------------------- public API


def generate(city: str, persons: int, seed: int = 0) -> pd.DataFrame:
    """Generate one city's synthetic register, in the city's local format.

    Args:
        city: A name from `CITIES`, or any other id (letters, digits, ``-``, ``_``; case
            is ignored), which gets the generic profile described in the module docstring.
        persons: Number of rows (one per person), at least 1.
        seed: Non-negative seed. The same city, size and seed give the same frame; the
            city is mixed into the seed, so two cities never share a random stream.

    Returns:
        One row per person with the city's own column names and codes; the columns that
        `variables_toml` names for the city, plus a person id, an arrival year (empty for
        the native-born) and an equivalised income.

    Raises:
        ValueError: If ``persons`` is below 1, ``seed`` is negative, or ``city`` is not a
            valid id.
    """
    profile = _profile(city)
    if persons < 1:
        raise ValueError(f"persons must be at least 1, got {persons}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    entropy = [int(seed), zlib.crc32(profile.facts.id.encode("utf-8"))]
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    people = _simulate(profile, int(persons), rng)
    return profile.formatter(people, rng)


def write(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as CSV or Parquet, chosen by the file suffix.

    CSV is UTF-8 with a header and no index; missing values are empty cells (read it back
    as text, e.g. ``dtype=str, keep_default_na=False``: integer code columns with empty
    cells would otherwise come back as floats such as ``1.0``). Parquet keeps the column
    types. Parent directories are created.

    Args:
        frame: The data, e.g. from `generate`.
        path: Target file; its suffix (case ignored) must be one of `WRITE_SUFFIXES`.

    Raises:
        ValueError: If the suffix is not ``.csv`` or ``.parquet``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        allowed = ", ".join(WRITE_SUFFIXES)
        shown = suffix or "(none)"
        raise ValueError(f"cannot write {path}: suffix {shown!r} is not one of {allowed}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8")
    else:
        frame.to_parquet(path, index=False)


def variables_toml(city: str) -> str:
    """The ``[variables.*]`` sections of a city's node configuration.

    They map the city's local columns (as written by `generate`) to the harmonised
    variables ``sex``, ``age``, ``c_birth``, ``citizen``, ``wstatus`` and ``isced11``
    (DESIGN sections 2 and 6). Country columns marked ``iso_country`` are grouped by the
    node with its ``[node] country``, which must be ``city_facts(city).country``.

    Args:
        city: As for `generate`.

    Returns:
        TOML text, ready to append to a node configuration.

    Raises:
        ValueError: If ``city`` is not a valid id.
    """
    profile = _profile(city)
    return "\n".join(_render(name, var) for name, var in profile.variables)


def city_facts(city: str) -> CityFacts:
    """Public facts about a city's node (id, display name, geo code, country, period).

    Args:
        city: As for `generate`.

    Returns:
        The facts; for an unknown city the name is the title-cased id, the geo code the
        uppercased id and the country `GENERIC_COUNTRY`.

    Raises:
        ValueError: If ``city`` is not a valid id.
    """
    return _profile(city).facts


# --------------------------------------------------------------------------- simulation

# Relative density of the foreign-born by age: few children, most at working ages.
_FOREIGN_AGE_SHAPE = (
    (0, 0.25),
    (15, 0.55),
    (20, 1.0),
    (25, 1.5),
    (35, 1.7),
    (45, 1.4),
    (55, 1.1),
    (65, 0.7),
    (80, 0.5),
    (99, 0.4),
)

# Native employment probability by age, before sex, education, origin and city factors.
_EMPLOYMENT_BY_AGE = (
    (15, 0.12),
    (19, 0.38),
    (20, 0.52),
    (24, 0.70),
    (25, 0.79),
    (29, 0.87),
    (30, 0.90),
    (54, 0.90),
    (55, 0.84),
    (59, 0.78),
    (60, 0.62),
    (64, 0.38),
    (65, 0.10),
    (69, 0.05),
    (70, 0.02),
    (99, 0.0),
)


def _interp(x: IntArray | FloatArray, knots: Sequence[tuple[int, float]]) -> FloatArray:
    xs = np.array([k for k, _ in knots], dtype=np.float64)
    ys = np.array([v for _, v in knots], dtype=np.float64)
    out: FloatArray = np.interp(x.astype(np.float64), xs, ys)
    return out


def _pick(
    rng: np.random.Generator, mask: BoolArray, origins: Sequence[_Origin], offset: int
) -> IntArray:
    weights = np.array([o.weight for o in origins], dtype=np.float64)
    drawn = rng.choice(len(origins), size=int(mask.sum()), p=weights / weights.sum())
    out: IntArray = np.asarray(drawn, dtype=np.int64) + offset
    return out


def _simulate(prof: _Profile, n: int, rng: np.random.Generator) -> _Persons:
    origins = prof.eu_origins + prof.neu_origins
    countries = (prof.facts.country, *(o.code for o in origins), "STLS")
    n_eu = len(prof.eu_origins)
    stateless_index = len(countries) - 1
    group_of_country = np.array(
        [_NAT] + [_EU] * n_eu + [_NEU] * len(prof.neu_origins) + [_STLS], dtype=np.int64
    )
    earliest = np.array([_REFERENCE_YEAR, *(o.since for o in origins), _REFERENCE_YEAR])
    max_years = (_REFERENCE_YEAR - earliest).astype(np.float64)

    # Age and sex.
    ages = np.arange(_MAX_AGE + 1, dtype=np.int64)
    density = _interp(ages, prof.age_knots)
    density /= density.sum()
    age = np.asarray(rng.choice(ages.size, size=n, p=density), dtype=np.int64)
    female: BoolArray = rng.random(n) < 0.49 + 0.14 * np.clip((age - 55) / 40, 0.0, 1.0)

    # Country of birth.
    shape = _interp(ages, _FOREIGN_AGE_SHAPE)
    p_foreign = np.minimum(shape[age] * prof.foreign_born / float(density @ shape), 0.95)
    foreign: BoolArray = rng.random(n) < p_foreign
    eu_born: BoolArray = foreign & (rng.random(n) < prof.eu_share)
    neu_born: BoolArray = foreign & ~eu_born
    birth = np.zeros(n, dtype=np.int64)
    birth[eu_born] = _pick(rng, eu_born, prof.eu_origins, 1)
    birth[neu_born] = _pick(rng, neu_born, prof.neu_origins, 1 + n_eu)
    birth_group = group_of_country[birth]

    # Years since arrival: a fifth arrived as children, the rest as young adults; never
    # before birth, never before the origin's migration history starts.
    as_child = rng.random(n) < 0.18
    arrival_age = np.where(as_child, rng.uniform(0.0, 18.0, n), 18.0 + rng.gamma(2.0, 5.5, n))
    years = age - np.floor(arrival_age)
    years = np.where(years < 0, np.floor(rng.random(n) * (age + 1)), years)
    cap = max_years[birth]
    years = np.where(years > cap, np.floor(rng.random(n) * (cap + 1)), years)
    years = np.where(foreign, years, 0.0)
    arrived_adult = foreign & (age - years >= 18)
    arrival_year = np.where(foreign, _REFERENCE_YEAR - years, -1).astype(np.int64)
    # Integration of non-EU-born people: 0 on arrival, towards 1 after ~15 years.
    settled = np.where(neu_born, 1.0 - np.exp(-years / 6.0), 1.0)

    # Citizenship: naturalisation after a waiting time, rare for EU citizens; otherwise the
    # birth country, sometimes another one, sometimes none; some second-generation natives.
    p_natural = prof.naturalise_max * (
        1.0 - np.exp(-np.maximum(years - prof.naturalise_wait, 0.0) / 8.0)
    )
    p_natural = np.where(foreign & ~arrived_adult, np.minimum(p_natural * 1.3, 0.95), p_natural)
    p_natural = np.where(eu_born, p_natural * 0.35, p_natural)
    naturalised = foreign & (rng.random(n) < p_natural)
    any_origin = np.concatenate(
        [
            np.array([o.weight for o in prof.eu_origins]) * prof.eu_share,
            np.array([o.weight for o in prof.neu_origins]) * (1.0 - prof.eu_share),
        ]
    )
    any_origin /= any_origin.sum()
    other_country = 1 + np.asarray(rng.choice(len(origins), size=n, p=any_origin), np.int64)
    second = (~foreign) & (
        rng.random(n) < prof.second_generation * _interp(age, ((0, 1.4), (18, 1.1), (45, 0.0)))
    )
    citizen = np.where(foreign & ~naturalised, birth, 0)
    switch = foreign & ~naturalised & (rng.random(n) < 0.05)
    citizen = np.where(switch | second, other_country, citizen)
    no_state = foreign & ~naturalised & neu_born & (rng.random(n) < prof.stateless)
    citizen = np.where(no_state, stateless_index, citizen).astype(np.int64)
    citizen_group = group_of_country[citizen]

    # Education (ISCED groups) from 15, by birth cohort, then by origin.
    adult = age >= 15
    low_young, low_old = prof.low
    high_young, high_old = prof.tertiary
    p_low = _interp(
        age, ((15, 0.95), (18, 0.8), (20, 0.25), (25, low_young), (30, low_young), (80, low_old))
    )
    p_high = _interp(
        age,
        (
            (15, 0.0),
            (20, 0.02),
            (23, 0.2),
            (27, 0.95 * high_young),
            (30, high_young),
            (80, high_old),
        ),
    )
    p_low = np.clip(p_low, 0.0, 0.98)
    p_high = np.clip(p_high, 0.0, 0.98)
    child_arrival = foreign & ~arrived_adult
    p_low = np.where(eu_born & arrived_adult, p_low + 0.03, p_low)
    p_high = np.where(eu_born & arrived_adult, p_high + 0.04, p_high)
    p_low = np.where(neu_born & arrived_adult, np.minimum(p_low + 0.30, 0.75), p_low)
    p_high = np.where(neu_born & arrived_adult, 0.6 * p_high, p_high)
    behind = child_arrival | second
    p_low = np.where(behind, p_low + 0.08, p_low)
    p_high = np.where(behind, np.maximum(p_high - 0.06, 0.0), p_high)
    total = p_low + p_high
    squeeze = np.where(total > 0.98, 0.98 / np.maximum(total, 1e-9), 1.0)
    p_low, p_high = p_low * squeeze, p_high * squeeze
    draw = rng.random(n)
    education = np.where(draw < p_low, _LOW, np.where(draw > 1.0 - p_high, _HIGH, _MID))
    education = np.where(adult, education, _NONE).astype(np.int64)

    # Labour status from 15.
    edu_factor = np.array([0.78, 1.0, 1.08, 1.0])[education]  # index -1: not used
    origin_factor = np.where(
        neu_born,
        (0.68 + 0.24 * settled) * np.where(female, 0.76 + 0.16 * settled, 1.0),
        np.where(eu_born, 0.92, np.where(second, 0.94, 1.0)),
    )
    p_emp = _interp(age, _EMPLOYMENT_BY_AGE) * np.where(female, 0.94, 1.0)
    p_emp = np.minimum(p_emp * edu_factor * origin_factor * prof.employment, 0.97)
    une = prof.unemployment * _interp(
        age, ((15, 2.2), (24, 2.0), (25, 1.0), (54, 1.0), (55, 0.9), (64, 0.9), (65, 0.2))
    )
    une = une * np.array([1.6, 1.0, 0.6, 1.0])[education]
    une = une * np.where(neu_born, 1.6 + 1.6 * (1.0 - settled), np.where(eu_born, 1.3, 1.0))
    une = np.clip(une, 0.0, 0.5)
    p_une = np.minimum(p_emp * une / (1.0 - une), 0.99 - p_emp)
    draw = rng.random(n)
    status = np.where(draw < p_emp, _EMP, np.where(draw < p_emp + p_une, _UNE, _INAC))
    status = np.where(adult, status, _NONE).astype(np.int64)

    # Detail kept by local registers: kind of inactivity, part-time work.
    p_student = _interp(age, ((15, 0.97), (19, 0.9), (24, 0.6), (30, 0.25), (40, 0.05)))
    p_retired = _interp(age, ((50, 0.05), (60, 0.45), (65, 0.9), (70, 0.98)))
    p_care = np.where(female, np.where(neu_born, 0.75, 0.55), 0.25)
    draw = rng.random(n)
    care_draw = rng.random(n)
    inactive = np.where(
        draw < p_student,
        _STUDENT,
        np.where(
            draw < p_student + (1.0 - p_student) * p_retired,
            _RETIRED,
            np.where(care_draw < p_care, _CARE, _DISABLED),
        ),
    ).astype(np.int64)
    part_time: BoolArray = rng.random(n) < np.where(female, 0.45, 0.12)

    # Equivalised disposable income.
    inactive_factor = np.array([0.7, 0.95, 0.75, 0.7])[inactive]
    status_factor = np.where(
        status == _EMP,
        1.12,
        np.where(status == _UNE, 0.55, np.where(status == _INAC, inactive_factor, 0.85)),
    )
    log_income = (
        np.log(prof.income_median)
        + np.log(status_factor)
        + np.log(np.array([0.8, 1.0, 1.3, 1.0])[education])
        + np.log(np.where(neu_born, 0.7 + 0.2 * settled, np.where(eu_born, 0.95, 1.0)))
        + rng.normal(0.0, 0.42, n)
    )
    income = np.round(np.exp(log_income), 2)

    return _Persons(
        countries=countries,
        age=age,
        female=female,
        birth=birth,
        birth_group=np.asarray(birth_group, dtype=np.int64),
        citizen=citizen,
        citizen_group=np.asarray(citizen_group, dtype=np.int64),
        arrival_year=arrival_year,
        status=status,
        inactive=inactive,
        part_time=part_time,
        education=education,
        income=income,
    )


# --------------------------------------------------------------------------- formatting


def _labels(table: Sequence[object], index: IntArray) -> ObjectArray:
    """Look codes up in a table; index -1 gives None (an empty cell)."""
    values: ObjectArray = np.array([*table, None], dtype=object)
    out: ObjectArray = values[index]
    return out


def _nullable(values: IntArray, empty: BoolArray) -> pd.Series:
    """Integer codes as a nullable integer column, empty where ``empty``."""
    return pd.Series(values, dtype="Int64").mask(pd.Series(empty))


def _blank(rng: np.random.Generator, eligible: BoolArray, share: float) -> BoolArray:
    """Pick about ``share`` of the eligible rows to leave empty or to spoil."""
    out: BoolArray = eligible & (rng.random(eligible.size) < share)
    return out


def _detail(
    rng: np.random.Generator, group: IntArray, options: Sequence[Sequence[tuple[int, float]]]
) -> IntArray:
    """Spread each group code over finer local codes; -1 stays -1."""
    draw = rng.random(group.size)
    out = np.full(group.size, -1, dtype=np.int64)
    for code, choices in enumerate(options):
        mask = group == code
        weights = np.cumsum([w for _, w in choices])
        codes = np.array([c for c, _ in choices], dtype=np.int64)
        picked = np.searchsorted(weights / weights[-1], draw[mask], side="right")
        out[mask] = codes[np.minimum(picked, codes.size - 1)]
    return out


def _status_codes(
    p: _Persons, emp: int, emp_part: int, une: int, inactive: Sequence[int]
) -> IntArray:
    """Local status codes: employed (full/part-time), unemployed, four kinds of inactive."""
    inact = np.array(inactive, dtype=np.int64)[p.inactive]
    codes = np.where(
        p.status == _EMP,
        np.where(p.part_time, emp_part, emp),
        np.where(p.status == _UNE, une, inact),
    )
    out: IntArray = np.where(p.status == _NONE, -1, codes).astype(np.int64)
    return out


def _ids(p: _Persons, offset: int) -> IntArray:
    return np.arange(1, p.size + 1, dtype=np.int64) + offset


def _arrival(p: _Persons) -> pd.Series:
    return _nullable(p.arrival_year, p.arrival_year < 0)


_ISCED_LEVELS = (
    ((0, 0.03), (1, 0.22), (2, 0.75)),
    ((3, 0.88), (4, 0.12)),
    ((5, 0.08), (6, 0.45), (7, 0.42), (8, 0.05)),
)


def _format_vienna(p: _Persons, rng: np.random.Generator) -> pd.DataFrame:
    adult = p.age >= 15
    birth = p.country_codes(p.birth)
    birth[_blank(rng, np.ones(p.size, dtype=np.bool_), 0.004)] = None
    pl030 = _status_codes(p, 1, 2, 3, (4, 5, 6, 7))
    pe040 = _detail(rng, p.education, _ISCED_LEVELS)
    return pd.DataFrame(
        {
            "rb030": _ids(p, 10_000_000),
            "rb090": _labels(("male", "female"), p.female.astype(np.int64)),
            "age": p.age,
            "country_of_birth": birth,
            "pb220a": _labels(("AT", "EU", "Other", "Other"), p.citizen_group),
            "year_of_arrival": _arrival(p),
            "pl030": _nullable(pl030, (pl030 < 0) | _blank(rng, adult, 0.003)),
            "pe040": _nullable(pe040, (pe040 < 0) | _blank(rng, adult, 0.005)),
            "hx090": p.income,
        }
    )


def _format_amsterdam(p: _Persons, rng: np.random.Generator) -> pd.DataFrame:
    adult = p.age >= 15
    education = _labels(("laag", "middelbaar", "hoog"), p.education)
    unknown = _blank(rng, adult, 0.015) | _blank(rng, adult & (p.birth_group != _NAT), 0.05)
    education[unknown] = "onbekend"
    return pd.DataFrame(
        {
            "rinpersoon": _ids(p, 300_000_000),
            "geslacht": _labels(("man", "vrouw"), p.female.astype(np.int64)),
            "leeftijd": p.age,
            "geboorteland": p.country_codes(p.birth),
            "nationaliteit": p.country_codes(p.citizen),
            "jaar_vestiging": _arrival(p),
            "arbeidspositie": _labels(("werkzaam", "werkloos", "niet-actief"), p.status),
            "opleidingsniveau": education,
            "gestandaardiseerd_inkomen": p.income,
        }
    )


def _format_athens(p: _Persons, rng: np.random.Generator) -> pd.DataFrame:
    adult = p.age >= 15
    birth = p.country_codes(p.birth)
    # Some records still carry the ISO 3166 code GR instead of Eurostat's EL.
    birth[_blank(rng, p.birth_group == _NAT, 0.03)] = "GR"
    citizenship = np.array([1, 2, 3, 4], dtype=np.int64)[p.citizen_group]
    unknown = _blank(rng, np.ones(p.size, dtype=np.bool_), 0.005)
    unknown |= _blank(rng, p.birth_group != _NAT, 0.03)
    citizenship[unknown] = 9
    status = _status_codes(p, 1, 1, 2, (3, 4, 6, 5))
    education = _detail(
        rng, p.education, (((1, 0.45), (2, 0.55)), ((3, 0.8), (4, 0.2)), ((5, 0.88), (6, 0.12)))
    )
    return pd.DataFrame(
        {
            "kodikos": _ids(p, 0),
            "fylo": p.female.astype(np.int64) + 1,
            "ilikia": p.age,
            "chora_gennisis": birth,
            "ypikootita": citizenship,
            "etos_afixis": _arrival(p),
            "katastasi_apascholisis": _nullable(status, status < 0),
            "ekpaidefsi": _nullable(education, (education < 0) | _blank(rng, adult, 0.006)),
            "eisodima": p.income,
        }
    )


# All EU27 countries, so that the map's default can safely be NEU27_2020_FOR.
_GHENT_EU_NAMES: Mapping[str, str] = {
    "AT": "Oostenrijk",
    "BE": "België",
    "BG": "Bulgarije",
    "CY": "Cyprus",
    "CZ": "Tsjechië",
    "DE": "Duitsland",
    "DK": "Denemarken",
    "EE": "Estland",
    "EL": "Griekenland",
    "ES": "Spanje",
    "FI": "Finland",
    "FR": "Frankrijk",
    "HR": "Kroatië",
    "HU": "Hongarije",
    "IE": "Ierland",
    "IT": "Italië",
    "LT": "Litouwen",
    "LU": "Luxemburg",
    "LV": "Letland",
    "MT": "Malta",
    "NL": "Nederland",
    "PL": "Polen",
    "PT": "Portugal",
    "RO": "Roemenië",
    "SE": "Zweden",
    "SI": "Slovenië",
    "SK": "Slowakije",
}
# Non-EU origins that occur in Ghent.
_GHENT_NAMES: Mapping[str, str] = {
    **_GHENT_EU_NAMES,
    "AF": "Afghanistan",
    "CD": "Congo (Democratische Republiek)",
    "ER": "Eritrea",
    "GN": "Guinee",
    "IQ": "Irak",
    "MA": "Marokko",
    "RU": "Rusland",
    "SY": "Syrië",
    "TR": "Turkije",
    "UA": "Oekraïne",
}


def _format_ghent(p: _Persons, rng: np.random.Generator) -> pd.DataFrame:
    adult = p.age >= 15
    names = _labels([_GHENT_NAMES.get(c, c) for c in p.countries], p.birth)
    names[_blank(rng, np.ones(p.size, dtype=np.bool_), 0.003)] = None
    education = _labels(("laag", "midden", "hoog"), p.education)
    education[_blank(rng, adult, 0.04) | _blank(rng, adult & (p.birth_group != _NAT), 0.10)] = None
    position = _labels(
        (
            "werkend",
            "werkend",
            "werkzoekend",
            "student",
            "gepensioneerd",
            "arbeidsongeschikt",
            "huisvrouw/huisman",
        ),
        _status_codes(p, 0, 1, 2, (3, 4, 5, 6)),
    )
    return pd.DataFrame(
        {
            "persoon_id": _ids(p, 4_000_000),
            "geslacht": _labels(("M", "V"), p.female.astype(np.int64)),
            "leeftijd": p.age,
            "geboorteland": names,
            "nationaliteit": p.country_codes(p.citizen),
            "jaar_aankomst": _arrival(p),
            "socio_economische_positie": position,
            "onderwijsniveau": education,
            "equivalent_inkomen": p.income,
        }
    )


def _format_helsinki(p: _Persons, rng: np.random.Generator) -> pd.DataFrame:
    citizenship = p.country_codes(p.citizen)
    citizenship[_blank(rng, np.ones(p.size, dtype=np.bool_), 0.005)] = "99"
    status = _status_codes(p, 11, 11, 12, (22, 24, 24, 29))
    conscript = (status == 22) & ~p.female & (p.age >= 18) & (p.age <= 20)
    status = np.where(conscript & (rng.random(p.size) < 0.3), 25, status).astype(np.int64)
    education = _detail(
        rng,
        p.education,
        (((2, 1.0),), ((3, 0.9), (4, 0.1)), ((5, 0.1), (6, 0.45), (7, 0.4), (8, 0.05))),
    )
    # Qualifications earned abroad are often missing from the Finnish degree register.
    unrecorded = _blank(rng, p.age >= 15, 0.01)
    unrecorded |= _blank(rng, (p.age >= 15) & (p.birth_group != _NAT), 0.12)
    return pd.DataFrame(
        {
            "henkilo_id": _ids(p, 5_000_000),
            "sukupuoli": p.female.astype(np.int64) + 1,
            "ika": p.age,
            "syntymamaa": p.country_codes(p.birth),
            "kansalaisuus": citizenship,
            "maahanmuuttovuosi": _arrival(p),
            "paaasiallinen_toiminta": _nullable(status, status < 0),
            "koulutusaste": _nullable(education, (education < 0) | unrecorded),
            "ekv_tulot": p.income,
        }
    )


def _format_generic(p: _Persons, rng: np.random.Generator) -> pd.DataFrame:
    adult = p.age >= 15
    birth = p.country_codes(p.birth)
    birth[_blank(rng, np.ones(p.size, dtype=np.bool_), 0.003)] = None
    education = _labels(("low", "medium", "high"), p.education)
    education[_blank(rng, adult, 0.02)] = None
    return pd.DataFrame(
        {
            "person_id": _ids(p, 0),
            "sex": _labels(("M", "F"), p.female.astype(np.int64)),
            "age": p.age,
            "country_of_birth": birth,
            "citizenship": p.country_codes(p.citizen),
            "arrival_year": _arrival(p),
            "labour_status": _labels(("employed", "unemployed", "inactive"), p.status),
            "education": education,
            "income": p.income,
        }
    )


# --------------------------------------------------------------------------- node config


def _codes(pairs: Mapping[int, str] | Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), v) for k, v in pairs.items())


_ISCED_MAP = _codes(
    {0: "ED0-2", 1: "ED0-2", 2: "ED0-2", 3: "ED3_4", 4: "ED3_4"}
    | {5: "ED5-8", 6: "ED5-8", 7: "ED5-8", 8: "ED5-8"}
)

_VARIABLES: Mapping[str, tuple[tuple[str, _Var], ...]] = {
    "vienna": (
        ("sex", _Var("rb090", map=_codes({"male": "M", "female": "F"}))),
        ("age", _Var("age")),
        ("c_birth", _Var("country_of_birth", iso_country=True)),
        (
            "citizen",
            _Var(
                "pb220a",
                "citizenship group; stateless people are recorded as Other",
                map=_codes({"AT": "NAT", "EU": "EU27_2020_FOR", "Other": "NEU27_2020_FOR"}),
            ),
        ),
        (
            "wstatus",
            _Var(
                "pl030",
                "1 full-time, 2 part-time, 3 unemployed, 4 pupil or student, 5 retired,"
                " 6 disabled, 7 domestic tasks; empty under 15",
                map=_codes({1: "EMP", 2: "EMP", 3: "UNE"} | dict.fromkeys(range(4, 8), "INAC")),
                missing="UNK",
            ),
        ),
        ("isced11", _Var("pe040", "ISCED 2011 level 0-8; empty under 15", map=_ISCED_MAP)),
    ),
    "amsterdam": (
        ("sex", _Var("geslacht", map=_codes({"man": "M", "vrouw": "F"}))),
        ("age", _Var("leeftijd")),
        ("c_birth", _Var("geboorteland", iso_country=True)),
        ("citizen", _Var("nationaliteit", "Dutch nationality takes priority", iso_country=True)),
        (
            "wstatus",
            _Var(
                "arbeidspositie",
                "empty under 15",
                map=_codes({"werkzaam": "EMP", "werkloos": "UNE", "niet-actief": "INAC"}),
            ),
        ),
        (
            "isced11",
            _Var(
                "opleidingsniveau",
                "'onbekend' (unknown) is left unmapped and counted as UNK",
                map=_codes({"laag": "ED0-2", "middelbaar": "ED3_4", "hoog": "ED5-8"}),
            ),
        ),
    ),
    "athens": (
        ("sex", _Var("fylo", "1 male, 2 female", map=_codes({1: "M", 2: "F"}))),
        ("age", _Var("ilikia")),
        (
            "c_birth",
            _Var("chora_gennisis", "ISO codes; both EL and GR mean Greece", iso_country=True),
        ),
        (
            "citizen",
            _Var(
                "ypikootita",
                "1 Greek, 2 other EU, 3 third country, 4 stateless, 9 unknown (unmapped)",
                map=_codes({1: "NAT", 2: "EU27_2020_FOR", 3: "NEU27_2020_FOR", 4: "STLS"}),
            ),
        ),
        (
            "wstatus",
            _Var(
                "katastasi_apascholisis",
                "1 employed, 2 unemployed, 3 student, 4 pensioner, 5 household, 6 other"
                " inactive; empty under 15",
                map=_codes({1: "EMP", 2: "UNE"} | dict.fromkeys(range(3, 7), "INAC")),
            ),
        ),
        (
            "isced11",
            _Var(
                "ekpaidefsi",
                "1 primary or less, 2 lower secondary, 3 upper secondary, 4 post-secondary,"
                " 5 tertiary, 6 master or doctorate; empty under 15",
                map=_codes(
                    {1: "ED0-2", 2: "ED0-2", 3: "ED3_4", 4: "ED3_4", 5: "ED5-8", 6: "ED5-8"}
                ),
            ),
        ),
    ),
    "ghent": (
        ("sex", _Var("geslacht", "M man, V vrouw", map=_codes({"M": "M", "V": "F"}))),
        ("age", _Var("leeftijd")),
        (
            "c_birth",
            _Var(
                "geboorteland",
                "country names in Dutch: all EU27 listed, every other country is non-EU",
                map=_codes(
                    {
                        name: ("NAT" if code == "BE" else "EU27_2020_FOR")
                        for code, name in _GHENT_EU_NAMES.items()
                    }
                ),
                default="NEU27_2020_FOR",
                missing="UNK",
            ),
        ),
        ("citizen", _Var("nationaliteit", iso_country=True)),
        (
            "wstatus",
            _Var(
                "socio_economische_positie",
                "empty under 15",
                map=_codes(
                    {"werkend": "EMP", "werkzoekend": "UNE"}
                    | dict.fromkeys(
                        ("student", "gepensioneerd", "arbeidsongeschikt", "huisvrouw/huisman"),
                        "INAC",
                    )
                ),
            ),
        ),
        (
            "isced11",
            _Var(
                "onderwijsniveau",
                "empty under 15 and where the register has no diploma",
                map=_codes({"laag": "ED0-2", "midden": "ED3_4", "hoog": "ED5-8"}),
                missing="UNK",
            ),
        ),
    ),
    "helsinki": (
        ("sex", _Var("sukupuoli", "1 male, 2 female", map=_codes({1: "M", 2: "F"}))),
        ("age", _Var("ika")),
        ("c_birth", _Var("syntymamaa", iso_country=True)),
        (
            "citizen",
            _Var("kansalaisuus", "ISO codes, STLS stateless, 99 unknown", iso_country=True),
        ),
        (
            "wstatus",
            _Var(
                "paaasiallinen_toiminta",
                "main activity: 11 employed, 12 unemployed, 22 student, 24 pensioner,"
                " 25 conscript, 29 other inactive; empty under 15",
                map=_codes({11: "EMP", 12: "UNE", 22: "INAC", 24: "INAC", 25: "INAC", 29: "INAC"}),
            ),
        ),
        (
            "isced11",
            _Var(
                "koulutusaste",
                "2 basic, 3 upper secondary, 4 post-secondary, 5-8 tertiary; empty under 15"
                " and for qualifications not in the degree register",
                map=_codes(
                    {2: "ED0-2", 3: "ED3_4", 4: "ED3_4"} | dict.fromkeys(range(5, 9), "ED5-8")
                ),
            ),
        ),
    ),
    "": (
        ("sex", _Var("sex", map=_codes({"M": "M", "F": "F"}))),
        ("age", _Var("age")),
        ("c_birth", _Var("country_of_birth", iso_country=True)),
        ("citizen", _Var("citizenship", iso_country=True)),
        (
            "wstatus",
            _Var(
                "labour_status",
                map=_codes({"employed": "EMP", "unemployed": "UNE", "inactive": "INAC"}),
            ),
        ),
        (
            "isced11",
            _Var(
                "education",
                map=_codes({"low": "ED0-2", "medium": "ED3_4", "high": "ED5-8"}),
                missing="UNK",
            ),
        ),
    ),
}


def _quote(text: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes, UTF-8 allowed).
    return json.dumps(text, ensure_ascii=False)


def _render(name: str, var: _Var) -> str:
    lines = [f"[variables.{name}]"]
    if var.comment:
        lines.append(f"# {var.comment}")
    lines.append(f"column = {_quote(var.column)}")
    if var.map:
        pairs = ", ".join(f"{_quote(k)} = {_quote(v)}" for k, v in var.map)
        lines.append(f"map = {{ {pairs} }}")
    if var.default is not None:
        lines.append(f"default = {_quote(var.default)}")
    if var.missing is not None:
        lines.append(f"missing = {_quote(var.missing)}")
    if var.iso_country:
        lines.append("iso_country = true")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- profiles

_URBAN = (
    (0, 1.0),
    (5, 1.0),
    (15, 0.9),
    (20, 1.1),
    (25, 1.45),
    (30, 1.55),
    (40, 1.3),
    (50, 1.2),
    (60, 1.05),
    (70, 0.8),
    (80, 0.5),
    (90, 0.15),
    (99, 0.01),
)


def _o(code: str, weight: float, since: int = 1950) -> _Origin:
    return _Origin(code, weight, since)


def _facts(city: str, name: str, geo: str, country: str) -> CityFacts:
    return CityFacts(id=city, name=name, geo=geo, country=country, time_period=TIME_PERIOD)


_PROFILES: Mapping[str, _Profile] = {
    "vienna": _Profile(
        facts=_facts("vienna", "Vienna", "AT13", "AT"),
        age_knots=_URBAN,
        foreign_born=0.36,
        eu_share=0.40,
        eu_origins=(
            _o("DE", 0.28),
            _o("RO", 0.14, 1990),
            _o("PL", 0.14),
            _o("HU", 0.12, 1956),
            _o("HR", 0.10),
            _o("SK", 0.08, 1990),
            _o("BG", 0.07, 1990),
            _o("IT", 0.07),
        ),
        neu_origins=(
            _o("RS", 0.22, 1965),
            _o("TR", 0.17, 1964),
            _o("BA", 0.12, 1965),
            _o("SY", 0.12, 2011),
            _o("AF", 0.09, 2001),
            _o("UA", 0.08, 2014),
            _o("RU", 0.06, 1991),
            _o("IR", 0.05, 1979),
            _o("EG", 0.05),
            _o("CN", 0.04, 1985),
        ),
        second_generation=0.05,
        naturalise_max=0.55,
        naturalise_wait=10,
        stateless=0.01,
        employment=0.97,
        unemployment=0.075,
        tertiary=(0.48, 0.20),
        low=(0.12, 0.35),
        income_median=30_500.0,
        variables=_VARIABLES["vienna"],
        formatter=_format_vienna,
    ),
    "amsterdam": _Profile(
        facts=_facts("amsterdam", "Amsterdam", "NL32", "NL"),
        age_knots=(
            (0, 0.95),
            (10, 0.8),
            (18, 0.9),
            (22, 1.4),
            (28, 1.9),
            (35, 1.6),
            (45, 1.25),
            (55, 1.1),
            (65, 0.85),
            (75, 0.6),
            (85, 0.25),
            (95, 0.04),
            (99, 0.01),
        ),
        foreign_born=0.35,
        eu_share=0.25,
        eu_origins=(
            _o("DE", 0.25),
            _o("PL", 0.22, 2004),
            _o("IT", 0.12),
            _o("ES", 0.12),
            _o("FR", 0.10),
            _o("BG", 0.08, 2007),
            _o("RO", 0.06, 2007),
            _o("EL", 0.05),
        ),
        neu_origins=(
            _o("MA", 0.20, 1965),
            _o("SR", 0.20, 1955),
            _o("TR", 0.16, 1964),
            _o("IN", 0.10, 2005),
            _o("GB", 0.08),
            _o("US", 0.07),
            _o("CN", 0.06, 1985),
            _o("ID", 0.05),
            _o("GH", 0.04, 1980),
            _o("SY", 0.04, 2011),
        ),
        second_generation=0.02,
        naturalise_max=0.75,
        naturalise_wait=5,
        stateless=0.01,
        employment=1.02,
        unemployment=0.045,
        tertiary=(0.62, 0.30),
        low=(0.10, 0.32),
        income_median=34_000.0,
        variables=_VARIABLES["amsterdam"],
        formatter=_format_amsterdam,
    ),
    "athens": _Profile(
        facts=_facts("athens", "Athens", "EL30", "EL"),
        age_knots=(
            (0, 0.8),
            (15, 0.85),
            (25, 1.0),
            (40, 1.3),
            (50, 1.3),
            (60, 1.2),
            (70, 1.0),
            (80, 0.6),
            (90, 0.2),
            (99, 0.01),
        ),
        foreign_born=0.16,
        eu_share=0.20,
        eu_origins=(
            _o("BG", 0.30, 1990),
            _o("RO", 0.25, 1990),
            _o("CY", 0.15),
            _o("PL", 0.12, 1990),
            _o("DE", 0.10),
            _o("IT", 0.08),
        ),
        neu_origins=(
            _o("AL", 0.45, 1991),
            _o("PK", 0.10, 1995),
            _o("GE", 0.09, 1991),
            _o("SY", 0.08, 2011),
            _o("UA", 0.07, 1991),
            _o("EG", 0.07),
            _o("AF", 0.07, 2001),
            _o("RU", 0.04, 1991),
            _o("PH", 0.03, 1980),
        ),
        second_generation=0.03,
        naturalise_max=0.30,
        naturalise_wait=7,
        stateless=0.01,
        employment=0.92,
        unemployment=0.11,
        tertiary=(0.45, 0.12),
        low=(0.13, 0.58),
        income_median=13_500.0,
        variables=_VARIABLES["athens"],
        formatter=_format_athens,
    ),
    "ghent": _Profile(
        facts=_facts("ghent", "Ghent", "BE23", "BE"),
        age_knots=(
            (0, 0.95),
            (15, 0.85),
            (18, 1.2),
            (21, 1.8),
            (25, 1.6),
            (30, 1.45),
            (40, 1.2),
            (50, 1.15),
            (60, 1.05),
            (70, 0.8),
            (80, 0.5),
            (90, 0.15),
            (99, 0.01),
        ),
        foreign_born=0.21,
        eu_share=0.35,
        eu_origins=(
            _o("NL", 0.28),
            _o("BG", 0.22, 2007),
            _o("RO", 0.12, 2007),
            _o("PL", 0.10, 2004),
            _o("SK", 0.10, 2004),
            _o("FR", 0.08),
            _o("ES", 0.05),
            _o("IT", 0.05),
        ),
        neu_origins=(
            _o("TR", 0.28, 1964),
            _o("MA", 0.16, 1964),
            _o("SY", 0.10, 2011),
            _o("AF", 0.09, 2001),
            _o("RU", 0.08, 1991),
            _o("CD", 0.06, 1960),
            _o("UA", 0.06, 2014),
            _o("GN", 0.06, 2000),
            _o("ER", 0.05, 2010),
            _o("IQ", 0.06, 2003),
        ),
        second_generation=0.025,
        naturalise_max=0.70,
        naturalise_wait=5,
        stateless=0.01,
        employment=1.0,
        unemployment=0.05,
        tertiary=(0.52, 0.20),
        low=(0.12, 0.45),
        income_median=28_500.0,
        variables=_VARIABLES["ghent"],
        formatter=_format_ghent,
    ),
    "helsinki": _Profile(
        facts=_facts("helsinki", "Helsinki", "FI1B", "FI"),
        age_knots=_URBAN,
        foreign_born=0.16,
        eu_share=0.32,
        eu_origins=(
            _o("EE", 0.55, 1991),
            _o("SE", 0.15),
            _o("DE", 0.08),
            _o("ES", 0.06),
            _o("IT", 0.06),
            _o("PL", 0.05, 1990),
            _o("LV", 0.05, 1991),
        ),
        neu_origins=(
            _o("RU", 0.28, 1991),
            _o("SO", 0.14, 1990),
            _o("IQ", 0.10, 1991),
            _o("CN", 0.08, 1990),
            _o("UA", 0.08, 2014),
            _o("IN", 0.07, 2000),
            _o("AF", 0.06, 2001),
            _o("VN", 0.05, 1980),
            _o("TR", 0.05, 1990),
            _o("SY", 0.05, 2011),
            _o("IR", 0.04, 1990),
        ),
        second_generation=0.015,
        naturalise_max=0.65,
        naturalise_wait=5,
        stateless=0.05,
        employment=0.98,
        unemployment=0.08,
        tertiary=(0.55, 0.25),
        low=(0.09, 0.40),
        income_median=31_500.0,
        variables=_VARIABLES["helsinki"],
        formatter=_format_helsinki,
    ),
}

_GENERIC_ORIGINS = (
    (
        _o("PL", 0.30),
        _o("RO", 0.20, 1990),
        _o("IT", 0.15),
        _o("HR", 0.12),
        _o("BG", 0.10, 1990),
        _o("EL", 0.08),
        _o("HU", 0.05, 1990),
    ),
    (
        _o("TR", 0.30, 1961),
        _o("SY", 0.15, 2011),
        _o("UA", 0.12, 2014),
        _o("RU", 0.10, 1990),
        _o("AF", 0.08, 2001),
        _o("RS", 0.08, 1968),
        _o("BA", 0.06, 1968),
        _o("IQ", 0.06, 2003),
        _o("VN", 0.05, 1980),
    ),
)


def _profile(city: str) -> _Profile:
    """The profile of a demo city, or the generic profile for any other valid id."""
    key = str(city).strip().lower()
    if not _CITY_ID.fullmatch(key):
        raise ValueError(
            f"invalid city {city!r}: use ASCII letters, digits, '-' or '_'"
            f" (known cities: {', '.join(CITIES)})"
        )
    known = _PROFILES.get(key)
    if known is not None:
        return known
    name = " ".join(part.capitalize() for part in re.split(r"[-_]", key) if part) or key
    return _Profile(
        facts=_facts(key, name, key.upper(), GENERIC_COUNTRY),
        age_knots=_URBAN,
        foreign_born=0.28,
        eu_share=0.40,
        eu_origins=_GENERIC_ORIGINS[0],
        neu_origins=_GENERIC_ORIGINS[1],
        second_generation=0.05,
        naturalise_max=0.50,
        naturalise_wait=8,
        stateless=0.01,
        employment=0.99,
        unemployment=0.055,
        tertiary=(0.42, 0.18),
        low=(0.12, 0.30),
        income_median=28_000.0,
        variables=_VARIABLES[""],
        formatter=_format_generic,
    )

"""Synthetic microdata for one city, in that city's own local format.

Everything here is **synthetic**: no real person, register or survey is behind these rows.
The generator exists so that the demo, the tests and the benchmarks have realistic input
that a node must harmonise before it can answer a query, the way a real data holder would.

What it models, per person (one row each; `fedstats.synth_model` has the details):

- **age** from an urban age pyramid (0 to 99; children included), per city;
- **sex**, with more women at old ages;
- **migrant structure**: a city-specific share of foreign-born people, concentrated at
  working ages, split into EU-born and non-EU-born with plausible origin countries per
  city; an **arrival year** for the foreign-born (never before birth, and never before the
  origin's migration history starts, e.g. Syrians from 2011); the **reason for
  migration**: international protection for most arrivals from Syria, Afghanistan, Iraq,
  Eritrea, Somalia (and Ukraine from 2022), so refugees concentrate in recent cohorts;
  family reasons for those who came as children, work and study otherwise;
- **parents' countries of birth**: the foreign-born have foreign-born parents; a
  city-specific share of the native-born (more among the young) has one or two
  foreign-born parents: the **second generation**, a little behind in education and work;
- **citizenship** correlated with the country of birth, naturalisation rising with years
  since arrival after a city-specific waiting time (rare for EU citizens); some
  native-born children of foreign-born parents keep a parent's citizenship; a few
  stateless people;
- **education** (ISCED 2011 groups) from age 15 by birth cohort, with a bimodal pattern for
  people who arrived from outside the EU as adults (more low and some high attainment),
  and **participation in education or training** by age and attainment (so early
  leavers and NEETs come out at realistic rates, higher for the non-EU-born);
- **labour status** (ILO employed / unemployed / inactive) from age 15, depending on age
  (lower at 20-24 and 55-64), sex, education and origin: non-EU-born people have lower
  employment, higher unemployment and a larger gender gap, closing with years since
  arrival (more slowly for refugees); plus the detail local registers keep (part-time,
  student, retired ...);
- for the employed, the **status in employment** (employee, self-employed with or without
  employees, family worker; self-employment rises with age and is frequent among some
  origins) and the **occupation** (ISCO-08 major group by education; tertiary graduates
  who arrived from outside the EU as adults are far more often in ISCO 4-9 jobs, i.e.
  over-qualified);
- **equivalised disposable income** (lognormal; lower for the non-employed and for recent
  non-EU arrivals) and **tenure** (owners are older, richer and long settled).

At ages 20-64 the native-born employment rate comes out at roughly 70-80 %, the non-EU-born
one roughly 10-20 points lower, the EU-born one in between. Under-15s have no labour status,
no education and no participation recorded (empty cells, which a node maps to ``UNK``).

The five demo cities (`CITIES`) write their own column names and codes (Dutch,
transliterated Greek, Flemish, Finnish, EU-SILC style) and provide *different* variables,
as real data holders do; `fedstats.synth_profiles` lists each city's mix (Athens is a
weighted survey that over-samples the non-EU-born; Vienna has no country of birth).
Each has a small realistic share of missing or unmapped values so that
``fedstats node check`` has something to report. `variables_toml` returns the matching
``[variables.*]`` sections of the city's node configuration and `dataset_toml` its
``[dataset]`` source and weight (DESIGN section 6).

Any other city name gets a generic profile: English column names, ISO 3166 alpha-2 country
codes, text labels, every variable, and Germany (`GENERIC_COUNTRY`, ``"DE"``) as the home
country, with German-style origin countries. Germany is used because the generator has no
local knowledge of an unknown city and needs a real home country for its origin mix; put
the same country in the node's ``[node] country``.

Generation is vectorised numpy: a million persons take a few seconds on one core.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w

from fedstats.synth_formats import FORMATTERS, VARIABLES, render
from fedstats.synth_model import TIME_PERIOD, simulate
from fedstats.synth_profiles import CITIES, GENERIC_COUNTRY, CityFacts, Sampling, profile

__all__ = [
    "CITIES",
    "GENERIC_COUNTRY",
    "TIME_PERIOD",
    "WRITE_SUFFIXES",
    "CityFacts",
    "Sampling",
    "city_facts",
    "dataset_table",
    "dataset_toml",
    "earlier",
    "generate",
    "sampling",
    "variables_toml",
    "write",
]

WRITE_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
"""File suffixes `write` accepts."""


def generate(city: str, persons: int, seed: int = 0) -> pd.DataFrame:
    """Generate one city's synthetic register or survey, in the city's local format.

    Args:
        city: A name from `CITIES`, or any other id (letters, digits, ``-``, ``_``; case
            is ignored), which gets the generic profile described in the module docstring.
        persons: Number of rows (one per person), at least 1.
        seed: Non-negative seed. The same city, size and seed give the same frame; the
            city is mixed into the seed, so two cities never share a random stream.

    Returns:
        One row per person with the city's own column names and codes: the columns that
        `variables_toml` names for the city, plus a person id, the weight column of a
        survey (`sampling`) and any column the city keeps without a harmonised
        counterpart (Helsinki's mother tongue).

    Raises:
        ValueError: If ``persons`` is below 1, ``seed`` is negative, or ``city`` is not a
            valid id.
    """
    prof = profile(city)
    if persons < 1:
        raise ValueError(f"persons must be at least 1, got {persons}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    entropy = [int(seed), zlib.crc32(prof.facts.id.encode("utf-8"))]
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    people = simulate(prof.demography, int(persons), rng)
    return FORMATTERS[prof.format](people, rng)


def earlier(frame: pd.DataFrame, city: str, years: int) -> pd.DataFrame:
    """A city's file as it would read ``years`` reference periods earlier.

    The generator models ``TIME_PERIOD``. For a demonstration of several periods, an
    earlier period's file moves every arrival year back by ``years``: everyone keeps the
    years since arrival (and so the outcomes) they were generated with, so an arrival
    cohort followed from the earlier file to the later one has spent more time in the
    country. A city without an arrival-year column is returned unchanged.

    Raises:
        ValueError: If ``years`` is negative or ``city`` is not a valid id.
    """
    if years < 0:
        raise ValueError(f"years must be non-negative, got {years}")
    shifted = frame.copy()
    columns = {var.arrival_year for _, var in VARIABLES[profile(city).format]} - {""}
    for column in columns & set(shifted.columns):
        shifted[column] = shifted[column] - years
    return shifted


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

    They map the city's local columns (as written by `generate`) to every harmonised
    variable the city has (DESIGN sections 2 and 6; `node.config` for the keys that derive
    ``mig_background``, ``yearesid`` and ``arrival_cohort`` and for ``deviation`` notes).
    Country columns marked ``iso_country`` are grouped by the node with its ``[node]
    country``, which must be ``city_facts(city).country``; arrival years count up to the
    ``[dataset] time_period``, which must be ``city_facts(city).time_period``.

    Args:
        city: As for `generate`.

    Returns:
        TOML text, ready to append to a node configuration.

    Raises:
        ValueError: If ``city`` is not a valid id.
    """
    prof = profile(city)
    return "\n".join(render(name, var) for name, var in VARIABLES[prof.format])


def sampling(city: str) -> Sampling:
    """How a city's file was collected: register, or survey with a weight column.

    Args:
        city: As for `generate`.

    Returns:
        The source, weight column, a ``max_weight`` clipping bound above every weight
        `generate` writes for the city (whatever the number of persons), and the design
        effect.

    Raises:
        ValueError: If ``city`` is not a valid id.
    """
    return profile(city).sampling


def dataset_toml(city: str) -> str:
    """The ``[dataset]`` lines that say how the city's file was collected.

    ``source``, and for a survey ``weight`` and ``design_effect``; put
    ``sampling(city).max_weight`` into ``[privacy] max_weight``.

    Args:
        city: As for `generate`.

    Returns:
        TOML key lines (no table header), ready to go under ``[dataset]``.

    Raises:
        ValueError: If ``city`` is not a valid id.
    """
    return tomli_w.dumps(dataset_table(city))


NATIONAL_LINE_SHARE = 0.6
"""The at-risk-of-poverty line: 60% of the national median equivalised income."""


def national_poverty_line(city: str) -> float:
    """The synthetic country's national AROP line: 60% of the profile's median income.

    The synthetic city stands for its country, so its model's median income is the
    "national" median; a real node configures the line its statistics office publishes.
    """
    return round(NATIONAL_LINE_SHARE * profile(city).demography.income_median)


def dataset_table(city: str) -> dict[str, str | float]:
    """`dataset_toml` as a table: ``source``, survey weights, the national poverty line.

    A survey also gets its ``weight`` and design effect; every city gets the synthetic
    country's national poverty line with its currency and source.

    Raises:
        ValueError: If ``city`` is not a valid id.
    """
    s = sampling(city)
    line: dict[str, str | float] = {
        "poverty_line": national_poverty_line(city),
        "poverty_line_currency": "EUR",
        "poverty_line_source": "synthetic: 60% of the synthetic country's median income",
    }
    if s.weight is None:
        return {"source": s.source, **line}
    return {"source": s.source, "weight": s.weight, "design_effect": s.design_effect, **line}


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
    return profile(city).facts

"""The synthetic cities: public facts, population parameters, sampling, local format.

Five demo cities have hand-made profiles; any other city id gets a generic one (see
`fedstats.synth`). Their mixes of variables differ on purpose, so that harmonisation and
the benchmark's ``n`` and ``d`` flags have something to show:

- **Amsterdam**, a register with the parents' countries of birth (``mig_background`` is
  derived) and the migration motive;
- **Athens**, a weighted *survey* that over-samples the non-EU-born three times
  (weight column ``syntelestis_vary``), with no parents' data;
- **Ghent**, a register with no parents' data (no ``mig_background``);
- **Helsinki**, a register with Statistics Finland's origin classification (mapped to
  ``mig_background`` with a ``deviation`` note), the registered mother tongue (column
  ``aidinkieli``, for a ``local:`` dimension) and no reason for migration;
- **Vienna**, EU-SILC style, with citizenship but no country of birth, a ``deviation``
  note on ``citizen`` (stateless persons are counted as non-EU), no parents' data and no
  reason for migration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from fedstats.synth_model import TIME_PERIOD, Demography, Origin

__all__ = [
    "ATHENS_OVERSAMPLE",
    "ATHENS_WEIGHT",
    "CITIES",
    "GENERIC_COUNTRY",
    "REGISTER",
    "CityFacts",
    "Profile",
    "Sampling",
    "profile",
]

CITIES: tuple[str, ...] = ("amsterdam", "athens", "ghent", "helsinki", "vienna")
GENERIC_COUNTRY = "DE"
ATHENS_OVERSAMPLE = 3.0  # the non-EU-born are three times as likely to be sampled
ATHENS_WEIGHT = 12.0  # design weight of everyone else: a one-in-twelve sample
_CITY_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass(frozen=True)
class CityFacts:
    """Public facts about a city's node, as they go into its ``[node]`` configuration.

    Attributes:
        id: Stable lowercase node id, e.g. ``"vienna"``.
        name: Display name, e.g. ``"Vienna"``.
        geo: Code published in tables: the NUTS-2 region for the demo cities (``"AT001C"``),
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
class Sampling:
    """How a city's file was collected, as it goes into ``[dataset]`` and ``[privacy]``.

    Attributes:
        source: ``"register"`` or ``"survey"`` (``[dataset] source``).
        weight: The survey's weight column (``[dataset] weight``), None for a register.
        max_weight: A clipping bound above every weight in the file (``[privacy]
            max_weight``), None for a register.
        design_effect: The survey's design effect (``[dataset] design_effect``).
    """

    source: str = "register"
    weight: str | None = None
    max_weight: float | None = None
    design_effect: float = 1.0


REGISTER = Sampling()
# Weights are ATHENS_WEIGHT (or / ATHENS_OVERSAMPLE) times a non-response factor <= 1.7.
_ATHENS_SURVEY = Sampling("survey", "syntelestis_vary", max_weight=21.0, design_effect=1.2)


@dataclass(frozen=True)
class Profile:
    """Everything that makes one city its own.

    Attributes:
        facts: Public facts for the node configuration.
        demography: The population model's parameters.
        sampling: Register, or survey with its weights.
        format: Key of the city's format in `fedstats.synth_formats` ("" for generic).
    """

    facts: CityFacts
    demography: Demography
    sampling: Sampling
    format: str


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


def _o(code: str, weight: float, since: int = 1950) -> Origin:
    return Origin(code, weight, since)


def _facts(city: str, name: str, geo: str, country: str) -> CityFacts:
    return CityFacts(id=city, name=name, geo=geo, country=country, time_period=TIME_PERIOD)


_PROFILES: Mapping[str, Profile] = {
    "vienna": Profile(
        facts=_facts("vienna", "Vienna", "AT001C", "AT"),
        demography=Demography(
            country="AT",
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
            foreign_parents=0.35,
            owners=0.22,
            self_employed=0.09,
            skill_match=0.80,
        ),
        sampling=REGISTER,
        format="vienna",
    ),
    "amsterdam": Profile(
        facts=_facts("amsterdam", "Amsterdam", "NL002C", "NL"),
        demography=Demography(
            country="NL",
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
            foreign_parents=0.40,
            owners=0.33,
            self_employed=0.15,
            skill_match=0.85,
        ),
        sampling=REGISTER,
        format="amsterdam",
    ),
    "athens": Profile(
        facts=_facts("athens", "Athens", "EL001C", "EL"),
        demography=Demography(
            country="EL",
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
            foreign_parents=0.10,
            owners=0.70,
            self_employed=0.26,
            skill_match=0.70,
            oversample=ATHENS_OVERSAMPLE,
            sampling_weight=ATHENS_WEIGHT,
        ),
        sampling=_ATHENS_SURVEY,
        format="athens",
    ),
    "ghent": Profile(
        facts=_facts("ghent", "Ghent", "BE003C", "BE"),
        demography=Demography(
            country="BE",
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
            foreign_parents=0.30,
            owners=0.57,
            self_employed=0.11,
            skill_match=0.84,
        ),
        sampling=REGISTER,
        format="ghent",
    ),
    "helsinki": Profile(
        facts=_facts("helsinki", "Helsinki", "FI001C", "FI"),
        demography=Demography(
            country="FI",
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
            foreign_parents=0.12,
            owners=0.45,
            self_employed=0.10,
            skill_match=0.85,
        ),
        sampling=REGISTER,
        format="helsinki",
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


def profile(city: str) -> Profile:
    """The profile of a demo city, or the generic profile for any other valid id.

    Raises:
        ValueError: If ``city`` is not a valid id.
    """
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
    return Profile(
        facts=_facts(key, name, key.upper(), GENERIC_COUNTRY),
        demography=Demography(
            country=GENERIC_COUNTRY,
            age_knots=_URBAN,
            foreign_born=0.28,
            eu_share=0.40,
            eu_origins=_GENERIC_ORIGINS[0],
            neu_origins=_GENERIC_ORIGINS[1],
            foreign_parents=0.30,
            second_generation=0.05,
            naturalise_max=0.50,
            naturalise_wait=8,
            stateless=0.01,
            employment=0.99,
            unemployment=0.055,
            tertiary=(0.42, 0.18),
            low=(0.12, 0.30),
            income_median=28_000.0,
            owners=0.50,
            self_employed=0.11,
            skill_match=0.80,
        ),
        sampling=REGISTER,
        format="",
    )

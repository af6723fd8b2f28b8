"""Local formats of the synthetic cities: column names, codes and node-config mappings.

Each city writes the persons of `fedstats.synth_model` with its own column names and
codes, and `VARIABLES` holds the ``[variables.*]`` sections of its node configuration
that map those columns to the harmonised variables. The two must agree; the tests
harmonise every city's frame with its own sections. Every column has a small realistic
share of missing or unmapped values so that ``fedstats node check`` has something to
report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import tomli_w

from fedstats.synth_model import (
    EMP,
    NAT,
    NONE,
    REASONS,
    UNE,
    BoolArray,
    IntArray,
    ObjectArray,
    Persons,
    detail,
)

__all__ = ["FORMATTERS", "VARIABLES", "Formatter", "Var", "render"]

Formatter = Callable[[Persons, np.random.Generator], pd.DataFrame]


@dataclass(frozen=True)
class Var:
    """One ``[variables.NAME]`` section of a node configuration (`node.config`)."""

    column: str = ""
    comment: str = ""
    map: tuple[tuple[str, str], ...] = ()
    default: str | None = None
    missing: str | None = None
    iso_country: bool = False
    from_parents: tuple[str, str] | None = None
    arrival_year: str = ""
    deviation: str = ""
    codes: tuple[str, ...] = ()  # a ``local:NAME`` variable's own code list
    concept: str = ""  # the controlled vocabulary's code (`indicators.concepts`)
    unmapped: str = ""  # ``unmapped`` of an outcome: "unknown" counts unmapped values as UNK

    def columns(self) -> tuple[str, ...]:
        """The local columns the section reads."""
        return tuple(c for c in (self.column, *(self.from_parents or ()), self.arrival_year) if c)


def render(name: str, var: Var) -> str:
    """The TOML text of one ``[variables.NAME]`` section, its comment first."""
    table: dict[str, Any] = {}
    if var.column:
        table["column"] = var.column
    if var.codes:
        table["codes"] = list(var.codes)
    if var.from_parents:
        table["from_parents"] = dict(zip(("father", "mother"), var.from_parents, strict=True))
    if var.arrival_year:
        table["arrival_year"] = var.arrival_year
    if var.map:
        table["map"] = dict(var.map)
    if var.default is not None:
        table["default"] = var.default
    if var.missing is not None:
        table["missing"] = var.missing
    if var.iso_country:
        table["iso_country"] = True
    if var.concept:
        table["concept"] = var.concept
    if var.unmapped:
        table["unmapped"] = var.unmapped
    if var.deviation:
        table["deviation"] = var.deviation
    comment = f"# {var.comment}\n" if var.comment else ""
    return comment + tomli_w.dumps({"variables": {name: table}})


# --------------------------------------------------------------------------- helpers


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


def _status_codes(
    p: Persons, emp: int, emp_part: int, une: int, inactive: Sequence[int]
) -> IntArray:
    """Local status codes: employed (full/part-time), unemployed, four kinds of inactive."""
    inact = np.array(inactive, dtype=np.int64)[p.inactive]
    codes = np.where(
        p.status == EMP,
        np.where(p.part_time, emp_part, emp),
        np.where(p.status == UNE, une, inact),
    )
    out: IntArray = np.where(p.status == NONE, NONE, codes).astype(np.int64)
    return out


def _ids(p: Persons, offset: int) -> IntArray:
    return np.arange(1, p.size + 1, dtype=np.int64) + offset


def _arrival(p: Persons) -> pd.Series:
    return _nullable(p.arrival_year, p.arrival_year < 0)


def _parents(p: Persons, rng: np.random.Generator) -> tuple[ObjectArray, ObjectArray]:
    """Parents' ISO countries of birth; unknown more often for the old and the foreign-born."""
    unknown = 0.01 + 0.07 * (p.age >= 70) + 0.04 * (p.birth_group != NAT)
    father, mother = p.country_codes(p.father), p.country_codes(p.mother)
    father[rng.random(p.size) < unknown] = None
    mother[rng.random(p.size) < unknown * 0.6] = None
    return father, mother


def _reasons(p: Persons, rng: np.random.Generator, codes: Sequence[object]) -> ObjectArray:
    """Reason for migration in local codes: empty for the native-born, a few unknown."""
    out = _labels(codes, p.reason)
    # Registers kept no motive for arrivals before the mid-1990s (often), or lost it.
    lost = (p.reason >= 0) & (rng.random(p.size) < np.where(p.arrival_year < 1995, 0.15, 0.02))
    out[lost] = None
    return out


def _yes_no(p: Persons, rng: np.random.Generator, yes: object, no: object) -> ObjectArray:
    out = _labels((no, yes), p.in_education)
    out[_blank(rng, p.in_education >= 0, 0.01)] = None
    return out


def _isco_major(p: Persons, rng: np.random.Generator, share_unknown: float) -> pd.Series:
    """ISCO-08 major group (0-9) of the employed; empty otherwise and for a few workers."""
    return _nullable(p.isco, (p.isco < 0) | _blank(rng, p.isco >= 0, share_unknown))


def _stapro(
    p: Persons, rng: np.random.Generator, codes: Sequence[object], share_unknown: float
) -> ObjectArray:
    """Status in employment (employer, own-account, employee, family worker) or empty."""
    out = _labels(codes, p.stapro)
    out[_blank(rng, p.stapro >= 0, share_unknown)] = None
    return out


def _codes(pairs: Mapping[int, str] | Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), v) for k, v in pairs.items())


def _isco_map() -> tuple[tuple[str, str], ...]:
    return _codes({**{i: f"OC{i}" for i in range(1, 10)}, 0: "OC0"})


def _both(
    column: str, comment: str = "", missing: str | None = None
) -> tuple[tuple[str, Var], ...]:
    """``yearesid`` and ``arrival_cohort``, both derived from the arrival-year column."""
    return tuple(
        (variable, Var(comment=comment, arrival_year=column, missing=missing))
        for variable in ("yearesid", "arrival_cohort")
    )


_ISCED_MAP = _codes(
    {0: "ED0-2", 1: "ED0-2", 2: "ED0-2", 3: "ED3_4", 4: "ED3_4"}
    | {5: "ED5-8", 6: "ED5-8", 7: "ED5-8", 8: "ED5-8"}
)
_ISCED_LEVELS = (
    ((0, 0.03), (1, 0.22), (2, 0.75)),
    ((3, 0.88), (4, 0.12)),
    ((5, 0.08), (6, 0.45), (7, 0.42), (8, 0.05)),
)
# Local codes 1 employer, 2 own-account, 3 employee, 4 family worker, by internal code.
_STAPRO_4 = (3, 1, 2, 4)
_STAPRO_4_MAP = _codes({1: "SELF", 2: "SELF", 3: "SAL", 4: "CFAM"})


# --------------------------------------------------------------------------- Vienna

# ISCO-08 sub-major groups (two digits) per major group; armed forces are 1-3.
_SUB_MAJOR = {
    0: (1, 2, 3), 1: (11, 12, 13, 14), 2: (21, 22, 23, 24, 25, 26), 3: (31, 32, 33, 34, 35),
    4: (41, 42, 43, 44), 5: (51, 52, 53, 54), 6: (61, 62, 63), 7: (71, 72, 73, 74, 75),
    8: (81, 82, 83), 9: (91, 92, 93, 94, 95, 96),
}  # fmt: skip


def _format_vienna(p: Persons, rng: np.random.Generator) -> pd.DataFrame:
    adult = p.age >= 15
    pl030 = _status_codes(p, 1, 2, 3, (4, 5, 6, 7))
    pe040 = detail(rng, p.education, _ISCED_LEVELS)
    pe010 = np.where(p.in_education == 1, 1, 2)
    hh021 = np.where(
        p.owner,
        np.where(rng.random(p.size) < 0.5, 1, 2),
        np.where(rng.random(p.size) < 0.8, 3, np.where(rng.random(p.size) < 0.7, 4, 5)),
    )
    pl051 = detail(rng, p.isco, [tuple((c, 1.0) for c in _SUB_MAJOR[m]) for m in range(10)])
    return pd.DataFrame(
        {
            "rb030": _ids(p, 10_000_000),
            "rb090": _labels(("male", "female"), p.female.astype(np.int64)),
            "age": p.age,
            "pb220a": _labels(("AT", "EU", "Other", "Other"), p.citizen_group),
            "year_of_arrival": _arrival(p),
            "pl030": _nullable(pl030, (pl030 < 0) | _blank(rng, adult, 0.003)),
            "pe040": _nullable(pe040, (pe040 < 0) | _blank(rng, adult, 0.005)),
            "pe010": _nullable(pe010, ~adult | _blank(rng, adult, 0.01)),
            "hh021": _nullable(hh021, _blank(rng, np.ones(p.size, np.bool_), 0.005)),
            "pl040a": _nullable(
                np.array(_STAPRO_4)[p.stapro], (p.stapro < 0) | _blank(rng, p.stapro >= 0, 0.01)
            ),
            "pl051a": _nullable(pl051, (pl051 < 0) | _blank(rng, pl051 >= 0, 0.02)),
            "hx090": p.income,
        }
    )


_VIENNA: tuple[tuple[str, Var], ...] = (
    ("sex", Var("rb090", map=_codes({"male": "M", "female": "F"}))),
    ("age", Var("age")),
    (
        "citizen",
        Var(
            "pb220a",
            "citizenship group; the register has no country of birth",
            map=_codes({"AT": "NAT", "EU": "EU27_2020_FOR", "Other": "NEU27_2020_FOR"}),
            deviation="stateless persons are recorded as Other and counted as NEU27_2020_FOR",
        ),
    ),
    *_both(
        "year_of_arrival",
        "recorded for every immigrant: empty means born in Austria",
        missing="NAP",
    ),
    (
        "wstatus",
        Var(
            "pl030",
            "1 full-time, 2 part-time, 3 unemployed, 4 pupil or student, 5 retired,"
            " 6 disabled, 7 domestic tasks; empty under 15",
            map=_codes({1: "EMP", 2: "EMP", 3: "UNE"} | dict.fromkeys(range(4, 8), "INAC")),
            missing="UNK",
        ),
    ),
    ("isced11", Var("pe040", "ISCED 2011 level 0-8; empty under 15", map=_ISCED_MAP)),
    (
        "in_educ",
        Var("pe010", "current education activity: 1 yes, 2 no", map=_codes({1: "Y", 2: "N"})),
    ),
    (
        "tenure",
        Var(
            "hh021",
            "1-2 owner, 3 tenant at market rent, 4 reduced rent, 5 rent-free",
            map=_codes({1: "OWNER", 2: "OWNER", 3: "TENANT", 4: "TENANT", 5: "TENANT"}),
        ),
    ),
    (
        "stapro",
        Var(
            "pl040a",
            "1-2 self-employed with/without employees, 3 employee, 4 family worker",
            map=_STAPRO_4_MAP,
        ),
    ),
    (
        "isco08",
        Var(
            "pl051a",
            "ISCO-08 sub-major group (two digits); 1-3 armed forces",
            map=tuple((str(c), f"OC{major}") for major, subs in _SUB_MAJOR.items() for c in subs),
        ),
    ),
    ("income", Var("hx090", "equivalised disposable income, EUR")),
)


# --------------------------------------------------------------------------- Amsterdam

_NL_REASONS = ("asiel", "gezin", "arbeid", "studie", "overig")


def _format_amsterdam(p: Persons, rng: np.random.Generator) -> pd.DataFrame:
    adult = p.age >= 15
    education = _labels(("laag", "middelbaar", "hoog"), p.education)
    unknown = _blank(rng, adult, 0.015) | _blank(rng, adult & (p.birth_group != NAT), 0.05)
    education[unknown] = "onbekend"
    father, mother = _parents(p, rng)
    reason = _reasons(p, rng, _NL_REASONS)
    reason[_blank(rng, p.reason >= 0, 0.03)] = "onbekend"
    tenure = _labels(("huur", "koop"), p.owner.astype(np.int64))
    tenure[_blank(rng, np.ones(p.size, np.bool_), 0.005)] = None
    return pd.DataFrame(
        {
            "rinpersoon": _ids(p, 300_000_000),
            "geslacht": _labels(("man", "vrouw"), p.female.astype(np.int64)),
            "leeftijd": p.age,
            "geboorteland": p.country_codes(p.birth),
            "geboorteland_vader": father,
            "geboorteland_moeder": mother,
            "nationaliteit": p.country_codes(p.citizen),
            "jaar_vestiging": _arrival(p),
            "migratiemotief": reason,
            "arbeidspositie": _labels(("werkzaam", "werkloos", "niet-actief"), p.status),
            "opleidingsniveau": education,
            "onderwijsvolgend": _yes_no(p, rng, "ja", "nee"),
            "woningbezit": tenure,
            "positie_werkzame": _stapro(
                p, rng, ("werknemer", "zelfstandige", "zelfstandige", "meewerkend"), 0.01
            ),
            "beroepsklasse": _isco_major(p, rng, 0.03),
            "gestandaardiseerd_inkomen": p.income,
        }
    )


_AMSTERDAM: tuple[tuple[str, Var], ...] = (
    ("sex", Var("geslacht", map=_codes({"man": "M", "vrouw": "F"}))),
    ("age", Var("leeftijd")),
    ("c_birth", Var("geboorteland", iso_country=True)),
    ("citizen", Var("nationaliteit", "Dutch nationality takes priority", iso_country=True)),
    (
        "mig_background",
        Var(
            comment="derived from the own (c_birth) and the parents' countries of birth",
            from_parents=("geboorteland_vader", "geboorteland_moeder"),
            iso_country=True,
        ),
    ),
    (
        "reason",
        Var(
            "migratiemotief",
            "empty for the native-born; 'onbekend' (unknown) is counted as UNK",
            map=tuple(zip(_NL_REASONS, ("INTPROT", "FAM", "EMP", "EDUC", "OTH"), strict=True)),
        ),
    ),
    *_both("jaar_vestiging", "year of (latest) settlement in the Netherlands"),
    (
        "wstatus",
        Var(
            "arbeidspositie",
            "empty under 15",
            map=_codes({"werkzaam": "EMP", "werkloos": "UNE", "niet-actief": "INAC"}),
        ),
    ),
    (
        "isced11",
        Var(
            "opleidingsniveau",
            "'onbekend' (unknown) is left unmapped and counted as an unknown outcome"
            " (rows flagged d with their unknown share)",
            map=_codes({"laag": "ED0-2", "middelbaar": "ED3_4", "hoog": "ED5-8"}),
            unmapped="unknown",
        ),
    ),
    ("in_educ", Var("onderwijsvolgend", map=_codes({"ja": "Y", "nee": "N"}))),
    ("tenure", Var("woningbezit", map=_codes({"koop": "OWNER", "huur": "TENANT"}))),
    (
        "stapro",
        Var(
            "positie_werkzame",
            "empty for the non-employed",
            map=_codes({"werknemer": "SAL", "zelfstandige": "SELF", "meewerkend": "CFAM"}),
        ),
    ),
    ("isco08", Var("beroepsklasse", "ISCO-08 major group, 0 armed forces", map=_isco_map())),
    ("income", Var("gestandaardiseerd_inkomen")),
)


# --------------------------------------------------------------------------- Athens


def _format_athens(p: Persons, rng: np.random.Generator) -> pd.DataFrame:
    adult = p.age >= 15
    birth = p.country_codes(p.birth)
    # Some records still carry the ISO 3166 code GR instead of Eurostat's EL.
    birth[_blank(rng, p.birth_group == NAT, 0.03)] = "GR"
    citizenship = np.array([1, 2, 3, 4], dtype=np.int64)[p.citizen_group]
    unknown = _blank(rng, np.ones(p.size, dtype=np.bool_), 0.005)
    unknown |= _blank(rng, p.birth_group != NAT, 0.03)
    citizenship[unknown] = 9
    status = _status_codes(p, 1, 1, 2, (3, 4, 6, 5))
    education = detail(
        rng, p.education, (((1, 0.45), (2, 0.55)), ((3, 0.8), (4, 0.2)), ((5, 0.88), (6, 0.12)))
    )
    reason = np.where(p.reason >= 0, p.reason + 1, NONE)
    reason = np.where(_blank(rng, p.reason >= 0, 0.03), 9, reason)
    tenure = np.where(p.owner, 1, np.where(rng.random(p.size) < 0.9, 2, 3))
    return pd.DataFrame(
        {
            "kodikos": _ids(p, 0),
            "fylo": p.female.astype(np.int64) + 1,
            "ilikia": p.age,
            "chora_gennisis": birth,
            "ypikootita": citizenship,
            "etos_afixis": _arrival(p),
            "logos_metanastefsis": _nullable(reason, reason < 0),
            "katastasi_apascholisis": _nullable(status, status < 0),
            "ekpaidefsi": _nullable(education, (education < 0) | _blank(rng, adult, 0.006)),
            "ekpaidefsi_4evd": _nullable(
                np.where(p.in_education == 1, 1, 2), ~adult | _blank(rng, adult, 0.01)
            ),
            "idioktisia": tenure,
            "thesi_apascholisis": _nullable(
                np.array(_STAPRO_4)[p.stapro], (p.stapro < 0) | _blank(rng, p.stapro >= 0, 0.01)
            ),
            "epangelma": _isco_major(p, rng, 0.02),
            "eisodima": p.income,
            "syntelestis_vary": p.weight,
        }
    )


_ATHENS: tuple[tuple[str, Var], ...] = (
    ("sex", Var("fylo", "1 male, 2 female", map=_codes({1: "M", 2: "F"}))),
    ("age", Var("ilikia")),
    ("c_birth", Var("chora_gennisis", "ISO codes; both EL and GR mean Greece", iso_country=True)),
    (
        "citizen",
        Var(
            "ypikootita",
            "1 Greek, 2 other EU, 3 third country, 4 stateless, 9 unknown (unmapped)",
            map=_codes({1: "NAT", 2: "EU27_2020_FOR", 3: "NEU27_2020_FOR", 4: "STLS"}),
        ),
    ),
    (
        "reason",
        Var(
            "logos_metanastefsis",
            "1 international protection, 2 family, 3 work, 4 studies, 5 other, 9 unknown",
            map=_codes({1: "INTPROT", 2: "FAM", 3: "EMP", 4: "EDUC", 5: "OTH"}),
        ),
    ),
    *_both("etos_afixis"),
    (
        "wstatus",
        Var(
            "katastasi_apascholisis",
            "1 employed, 2 unemployed, 3 student, 4 pensioner, 5 household, 6 other"
            " inactive; empty under 15",
            map=_codes({1: "EMP", 2: "UNE"} | dict.fromkeys(range(3, 7), "INAC")),
        ),
    ),
    (
        "isced11",
        Var(
            "ekpaidefsi",
            "1 primary or less, 2 lower secondary, 3 upper secondary, 4 post-secondary,"
            " 5 tertiary, 6 master or doctorate; empty under 15",
            map=_codes({1: "ED0-2", 2: "ED0-2", 3: "ED3_4", 4: "ED3_4", 5: "ED5-8", 6: "ED5-8"}),
        ),
    ),
    (
        "in_educ",
        Var(
            "ekpaidefsi_4evd",
            "education or training, last 4 weeks: 1 yes, 2 no",
            map=_codes({1: "Y", 2: "N"}),
        ),
    ),
    (
        "tenure",
        Var(
            "idioktisia",
            "1 owner, 2 tenant, 3 rent-free",
            map=_codes({1: "OWNER", 2: "TENANT", 3: "TENANT"}),
        ),
    ),
    (
        "stapro",
        Var(
            "thesi_apascholisis",
            "1 employer, 2 own-account, 3 employee, 4 family helper",
            map=_STAPRO_4_MAP,
        ),
    ),
    ("isco08", Var("epangelma", "ISCO-08 major group, 0 armed forces", map=_isco_map())),
    ("income", Var("eisodima")),
)


# --------------------------------------------------------------------------- Ghent

# All EU27 countries, so that the map's default can safely be NEU27_2020_FOR.
_GHENT_EU_NAMES: Mapping[str, str] = {
    "AT": "Oostenrijk", "BE": "België", "BG": "Bulgarije", "CY": "Cyprus", "CZ": "Tsjechië",
    "DE": "Duitsland", "DK": "Denemarken", "EE": "Estland", "EL": "Griekenland",
    "ES": "Spanje", "FI": "Finland", "FR": "Frankrijk", "HR": "Kroatië", "HU": "Hongarije",
    "IE": "Ierland", "IT": "Italië", "LT": "Litouwen", "LU": "Luxemburg", "LV": "Letland",
    "MT": "Malta", "NL": "Nederland", "PL": "Polen", "PT": "Portugal", "RO": "Roemenië",
    "SE": "Zweden", "SI": "Slovenië", "SK": "Slowakije",
}  # fmt: skip
# Non-EU origins that occur in Ghent.
_GHENT_NAMES: Mapping[str, str] = {
    **_GHENT_EU_NAMES,
    "AF": "Afghanistan", "CD": "Congo (Democratische Republiek)", "ER": "Eritrea",
    "GN": "Guinee", "IQ": "Irak", "MA": "Marokko", "RU": "Rusland", "SY": "Syrië",
    "TR": "Turkije", "UA": "Oekraïne",
}  # fmt: skip
_BE_REASONS = ("internationale bescherming", "gezinshereniging", "arbeid", "studie", "andere")


def _format_ghent(p: Persons, rng: np.random.Generator) -> pd.DataFrame:
    adult = p.age >= 15
    names = _labels([_GHENT_NAMES.get(c, c) for c in p.countries], p.birth)
    names[_blank(rng, np.ones(p.size, dtype=np.bool_), 0.003)] = None
    education = _labels(("laag", "midden", "hoog"), p.education)
    education[_blank(rng, adult, 0.04) | _blank(rng, adult & (p.birth_group != NAT), 0.10)] = None
    position = _labels(
        ("werkend", "werkend", "werkzoekend", "student", "gepensioneerd", "arbeidsongeschikt",
         "huisvrouw/huisman"),
        _status_codes(p, 0, 1, 2, (3, 4, 5, 6)),
    )  # fmt: skip
    housing = np.where(p.owner, 0, np.where(rng.random(p.size) < 0.3, 2, 1))
    return pd.DataFrame(
        {
            "persoon_id": _ids(p, 4_000_000),
            "geslacht": _labels(("M", "V"), p.female.astype(np.int64)),
            "leeftijd": p.age,
            "geboorteland": names,
            "nationaliteit": p.country_codes(p.citizen),
            "jaar_aankomst": _arrival(p),
            "verblijfsmotief": _reasons(p, rng, _BE_REASONS),
            "socio_economische_positie": position,
            "onderwijsniveau": education,
            "volgt_onderwijs": _yes_no(p, rng, "J", "N"),
            "woonstatus": _labels(("eigenaar", "huurder", "sociale huurder"), housing),
            "statuut": _stapro(
                p, rng, ("loontrekkende", "zelfstandige", "zelfstandige", "helper"), 0.01
            ),
            "beroep_isco": _isco_major(p, rng, 0.04),
            "equivalent_inkomen": p.income,
        }
    )


_GHENT: tuple[tuple[str, Var], ...] = (
    ("sex", Var("geslacht", "M man, V vrouw", map=_codes({"M": "M", "V": "F"}))),
    ("age", Var("leeftijd")),
    (
        "c_birth",
        Var(
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
    ("citizen", Var("nationaliteit", iso_country=True)),
    (
        "reason",
        Var(
            "verblijfsmotief",
            "reason of the first residence permit; empty for the native-born",
            map=tuple(zip(_BE_REASONS, ("INTPROT", "FAM", "EMP", "EDUC", "OTH"), strict=True)),
        ),
    ),
    *_both("jaar_aankomst"),
    (
        "wstatus",
        Var(
            "socio_economische_positie",
            "empty under 15",
            map=_codes(
                {"werkend": "EMP", "werkzoekend": "UNE"}
                | dict.fromkeys(
                    ("student", "gepensioneerd", "arbeidsongeschikt", "huisvrouw/huisman"),
                    "INAC",
                )
            ),
            concept="registered_jobseeker",
        ),
    ),
    (
        "isced11",
        Var(
            "onderwijsniveau",
            "empty under 15 and where the register has no diploma",
            map=_codes({"laag": "ED0-2", "midden": "ED3_4", "hoog": "ED5-8"}),
            missing="UNK",
        ),
    ),
    ("in_educ", Var("volgt_onderwijs", map=_codes({"J": "Y", "N": "N"}))),
    (
        "tenure",
        Var(
            "woonstatus",
            map=_codes({"eigenaar": "OWNER", "huurder": "TENANT", "sociale huurder": "TENANT"}),
        ),
    ),
    (
        "stapro",
        Var(
            "statuut",
            map=_codes({"loontrekkende": "SAL", "zelfstandige": "SELF", "helper": "CFAM"}),
        ),
    ),
    ("isco08", Var("beroep_isco", "ISCO-08 major group, 0 armed forces", map=_isco_map())),
    ("income", Var("equivalent_inkomen")),
)


# --------------------------------------------------------------------------- Helsinki

_LANGUAGES: Mapping[str, str] = {
    "EE": "et", "SE": "sv", "DE": "de", "ES": "es", "IT": "it", "PL": "pl", "LV": "lv",
    "RU": "ru", "SO": "so", "IQ": "ar", "SY": "ar", "CN": "zh", "UA": "uk", "IN": "en",
    "AF": "fa", "VN": "vi", "TR": "tr", "IR": "fa",
}  # fmt: skip


def _mother_tongue(p: Persons, rng: np.random.Generator) -> ObjectArray:
    """Registered mother tongue: Finnish or Swedish, else the language of the origin."""
    origin = np.array([_LANGUAGES.get(c, "other") for c in p.countries], dtype=object)
    native = np.where(rng.random(p.size) < 0.93, "fi", "sv").astype(object)
    heritage = np.where(p.father > 0, p.father, p.mother)
    keeps = (p.foreign_parents > 0) & (rng.random(p.size) < 0.4 + 0.3 * (p.foreign_parents > 1))
    tongue: ObjectArray = np.where(
        p.birth_group != NAT, origin[p.birth], np.where(keeps, origin[heritage], native)
    )
    return tongue


def _format_helsinki(p: Persons, rng: np.random.Generator) -> pd.DataFrame:
    citizenship = p.country_codes(p.citizen)
    citizenship[_blank(rng, np.ones(p.size, dtype=np.bool_), 0.005)] = "99"
    status = _status_codes(p, 11, 11, 12, (22, 24, 24, 29))
    conscript = (status == 22) & ~p.female & (p.age >= 18) & (p.age <= 20)
    status = np.where(conscript & (rng.random(p.size) < 0.3), 25, status).astype(np.int64)
    education = detail(
        rng,
        p.education,
        (((2, 1.0),), ((3, 0.9), (4, 0.1)), ((5, 0.1), (6, 0.45), (7, 0.4), (8, 0.05))),
    )
    # Qualifications earned abroad are often missing from the Finnish degree register.
    unrecorded = _blank(rng, p.age >= 15, 0.01)
    unrecorded |= _blank(rng, (p.age >= 15) & (p.birth_group != NAT), 0.12)
    # Statistics Finland's origin: Finnish background if a parent was born in Finland.
    foreign_background = np.where(p.birth_group != NAT, (p.father > 0) & (p.mother > 0),
                                  p.foreign_parents == 2)  # fmt: skip
    origin = np.where(foreign_background, 20, 10) + np.where(p.birth_group != NAT, 2, 1)
    housing = np.where(p.owner, 1, np.where(rng.random(p.size) < 0.4, 2, 3))
    housing = np.where(~p.owner & (rng.random(p.size) < 0.06), 4, housing)
    housing = np.where(_blank(rng, np.ones(p.size, np.bool_), 0.01), 9, housing)
    position = np.array((2, 1, 1, 3))[np.maximum(p.stapro, 0)]
    occupation = p.isco.astype(str).astype(object)
    occupation[p.isco < 0] = None
    occupation[_blank(rng, p.isco >= 0, 0.02)] = "X"
    return pd.DataFrame(
        {
            "henkilo_id": _ids(p, 5_000_000),
            "sukupuoli": p.female.astype(np.int64) + 1,
            "ika": p.age,
            "syntymamaa": p.country_codes(p.birth),
            "kansalaisuus": citizenship,
            "syntypera": _nullable(origin, _blank(rng, np.ones(p.size, np.bool_), 0.003)),
            "aidinkieli": _mother_tongue(p, rng),
            "maahanmuuttovuosi": _arrival(p),
            "paaasiallinen_toiminta": _nullable(status, status < 0),
            "koulutusaste": _nullable(education, (education < 0) | unrecorded),
            "opiskelee": _nullable(
                p.in_education, (p.in_education < 0) | _blank(rng, p.in_education >= 0, 0.01)
            ),
            "hallintaperuste": housing,
            "ammattiasema": _nullable(position, p.stapro < 0),
            "ammatti": occupation,
            "ekv_tulot": p.income,
        }
    )


_HELSINKI: tuple[tuple[str, Var], ...] = (
    ("sex", Var("sukupuoli", "1 male, 2 female", map=_codes({1: "M", 2: "F"}))),
    ("age", Var("ika")),
    ("c_birth", Var("syntymamaa", iso_country=True)),
    ("citizen", Var("kansalaisuus", "ISO codes, STLS stateless, 99 unknown", iso_country=True)),
    (
        "mig_background",
        Var(
            "syntypera",
            "origin: 11/12 Finnish background born in Finland/abroad, 21/22 foreign"
            " background; a Finnish background needs one parent born in Finland",
            map=_codes({11: "NB_NBP", 12: "FB", 21: "NB_2FBP", 22: "FB"}),
            concept="national_definition",
            deviation="Statistics Finland's origin: the native-born with one foreign-born"
            " parent have a Finnish background and are counted in NB_NBP (no NB_1FBP)",
        ),
    ),
    *_both("maahanmuuttovuosi"),
    (
        "wstatus",
        Var(
            "paaasiallinen_toiminta",
            "main activity: 11 employed, 12 unemployed, 22 student, 24 pensioner,"
            " 25 conscript, 29 other inactive; empty under 15",
            map=_codes({11: "EMP", 12: "UNE", 22: "INAC", 24: "INAC", 25: "INAC", 29: "INAC"}),
            concept="register_activity",
        ),
    ),
    (
        "isced11",
        Var(
            "koulutusaste",
            "2 basic, 3 upper secondary, 4 post-secondary, 5-8 tertiary; empty under 15"
            " and for qualifications not in the degree register",
            map=_codes({2: "ED0-2", 3: "ED3_4", 4: "ED3_4"} | dict.fromkeys(range(5, 9), "ED5-8")),
        ),
    ),
    ("in_educ", Var("opiskelee", "1 studying or in training, 0 not", map=_codes({1: "Y", 0: "N"}))),
    (
        "tenure",
        Var(
            "hallintaperuste",
            "1 owner-occupied, 2 state-subsidised rental, 3 other rental, 4 right of"
            " occupancy (counted as tenant), 9 unknown (unmapped: an unknown outcome)",
            map=_codes({1: "OWNER", 2: "TENANT", 3: "TENANT", 4: "TENANT"}),
            unmapped="unknown",
        ),
    ),
    (
        "stapro",
        Var(
            "ammattiasema",
            "1 entrepreneur, 2 wage earner, 3 family member",
            map=_codes({1: "SELF", 2: "SAL", 3: "CFAM"}),
        ),
    ),
    (
        "isco08",
        Var(
            "ammatti",
            "ISCO-08 major group, X unknown (unmapped: an unknown outcome)",
            map=_isco_map(),
            unmapped="unknown",
        ),
    ),
    ("income", Var("ekv_tulot")),
    (
        "local:mother_tongue",
        Var(
            "aidinkieli",
            "registered mother tongue (ISO 639-1), Helsinki's own group dimension",
            codes=(*dict.fromkeys(("fi", *_LANGUAGES.values())), "other"),
        ),
    ),
)


# --------------------------------------------------------------------------- generic


def _format_generic(p: Persons, rng: np.random.Generator) -> pd.DataFrame:
    adult = p.age >= 15
    birth = p.country_codes(p.birth)
    birth[_blank(rng, np.ones(p.size, dtype=np.bool_), 0.003)] = None
    education = _labels(("low", "medium", "high"), p.education)
    education[_blank(rng, adult, 0.02)] = None
    father, mother = _parents(p, rng)
    return pd.DataFrame(
        {
            "person_id": _ids(p, 0),
            "sex": _labels(("M", "F"), p.female.astype(np.int64)),
            "age": p.age,
            "country_of_birth": birth,
            "father_country_of_birth": father,
            "mother_country_of_birth": mother,
            "citizenship": p.country_codes(p.citizen),
            "arrival_year": _arrival(p),
            "reason_for_migration": _reasons(p, rng, REASONS),
            "labour_status": _labels(("employed", "unemployed", "inactive"), p.status),
            "education": education,
            "in_education": _yes_no(p, rng, "yes", "no"),
            "tenure": _labels(("tenant", "owner"), p.owner.astype(np.int64)),
            "status_in_employment": _stapro(
                p, rng, ("employee", "self-employed", "self-employed", "family worker"), 0.01
            ),
            "occupation_isco": _isco_major(p, rng, 0.02),
            "income": p.income,
        }
    )


_GENERIC: tuple[tuple[str, Var], ...] = (
    ("sex", Var("sex", map=_codes({"M": "M", "F": "F"}))),
    ("age", Var("age")),
    ("c_birth", Var("country_of_birth", iso_country=True)),
    ("citizen", Var("citizenship", iso_country=True)),
    (
        "mig_background",
        Var(from_parents=("father_country_of_birth", "mother_country_of_birth"), iso_country=True),
    ),
    (
        "reason",
        Var(
            "reason_for_migration",
            map=tuple(zip(REASONS, ("INTPROT", "FAM", "EMP", "EDUC", "OTH"), strict=True)),
        ),
    ),
    *_both("arrival_year"),
    (
        "wstatus",
        Var(
            "labour_status",
            map=_codes({"employed": "EMP", "unemployed": "UNE", "inactive": "INAC"}),
        ),
    ),
    (
        "isced11",
        Var(
            "education",
            map=_codes({"low": "ED0-2", "medium": "ED3_4", "high": "ED5-8"}),
            missing="UNK",
        ),
    ),
    ("in_educ", Var("in_education", map=_codes({"yes": "Y", "no": "N"}))),
    ("tenure", Var("tenure", map=_codes({"owner": "OWNER", "tenant": "TENANT"}))),
    (
        "stapro",
        Var(
            "status_in_employment",
            map=_codes({"employee": "SAL", "self-employed": "SELF", "family worker": "CFAM"}),
        ),
    ),
    ("isco08", Var("occupation_isco", map=_isco_map())),
    ("income", Var("income")),
)

FORMATTERS: Mapping[str, Formatter] = {
    "vienna": _format_vienna,
    "amsterdam": _format_amsterdam,
    "athens": _format_athens,
    "ghent": _format_ghent,
    "helsinki": _format_helsinki,
    "": _format_generic,
}
VARIABLES: Mapping[str, tuple[tuple[str, Var], ...]] = {
    "vienna": _VIENNA,
    "amsterdam": _AMSTERDAM,
    "athens": _ATHENS,
    "ghent": _GHENT,
    "helsinki": _HELSINKI,
    "": _GENERIC,
}

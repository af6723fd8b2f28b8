"""Harmonised variables and their public code lists (DESIGN section 2).

Every categorical variable ends its code list with ``UNK``: values that are missing or
cannot be mapped become ``UNK`` and are counted, never dropped. Keeping ``UNK`` last lets
a table dimension that excludes it use the same positions as the variable itself.

Variables that apply to part of the population only carry ``NAP`` ("not applicable",
Eurostat's code) just before ``UNK``: the native-born have no reason for migration, no
years of residence and no arrival cohort; the non-employed have no status in employment
and no occupation. ``NAP`` is a known answer, not a missing one, so the native-born are
not counted as unknown (see `indicators.derived` for when a node sets it).

Code lists (``UNK`` last, omitted here) and how a node provides each variable (the kinds
of ``[variables.NAME]`` mapping and their keys are listed in `node.mappings`):

- ``sex``: ``M F``; ``c_birth``: ``NAT EU27_2020_FOR NEU27_2020_FOR``; ``citizen``: the
  same and ``STLS``; ``wstatus``: ``EMP UNE INAC``; ``isced11``: ``ED0-2 ED3_4 ED5-8``:
  mapped columns (country columns may hold ISO codes, ``iso_country``).
- ``mig_background``: ``FB NB_2FBP NB_1FBP NB_NBP`` (foreign-born; native-born with two,
  one or no foreign-born parents): a mapped column, or derived from the own and both
  parents' countries of birth.
- ``reason``: ``INTPROT FAM EMP EDUC OTH NAP``: reason for migration, a mapped column.
- ``yearesid``: ``Y_LT5 Y5-9 Y_GE10 NAP``: years of residence, derived from an
  arrival-year column and the reference period (or a mapped column).
- ``arrival_cohort``: ``Y_LT1980 Y1980-1999 Y2000-2009 Y2010-2014 Y2015-2019 Y2020-2024
  Y_GE2025 NAP``: public bands of the arrival year, derived like ``yearesid``.
- ``in_educ``: ``Y N``: in formal or non-formal education or training in the last 4 weeks.
- ``tenure``: ``OWNER TENANT`` (tenants at market rent, reduced rent or rent-free).
- ``stapro``: ``SAL SELF CFAM NAP``: status in employment of the main job.
- ``isco08``: ``OC1`` .. ``OC9``, ``OC0``, ``NAP``: ISCO-08 major group of the main job.
- ``elet``: ``Y N``, ``neet``: ``Y N``, ``overqual``: ``OVQ MATCH NAP``: per-person
  outcomes derived from the variables above (`indicators.derived`), never mapped.
- ``income``: public bins of a numeric column (`INCOME_EDGES`).

``stapro`` and ``isco08`` use Eurostat's codes (``SAL`` employees, ``SELF``
self-employed, ``CFAM`` contributing family workers; ``OC1``-``OC9`` ISCO-08 major groups,
``OC0`` armed forces) and the EU-LFS names of the variables (STAPRO, ISCO).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "AGE",
    "AGE_MISSING",
    "ARRIVAL_COHORTS",
    "CATEGORICAL",
    "COUNTRY_GROUPS",
    "EU27_2020",
    "INCOME",
    "INCOME_EDGES",
    "ISO_3166_ALPHA2",
    "NAP",
    "UNK",
    "YEARESID",
    "Variable",
    "country_group",
]

UNK = "UNK"
NAP = "NAP"  # not applicable: the variable does not apply to this person
AGE = "age"
AGE_MISSING = 255  # code stored for a missing or implausible age (ages are 0..120)


@dataclass(frozen=True)
class Variable:
    """A harmonised categorical variable, or a numeric one cut at public bin edges.

    Attributes:
        name: Harmonised name, e.g. ``"c_birth"``.
        codes: Public code list; ``UNK`` is always last.
        description: What the variable means.
        edges: For a binned numeric variable: the lower edge of every bin (the first is
            ``-inf``), so bin ``i`` holds ``edges[i] <= x < edges[i + 1]``.
        labels: Optional human-readable name of every code, in code order.
    """

    name: str
    codes: tuple[str, ...]
    description: str
    edges: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.codes[-1] != UNK or len(set(self.codes)) != len(self.codes):
            raise ValueError(f"{self.name}: codes must be distinct and end with {UNK}")
        if self.labels and len(self.labels) != len(self.codes):
            raise ValueError(f"{self.name}: one label per code")

    @property
    def binned(self) -> bool:
        """Whether the variable is numeric, cut at public edges."""
        return bool(self.edges)

    def index(self, code: str) -> int:
        """Position of ``code`` in the code list."""
        return self.codes.index(code)

    def label(self, code: str) -> str:
        """Human-readable name of a code (the code itself when the variable has none)."""
        return self.labels[self.index(code)] if self.labels else code


def _income_edges() -> tuple[float, ...]:
    """Public income bin edges: below 0, then 0-100, then 2% steps up to 1,000,000.

    Log-spaced edges give every income level the same relative resolution: a median read
    from these bins is within one bin, at most 2.35% of its value, of the exact median.
    """
    steps = 400
    ratio = (1_000_000 / 100) ** (1 / steps)
    return (-math.inf, 0.0, *(round(100 * ratio**i, 2) for i in range(steps + 1)))


INCOME_EDGES = _income_edges()
INCOME = Variable(
    "income",
    (*(f"I{i:03d}" for i in range(len(INCOME_EDGES))), UNK),
    "equivalised disposable income, in public bins",
    INCOME_EDGES,
)

# Years since arrival, by their lower bound (DESIGN section 2).
YEARESID: tuple[tuple[int, str], ...] = ((0, "Y_LT5"), (5, "Y5-9"), (10, "Y_GE10"))

# Public arrival cohorts, by their first year; arrival years before 1900 are implausible.
ARRIVAL_COHORTS: tuple[tuple[int, str], ...] = (
    (1900, "Y_LT1980"),
    (1980, "Y1980-1999"),
    (2000, "Y2000-2009"),
    (2010, "Y2010-2014"),
    (2015, "Y2015-2019"),
    (2020, "Y2020-2024"),
    (2025, "Y_GE2025"),
)


def _variable(name: str, description: str, *pairs: tuple[str, str]) -> Variable:
    """A categorical variable from (code, label) pairs; ``UNK`` is appended."""
    return Variable(
        name,
        (*(c for c, _ in pairs), UNK),
        description,
        labels=(*(label for _, label in pairs), "Unknown"),
    )


_NAP = (NAP, "Not applicable")
_YES_NO = (("Y", "Yes"), ("N", "No"))

CATEGORICAL: dict[str, Variable] = {
    v.name: v
    for v in (
        _variable("sex", "sex", ("M", "Males"), ("F", "Females")),
        _variable(
            "c_birth",
            "country of birth group, relative to the node's country",
            ("NAT", "Reporting country"),
            ("EU27_2020_FOR", "EU27 countries (from 2020) except reporting country"),
            ("NEU27_2020_FOR", "Non-EU27 countries (from 2020) nor reporting country"),
        ),
        _variable(
            "citizen",
            "citizenship group, relative to the node's country",
            ("NAT", "Reporting country"),
            ("EU27_2020_FOR", "EU27 countries (from 2020) except reporting country"),
            ("NEU27_2020_FOR", "Non-EU27 countries (from 2020) nor reporting country"),
            ("STLS", "Stateless"),
        ),
        _variable(
            "mig_background",
            "migration background: own and parents' country of birth",
            ("FB", "Foreign-born"),
            ("NB_2FBP", "Native-born with two foreign-born parents"),
            ("NB_1FBP", "Native-born with one foreign-born parent"),
            ("NB_NBP", "Native-born with native-born parents"),
        ),
        _variable(
            "reason",
            "reason for migration (residence permit) of the foreign-born",
            ("INTPROT", "International protection"),
            ("FAM", "Family reasons"),
            ("EMP", "Employment"),
            ("EDUC", "Education or study"),
            ("OTH", "Other reasons"),
            _NAP,
        ),
        _variable(
            "yearesid",
            "years of residence in the country since arrival, at the reference period",
            ("Y_LT5", "Less than 5 years"),
            ("Y5-9", "From 5 to 9 years"),
            ("Y_GE10", "10 years or over"),
            _NAP,
        ),
        _variable(
            "arrival_cohort",
            "year of arrival in the country, in public bands",
            ("Y_LT1980", "Before 1980"),
            ("Y1980-1999", "From 1980 to 1999"),
            ("Y2000-2009", "From 2000 to 2009"),
            ("Y2010-2014", "From 2010 to 2014"),
            ("Y2015-2019", "From 2015 to 2019"),
            ("Y2020-2024", "From 2020 to 2024"),
            ("Y_GE2025", "2025 or later"),
            _NAP,
        ),
        _variable(
            "wstatus",
            "ILO labour status",
            ("EMP", "Employed persons"),
            ("UNE", "Unemployed persons"),
            ("INAC", "Inactive persons"),
        ),
        _variable(
            "isced11",
            "highest educational attainment",
            ("ED0-2", "Less than primary, primary and lower secondary (ISCED 0-2)"),
            ("ED3_4", "Upper secondary and post-secondary non-tertiary (ISCED 3-4)"),
            ("ED5-8", "Tertiary education (ISCED 5-8)"),
        ),
        _variable(
            "in_educ", "in formal or non-formal education or training, last 4 weeks", *_YES_NO
        ),
        _variable(
            "tenure",
            "tenure status of the dwelling the person lives in",
            ("OWNER", "Owner"),
            ("TENANT", "Tenant (market, reduced or free rent)"),
        ),
        _variable(
            "stapro",
            "status in employment of the main job (employed persons)",
            ("SAL", "Employees"),
            ("SELF", "Self-employed persons"),
            ("CFAM", "Contributing family workers"),
            _NAP,
        ),
        _variable(
            "isco08",
            "occupation of the main job, ISCO-08 major group (employed persons)",
            ("OC1", "Managers"),
            ("OC2", "Professionals"),
            ("OC3", "Technicians and associate professionals"),
            ("OC4", "Clerical support workers"),
            ("OC5", "Service and sales workers"),
            ("OC6", "Skilled agricultural, forestry and fishery workers"),
            ("OC7", "Craft and related trades workers"),
            ("OC8", "Plant and machine operators and assemblers"),
            ("OC9", "Elementary occupations"),
            ("OC0", "Armed forces occupations"),
            _NAP,
        ),
        _variable(
            "elet",
            "early leaver from education and training: ISCED 0-2 and not in education",
            *_YES_NO,
        ),
        _variable(
            "neet",
            "neither in employment nor in education or training",
            *_YES_NO,
        ),
        _variable(
            "overqual",
            "over-qualification of the tertiary-educated employed",
            ("OVQ", "Tertiary-educated, employed in an ISCO 4-9 occupation"),
            ("MATCH", "Tertiary-educated, employed in an ISCO 1-3 occupation"),
            _NAP,
        ),
        INCOME,
    )
}

# Variables whose values may be ISO 3166 alpha-2 country codes grouped by the node's country.
COUNTRY_GROUPS = ("c_birth", "citizen")

# EU member states since 1 February 2020, ISO 3166 alpha-2 (Eurostat writes Greece EL).
EU27_2020 = frozenset(
    "AT BE BG CY CZ DE DK EE EL ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905
)

ISO_3166_ALPHA2 = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK
    DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR
    GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM
    KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP
    MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL
    PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST
    SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG
    VI VN VU WF WS YE YT ZA ZM ZW EL XK""".split()  # noqa: SIM905  # noqa: SIM905
)

STATELESS = frozenset({"STLS", "XX"})


def country_group(value: str, home: str, variable: str) -> str | None:
    """Group one ISO 3166 alpha-2 value relative to the node's own country.

    Args:
        value: A country code as found in the data (case and spaces ignored).
        home: The node's country, ISO 3166 alpha-2.
        variable: ``"c_birth"`` or ``"citizen"`` (only citizenship knows ``STLS``).

    Returns:
        The harmonised code, or None when the value is not a country code.
    """
    code = value.strip().upper()
    if variable == "citizen" and code in STATELESS:
        return "STLS"
    if code not in ISO_3166_ALPHA2:
        return None
    if _same_country(code, home):
        return "NAT"
    return "EU27_2020_FOR" if code in EU27_2020 else "NEU27_2020_FOR"


def _same_country(code: str, home: str) -> bool:
    greece = {"EL", "GR"}
    return code == home or (code in greece and home in greece)

"""The indicator catalogue: each indicator is post-processing of one table (DESIGN section 3).

An indicator names a population (an age range, with the public age bands used when a
query breaks it down by age), an outcome variable whose whole code list is released as
one partition, and the outcome codes of its numerator and denominator.

Indicators whose definition combines several variables (early leavers, NEET,
over-qualification) read a per-person outcome derived at load time by the rules of
`indicators.derived`, so that each stays one table with one outcome partition. Outcome
codes outside the denominator (``NAP``: the non-employed for the self-employment share)
are released with the table but take no part in the ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

from indicators.variables import CATEGORICAL, UNK

MAX_AGE = 120
CATALOGUE_VERSION = 1
"""Version of the catalogue's definitions, which a node and a coordinator must share.

Both sides compile a query into table specs from their own copy of the catalogue, so the
tables match only when they define each indicator alike. Bump this when an existing
indicator's population, outcome partition, numerator or denominator changes; adding an
indicator needs no bump (a node lists the indicators it knows in its capabilities).
"""

__all__ = [
    "BELOW_LINE",
    "CATALOGUE",
    "CATALOGUE_VERSION",
    "MAX_AGE",
    "MEDIAN_RATIO",
    "RATIO",
    "AgeBand",
    "Indicator",
    "Population",
]


@dataclass(frozen=True)
class AgeBand:
    """A closed range of ages, coded Eurostat-style (``Y20-24``)."""

    low: int
    high: int

    @property
    def code(self) -> str:
        """The band's public code (``Y_GE65`` for an open top band)."""
        return f"Y_GE{self.low}" if self.high >= MAX_AGE else f"Y{self.low}-{self.high}"


@dataclass(frozen=True)
class Population:
    """Who an indicator is about: an age range and its public breakdown bands."""

    age_min: int
    age_max: int
    bands: tuple[AgeBand, ...]

    def __post_init__(self) -> None:
        expected = self.age_min
        for band in self.bands:
            if band.low != expected or band.high < band.low:
                raise ValueError(f"age bands must tile {self.age_min}-{self.age_max}")
            expected = band.high + 1
        if expected != self.age_max + 1:
            raise ValueError(f"age bands must tile {self.age_min}-{self.age_max}")

    @property
    def code(self) -> str:
        """The population's age code, e.g. ``Y20-64``."""
        return AgeBand(self.age_min, self.age_max).code


RATIO = "ratio"
MEDIAN_RATIO = "median_ratio"
BELOW_LINE = "below_line"


@dataclass(frozen=True)
class Indicator:
    """A catalogue entry.

    Attributes:
        name: Catalogue key used in queries, e.g. ``"employment_rate"``.
        title: Human-readable title.
        population: Age range and breakdown bands.
        outcome: Harmonised variable released as a partition (``UNK`` excluded).
        numerator: Outcome codes counted in the numerator (``ratio`` indicators).
        denominator: Outcome codes counted in the denominator (``ratio`` indicators).
        unit: Eurostat unit code; ``PC`` = percentage.
        definition: Definition and the Eurostat table the indicator mirrors.
        kind: ``ratio`` (a share of outcome codes), ``median_ratio`` (the group's median
            of a binned outcome over the whole population's median, in percent) or
            ``below_line`` (the share below a poverty line of a binned outcome).
    """

    name: str
    title: str
    population: Population
    outcome: str
    numerator: frozenset[str]
    denominator: frozenset[str]
    unit: str
    definition: str
    kind: str = RATIO

    def __post_init__(self) -> None:
        codes = set(CATEGORICAL[self.outcome].codes) - {UNK}
        if self.kind == RATIO and not self.numerator <= self.denominator <= codes:
            raise ValueError(f"{self.name}: numerator must lie within denominator codes")
        if self.kind != RATIO and not CATEGORICAL[self.outcome].binned:
            raise ValueError(f"{self.name}: {self.kind} needs a binned outcome")


_WORKING_AGE = Population(
    20,
    64,
    (AgeBand(20, 24), AgeBand(25, 34), AgeBand(35, 44), AgeBand(45, 54), AgeBand(55, 64)),
)
_ADULTS = Population(25, 64, (AgeBand(25, 34), AgeBand(35, 44), AgeBand(45, 54), AgeBand(55, 64)))
_ADULTS_18 = Population(
    18, MAX_AGE, (AgeBand(18, 24), AgeBand(25, 54), AgeBand(55, 64), AgeBand(65, MAX_AGE))
)
_YOUNG_ADULTS = Population(18, 24, (AgeBand(18, 24),))
_YOUTH = Population(15, 29, (AgeBand(15, 19), AgeBand(20, 24), AgeBand(25, 29)))
_AGED_30_34 = Population(30, 34, (AgeBand(30, 34),))
_ALL_STATUSES = frozenset({"EMP", "UNE", "INAC"})
_ALL_LEVELS = frozenset({"ED0-2", "ED3_4", "ED5-8"})
_YES = frozenset({"Y"})
_YES_NO = frozenset({"Y", "N"})

CATALOGUE: dict[str, Indicator] = {
    i.name: i
    for i in (
        Indicator(
            "employment_rate",
            "Employment rate, 20-64",
            _WORKING_AGE,
            "wstatus",
            frozenset({"EMP"}),
            _ALL_STATUSES,
            "PC",
            "Employed persons as a share of the population aged 20-64 (Eurostat lfsa_ergacob).",
        ),
        Indicator(
            "unemployment_rate",
            "Unemployment rate, 20-64",
            _WORKING_AGE,
            "wstatus",
            frozenset({"UNE"}),
            frozenset({"EMP", "UNE"}),
            "PC",
            "Unemployed persons as a share of the labour force aged 20-64 (Eurostat lfsa_urgacob).",
        ),
        Indicator(
            "activity_rate",
            "Activity rate, 20-64",
            _WORKING_AGE,
            "wstatus",
            frozenset({"EMP", "UNE"}),
            _ALL_STATUSES,
            "PC",
            "Labour force as a share of the population aged 20-64 (Eurostat lfsa_argacob).",
        ),
        Indicator(
            "attainment_low",
            "Low educational attainment (ISCED 0-2), 25-64",
            _ADULTS,
            "isced11",
            frozenset({"ED0-2"}),
            _ALL_LEVELS,
            "PC",
            "Share of the population aged 25-64 whose highest attainment is ISCED 2011 "
            "levels 0-2 (Eurostat edat_lfs_9912).",
        ),
        Indicator(
            "attainment_medium",
            "Medium educational attainment (ISCED 3-4), 25-64",
            _ADULTS,
            "isced11",
            frozenset({"ED3_4"}),
            _ALL_LEVELS,
            "PC",
            "Share of the population aged 25-64 whose highest attainment is ISCED 2011 "
            "levels 3-4 (Eurostat edat_lfs_9912).",
        ),
        Indicator(
            "attainment_high",
            "High educational attainment (ISCED 5-8), 25-64",
            _ADULTS,
            "isced11",
            frozenset({"ED5-8"}),
            _ALL_LEVELS,
            "PC",
            "Share of the population aged 25-64 whose highest attainment is ISCED 2011 "
            "levels 5-8 (Eurostat edat_lfs_9912).",
        ),
        Indicator(
            "median_income_ratio",
            "Median income relative to the whole population, 18+",
            _ADULTS_18,
            "income",
            frozenset(),
            frozenset(),
            "PC",
            "Median equivalised disposable income of the group as a percentage of the "
            "median of the whole population aged 18 and over (Eurostat ilc_di15 / ilc_di17). "
            "Medians are read from the interpolated distribution of public income bins, so a "
            "pooled median is the median of the pooled distribution.",
            kind=MEDIAN_RATIO,
        ),
        Indicator(
            "arop_rate",
            "At-risk-of-poverty rate, 18+",
            _ADULTS_18,
            "income",
            frozenset(),
            frozenset(),
            "PC",
            "Share of persons aged 18 and over whose equivalised disposable income is below "
            "the poverty line (Eurostat ilc_li32 by citizenship, ilc_li33 by country of "
            "birth). The line is the query's, else the node's configured national line, else "
            "60% of the pooled median of all answering nodes.",
            kind=BELOW_LINE,
        ),
        Indicator(
            "early_leavers",
            "Early leavers from education and training, 18-24",
            _YOUNG_ADULTS,
            "elet",
            _YES,
            _YES_NO,
            "PC",
            "Share of persons aged 18-24 whose highest attainment is at most lower secondary "
            "(ISCED 2011 levels 0-2) and who were not in formal or non-formal education or "
            "training in the last 4 weeks, among those whose attainment and participation "
            "are known (Eurostat edat_lfse_02 by country of birth, edat_lfse_01 by "
            "citizenship).",
        ),
        Indicator(
            "neet_rate",
            "Young people neither in employment nor in education and training (NEET), 15-29",
            _YOUTH,
            "neet",
            _YES,
            _YES_NO,
            "PC",
            "Share of persons aged 15-29 who are not employed (unemployed or inactive, ILO) "
            "and were not in formal or non-formal education or training in the last 4 weeks "
            "(Eurostat edat_lfse_28 by country of birth, edat_lfse_23 by citizenship).",
        ),
        Indicator(
            "tertiary_30_34",
            "Tertiary educational attainment, 30-34",
            _AGED_30_34,
            "isced11",
            frozenset({"ED5-8"}),
            _ALL_LEVELS,
            "PC",
            "Share of the population aged 30-34 whose highest attainment is tertiary "
            "(ISCED 2011 levels 5-8) (Eurostat edat_lfs_9912 by country of birth, "
            "edat_lfs_9911 by citizenship, age 30-34).",
        ),
        Indicator(
            "owner_share",
            "Share of persons living in an owner-occupied dwelling, 18+",
            _ADULTS_18,
            "tenure",
            frozenset({"OWNER"}),
            frozenset({"OWNER", "TENANT"}),
            "PC",
            "Share of persons aged 18 and over living in a dwelling owned by a member of "
            "their household; tenants at market rent, at reduced rent or rent-free make up "
            "the rest (Eurostat ilc_lvho15 by citizenship, ilc_lvho16 by country of birth).",
        ),
        Indicator(
            "self_employment_share",
            "Self-employed persons as a share of total employment, 20-64",
            _WORKING_AGE,
            "stapro",
            frozenset({"SELF"}),
            frozenset({"SAL", "SELF", "CFAM"}),
            "PC",
            "Self-employed persons (with or without employees) as a share of all employed "
            "persons aged 20-64: employees, self-employed and contributing family workers "
            "(Eurostat lfsa_esgacob by country of birth, lfsa_esgan by citizenship).",
        ),
        Indicator(
            "overqualification_rate",
            "Over-qualification rate, 20-64",
            _WORKING_AGE,
            "overqual",
            frozenset({"OVQ"}),
            frozenset({"OVQ", "MATCH"}),
            "PC",
            "Share of employed persons aged 20-64 with tertiary attainment (ISCED 2011 "
            "levels 5-8) who work in low- or medium-skilled occupations (ISCO-08 major "
            "groups 4-9), among the tertiary-educated employed in ISCO-08 groups 1-9 "
            "(Eurostat lfsa_eoqgan by citizenship, lfsa_eoqgac by country of birth).",
        ),
    )
}

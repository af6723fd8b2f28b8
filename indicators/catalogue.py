"""The indicator catalogue: each indicator is post-processing of one table (DESIGN section 3).

An indicator names a population (an age range, with the public age bands used when a
query breaks it down by age), an outcome variable whose whole code list is released as
one partition, and the outcome codes of its numerator and denominator.
"""

from __future__ import annotations

from dataclasses import dataclass

from indicators.variables import CATEGORICAL, UNK

__all__ = ["CATALOGUE", "AgeBand", "Indicator", "Population"]


@dataclass(frozen=True)
class AgeBand:
    """A closed range of ages, coded Eurostat-style (``Y20-24``)."""

    low: int
    high: int

    @property
    def code(self) -> str:
        """The band's public code."""
        return f"Y{self.low}-{self.high}"


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
        return f"Y{self.age_min}-{self.age_max}"


@dataclass(frozen=True)
class Indicator:
    """A catalogue entry.

    Attributes:
        name: Catalogue key used in queries, e.g. ``"employment_rate"``.
        title: Human-readable title.
        population: Age range and breakdown bands.
        outcome: Harmonised variable released as a partition (``UNK`` excluded).
        numerator: Outcome codes counted in the numerator.
        denominator: Outcome codes counted in the denominator.
        unit: Eurostat unit code; ``PC`` = percentage.
        definition: Definition and the Eurostat table the indicator mirrors.
    """

    name: str
    title: str
    population: Population
    outcome: str
    numerator: frozenset[str]
    denominator: frozenset[str]
    unit: str
    definition: str

    def __post_init__(self) -> None:
        codes = set(CATEGORICAL[self.outcome].codes) - {UNK}
        if not self.numerator <= self.denominator <= codes:
            raise ValueError(f"{self.name}: numerator must lie within denominator codes")


_WORKING_AGE = Population(
    20,
    64,
    (AgeBand(20, 24), AgeBand(25, 34), AgeBand(35, 44), AgeBand(45, 54), AgeBand(55, 64)),
)
_ADULTS = Population(25, 64, (AgeBand(25, 34), AgeBand(35, 44), AgeBand(45, 54), AgeBand(55, 64)))
_ALL_STATUSES = frozenset({"EMP", "UNE", "INAC"})
_ALL_LEVELS = frozenset({"ED0-2", "ED3_4", "ED5-8"})

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
    )
}

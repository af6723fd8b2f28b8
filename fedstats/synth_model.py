"""The synthetic population behind `fedstats.synth`: persons in internal codes.

Everything here is **synthetic**. `simulate` draws one city's persons from its
`Demography`, vectorised with numpy (a million persons in a few seconds); a city's format
(`fedstats.synth_formats`) then writes them with its own column names and codes. What is
modelled, and how, is described in `fedstats.synth`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "CFAM",
    "EMP",
    "EU",
    "HIGH",
    "INAC",
    "LOW",
    "MID",
    "NAT",
    "NEU",
    "NONE",
    "REASONS",
    "REFERENCE_YEAR",
    "SAL",
    "SELF_ALONE",
    "SELF_EMPLOYER",
    "STLS",
    "TIME_PERIOD",
    "UNE",
    "Demography",
    "Origin",
    "Persons",
    "simulate",
]

TIME_PERIOD = "2025"
REFERENCE_YEAR = int(TIME_PERIOD)
MAX_AGE = 99

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ObjectArray = npt.NDArray[np.object_]

# Internal codes; NONE (-1) is "not applicable" (or, for parents, unknown).
NONE = -1
NAT, EU, NEU, STLS = 0, 1, 2, 3  # birth and citizenship groups
EMP, UNE, INAC = 0, 1, 2  # labour status, from 15
STUDENT, RETIRED, DISABLED, CARE = 0, 1, 2, 3  # kind of inactivity
LOW, MID, HIGH = 0, 1, 2  # education groups, from 15
PROTECTION, FAMILY, WORK, STUDY, OTHER = 0, 1, 2, 3, 4  # reason for migration
REASONS = ("protection", "family", "work", "study", "other")
SAL, SELF_EMPLOYER, SELF_ALONE, CFAM = 0, 1, 2, 3  # status in employment

# Share of arrivals from an origin who came for international protection.
_REFUGEES: Mapping[str, float] = {
    "SY": 0.85, "AF": 0.75, "IQ": 0.65, "ER": 0.85, "SO": 0.75, "IR": 0.35, "UA": 0.12,
    "RU": 0.08, "CD": 0.30, "GN": 0.30, "BA": 0.35, "RS": 0.06, "TR": 0.06, "VN": 0.30,
    "PK": 0.10,
}  # fmt: skip
# Origins with a tradition of small businesses among their migrants.
_ENTREPRENEURS = frozenset({"TR", "CN", "VN", "IN", "PK", "EG", "IT", "PL"})

# Relative density of the foreign-born by age: few children, most at working ages.
_FOREIGN_AGE_SHAPE = (
    (0, 0.25), (15, 0.55), (20, 1.0), (25, 1.5), (35, 1.7), (45, 1.4), (55, 1.1),
    (65, 0.7), (80, 0.5), (99, 0.4),
)  # fmt: skip
# Native employment probability by age, before sex, education, origin and city factors.
_EMPLOYMENT_BY_AGE = (
    (15, 0.12), (19, 0.38), (20, 0.52), (24, 0.70), (25, 0.79), (29, 0.87), (30, 0.90),
    (54, 0.90), (55, 0.84), (59, 0.78), (60, 0.62), (64, 0.38), (65, 0.10), (69, 0.05),
    (70, 0.02), (99, 0.0),
)  # fmt: skip
# Occupation (ISCO-08 major groups 1..9) of the employed, by education and skill match.
_OCCUPATIONS = (
    ((1, 0.02), (2, 0.01), (3, 0.05), (4, 0.07), (5, 0.25), (6, 0.03), (7, 0.20), (8, 0.15),
     (9, 0.22)),  # ISCED 0-2
    ((1, 0.04), (2, 0.05), (3, 0.22), (4, 0.15), (5, 0.24), (6, 0.02), (7, 0.12), (8, 0.08),
     (9, 0.08)),  # ISCED 3-4
    ((1, 0.12), (2, 0.58), (3, 0.30)),  # tertiary, in a job that needs it
    ((4, 0.25), (5, 0.33), (6, 0.01), (7, 0.09), (8, 0.10), (9, 0.22)),  # over-qualified
)  # fmt: skip


@dataclass(frozen=True)
class Origin:
    """An origin country: ISO code, relative weight, first plausible arrival year."""

    code: str
    weight: float
    since: int = 1950


@dataclass(frozen=True)
class Demography:
    """The numbers that make one city's population its own.

    Attributes:
        country: Home country, ISO 3166 alpha-2 (Eurostat style: Greece is ``EL``).
        age_knots: Relative population density by age (interpolated).
        foreign_born: Share of the population born abroad.
        eu_share: Share of the foreign-born born in another EU country.
        eu_origins: EU origin countries.
        neu_origins: Non-EU origin countries.
        foreign_parents: Share of native-born children with a foreign-born parent (less
            at older ages).
        second_generation: Share of native-born children holding a foreign citizenship.
        naturalise_max: Long-run share of the non-EU-born who naturalise.
        naturalise_wait: Years of residence before naturalisation starts.
        stateless: Share of non-EU-born foreign citizens who are stateless.
        employment: City factor on employment probabilities.
        unemployment: Native prime-age unemployment rate.
        tertiary: Native ED5-8 share at 30 and at 80.
        low: Native ED0-2 share at 30 and at 80.
        income_median: Equivalised income, EUR per year.
        owners: Share of native adults living in an owner-occupied dwelling.
        self_employed: Native self-employment share of the employed at 35-49.
        skill_match: Share of tertiary-educated native workers in ISCO 1-3 jobs.
        oversample: For a survey: how many times more likely a non-EU-born person is to
            be sampled than anyone else (1 for a register).
        sampling_weight: For a survey: the design weight of a person who is not
            over-sampled (1 for a register).
    """

    country: str
    age_knots: tuple[tuple[int, float], ...]
    foreign_born: float
    eu_share: float
    eu_origins: tuple[Origin, ...]
    neu_origins: tuple[Origin, ...]
    foreign_parents: float
    second_generation: float
    naturalise_max: float
    naturalise_wait: int
    stateless: float
    employment: float
    unemployment: float
    tertiary: tuple[float, float]
    low: tuple[float, float]
    income_median: float
    owners: float
    self_employed: float
    skill_match: float
    oversample: float = 1.0
    sampling_weight: float = 1.0


@dataclass(frozen=True)
class Persons:
    """Simulated persons in internal codes, before a city writes them in its format."""

    countries: tuple[str, ...]  # index 0 is the home country; the last entry is "STLS"
    age: IntArray
    female: BoolArray
    birth: IntArray  # index into countries
    birth_group: IntArray  # NAT, EU, NEU
    father: IntArray  # country of birth, index into countries
    mother: IntArray
    foreign_parents: IntArray  # 0, 1 or 2 foreign-born parents
    citizen: IntArray  # index into countries
    citizen_group: IntArray  # NAT, EU, NEU, STLS
    arrival_year: IntArray  # NONE for the native-born
    reason: IntArray  # PROTECTION .. OTHER, NONE for the native-born
    status: IntArray  # EMP, UNE, INAC or NONE (under 15)
    inactive: IntArray  # STUDENT, RETIRED, DISABLED, CARE (meaningful for INAC)
    part_time: BoolArray  # meaningful for EMP
    education: IntArray  # LOW, MID, HIGH or NONE (under 15)
    in_education: IntArray  # 1 in education or training, 0 not, NONE under 15
    owner: BoolArray  # lives in an owner-occupied dwelling
    stapro: IntArray  # SAL .. CFAM, NONE when not employed
    isco: IntArray  # ISCO-08 major group 0..9, NONE when not employed
    income: FloatArray
    weight: FloatArray  # design weight: 1 for a register

    @property
    def size(self) -> int:
        """Number of persons."""
        return int(self.age.size)

    def country_codes(self, index: IntArray) -> ObjectArray:
        """ISO codes (or ``"STLS"``) for an array of country indices; NONE gives None."""
        table: ObjectArray = np.array([*self.countries, None], dtype=object)
        return table[index]


def interp(x: IntArray | FloatArray, knots: Sequence[tuple[int, float]]) -> FloatArray:
    """Piecewise-linear interpolation through ``knots`` (flat beyond the ends)."""
    xs = np.array([k for k, _ in knots], dtype=np.float64)
    ys = np.array([v for _, v in knots], dtype=np.float64)
    out: FloatArray = np.interp(x.astype(np.float64), xs, ys)
    return out


def detail(
    rng: np.random.Generator, group: IntArray, options: Sequence[Sequence[tuple[int, float]]]
) -> IntArray:
    """Spread each group code over finer codes with the given weights; -1 stays -1."""
    draw = rng.random(group.size)
    out = np.full(group.size, NONE, dtype=np.int64)
    for code, choices in enumerate(options):
        mask = group == code
        weights = np.cumsum([w for _, w in choices])
        codes = np.array([c for c, _ in choices], dtype=np.int64)
        picked = np.searchsorted(weights / weights[-1], draw[mask], side="right")
        out[mask] = codes[np.minimum(picked, codes.size - 1)]
    return out


def _at(age: IntArray, knots: Sequence[tuple[int, float]]) -> FloatArray:
    """`interp` at whole ages 0..MAX_AGE: interpolate once per age, then look up."""
    table = interp(np.arange(MAX_AGE + 1), knots)
    out: FloatArray = table[age]
    return out


def _choice(rng: np.random.Generator, weights: FloatArray, size: int) -> IntArray:
    drawn = rng.choice(weights.size, size=size, p=weights / weights.sum())
    return np.asarray(drawn, dtype=np.int64)


def simulate(d: Demography, n: int, rng: np.random.Generator) -> Persons:
    """Draw ``n`` persons of one city (a sample with design weights for a survey).

    The stages below run in this order and draw from ``rng`` in turn: the order is part
    of the output (the same seed gives the same persons), so a new stage goes last.
    """
    world = _Countries.of(d)
    born = _births(d, world, n, rng)
    moved = _migration(world, born, rng)
    parents = _parents(d, world, born, rng)
    citizen = _citizenship(d, world, born, moved, parents, rng)
    education = _education(d, born, moved, parents, rng)
    status = _labour_status(d, born, moved, parents, education, rng)
    inactive, part_time = _inactivity(born, moved, rng)
    in_education = _in_education(born, education, status, inactive, rng)
    stapro, isco = _job(d, world, born, moved, education, status, rng)
    log_income = _log_income(d, born, moved, education, status, inactive, rng)
    owner = _tenure(d, born, moved, log_income, rng)
    return Persons(
        countries=world.countries,
        age=born.age,
        female=born.female,
        birth=born.birth,
        birth_group=np.asarray(world.group_of[born.birth], dtype=np.int64),
        father=parents.father,
        mother=parents.mother,
        foreign_parents=parents.foreign_parents.astype(np.int64),
        citizen=citizen,
        citizen_group=np.asarray(world.group_of[citizen], dtype=np.int64),
        arrival_year=moved.arrival_year,
        reason=moved.reason,
        status=status,
        inactive=inactive,
        part_time=part_time,
        education=education,
        in_education=in_education,
        owner=owner,
        stapro=stapro,
        isco=isco,
        income=np.round(np.exp(log_income), 2).astype(np.float64, copy=False),
        weight=np.round(born.weight, 3).astype(np.float64),
    )


@dataclass(frozen=True)
class _Countries:
    """The countries of one city: home first, then its origins, then stateless."""

    countries: tuple[str, ...]
    group_of: IntArray  # NAT, EU, NEU or STLS per country
    earliest: IntArray  # first plausible arrival year per country
    eu_weights: FloatArray
    neu_weights: FloatArray
    any_origin: FloatArray  # weight of every origin among all the foreign-born
    old: BoolArray  # per origin: its migration history starts by 1995

    @staticmethod
    def of(d: Demography) -> _Countries:
        """The countries of a city's demography."""
        origins = d.eu_origins + d.neu_origins
        n_eu = len(d.eu_origins)
        eu_weights = np.array([o.weight for o in d.eu_origins])
        neu_weights = np.array([o.weight for o in d.neu_origins])
        return _Countries(
            countries=(d.country, *(o.code for o in origins), "STLS"),
            group_of=np.array([NAT] + [EU] * n_eu + [NEU] * len(d.neu_origins) + [STLS]),
            earliest=np.array([REFERENCE_YEAR, *(o.since for o in origins), REFERENCE_YEAR]),
            eu_weights=eu_weights,
            neu_weights=neu_weights,
            any_origin=np.concatenate([eu_weights * d.eu_share, neu_weights * (1.0 - d.eu_share)]),
            old=np.array([o.since <= 1995 for o in origins]),
        )


@dataclass(frozen=True)
class _Born:
    """Age, sex and country of birth, and the survey's design weight."""

    age: IntArray
    female: BoolArray
    birth: IntArray  # index into the countries
    eu_born: BoolArray
    neu_born: BoolArray
    foreign: BoolArray
    weight: FloatArray

    @property
    def adult(self) -> BoolArray:
        """Aged 15 or more: education and labour status are recorded."""
        out: BoolArray = self.age >= 15
        return out


def _births(d: Demography, world: _Countries, n: int, rng: np.random.Generator) -> _Born:
    """Age, sex and country of birth; a survey over-samples the non-EU-born by age."""
    ages = np.arange(MAX_AGE + 1, dtype=np.int64)
    density = interp(ages, d.age_knots)
    density /= density.sum()
    shape = interp(ages, _FOREIGN_AGE_SHAPE)
    p_foreign = np.minimum(shape * d.foreign_born / float(density @ shape), 0.95)
    p_neu = p_foreign * (1.0 - d.eu_share)
    boost = 1.0 + (d.oversample - 1.0) * p_neu
    age = _choice(rng, density * boost, n)
    female: BoolArray = rng.random(n) < 0.49 + 0.14 * np.clip((age - 55) / 40, 0.0, 1.0)
    p_eu_sampled = (p_foreign * d.eu_share / boost)[age]
    p_neu_sampled = (d.oversample * p_neu / boost)[age]
    draw = rng.random(n)
    eu_born: BoolArray = draw < p_eu_sampled
    neu_born: BoolArray = ~eu_born & (draw < p_eu_sampled + p_neu_sampled)
    birth = np.zeros(n, dtype=np.int64)
    n_eu = len(d.eu_origins)
    birth[eu_born] = 1 + _choice(rng, world.eu_weights, int(eu_born.sum()))
    birth[neu_born] = 1 + n_eu + _choice(rng, world.neu_weights, int(neu_born.sum()))
    weight = np.where(neu_born, d.sampling_weight / d.oversample, d.sampling_weight)
    if d.sampling_weight != 1.0:  # non-response adjustment around the design weight
        weight = weight * np.clip(rng.lognormal(0.0, 0.2, n), 0.6, 1.7)
    return _Born(age, female, birth, eu_born, neu_born, eu_born | neu_born, weight)


@dataclass(frozen=True)
class _Moved:
    """When and why the foreign-born came, and how far they have settled since."""

    years: FloatArray  # years since arrival; 0 for the native-born
    arrival_year: IntArray  # NONE for the native-born
    arrived_adult: BoolArray
    reason: IntArray  # PROTECTION .. OTHER, NONE for the native-born
    refugee: BoolArray
    settled: FloatArray  # integration of the non-EU-born: 0 on arrival, towards 1


def _migration(world: _Countries, born: _Born, rng: np.random.Generator) -> _Moved:
    """Years since arrival, then the reason for migration."""
    n, age, foreign = born.age.size, born.age, born.foreign
    # A fifth arrived as children, the rest as young adults; never before birth, never
    # before the origin's migration history starts.
    as_child = rng.random(n) < 0.18
    arrival_age = np.where(as_child, rng.uniform(0.0, 18.0, n), 18.0 + rng.gamma(2.0, 5.5, n))
    years = age - np.floor(arrival_age)
    years = np.where(years < 0, np.floor(rng.random(n) * (age + 1)), years)
    cap = (REFERENCE_YEAR - world.earliest)[born.birth].astype(np.float64)
    years = np.where(years > cap, np.floor(rng.random(n) * (cap + 1)), years)
    years = np.where(foreign, years, 0.0)
    arrived_adult = foreign & (age - years >= 18)
    arrival_year = np.where(foreign, REFERENCE_YEAR - years, NONE).astype(np.int64)
    # Integration of non-EU-born people: 0 on arrival, towards 1 after ~15 years.
    settled = np.where(born.neu_born, 1.0 - np.exp(-years / 6.0), 1.0)

    # Reason for migration: protection by origin (Ukrainians from 2022), else by age.
    shares = zip(world.countries, world.group_of, strict=True)
    refugee_share = np.array([_REFUGEES.get(c, 0.0) if g == NEU else 0.0 for c, g in shares])
    p_protection = refugee_share[born.birth]
    ukraine = np.array([c == "UA" for c in world.countries])[born.birth] & (arrival_year >= 2022)
    p_protection = np.where(ukraine, 0.9, p_protection)
    others = np.where(
        arrived_adult[:, None],
        np.where(born.eu_born[:, None], [[0.25, 0.50, 0.15, 0.10]], [[0.45, 0.28, 0.14, 0.13]]),
        [[0.85, 0.02, 0.05, 0.08]],
    ).cumsum(axis=1)
    other_reason = 1 + (rng.random(n)[:, None] > others[:, :-1]).sum(axis=1)
    refugee = foreign & (rng.random(n) < p_protection)
    reason = np.where(refugee, PROTECTION, other_reason)
    reason = np.where(foreign, reason, NONE).astype(np.int64)
    settled = np.where(refugee, 1.0 - np.exp(-years / 8.0), settled)  # slower into work
    return _Moved(
        years.astype(np.float64, copy=False), arrival_year, arrived_adult, reason, refugee, settled
    )


@dataclass(frozen=True)
class _Parents:
    """The parents' countries of birth (indices into the countries)."""

    father: IntArray
    mother: IntArray
    foreign_parents: IntArray  # 0, 1 or 2 foreign-born parents
    with_foreign_parents: BoolArray  # native-born with a foreign-born parent
    p_parents: FloatArray  # the chance of that, by age
    parent_origin: IntArray  # the (first) foreign-born parent's country


def _parents(d: Demography, world: _Countries, born: _Born, rng: np.random.Generator) -> _Parents:
    """The parents' countries of birth.

    The foreign-born have foreign-born parents (mostly from their own country); some
    native-born have one or two foreign-born parents.
    """
    n, age, foreign, any_origin = born.age.size, born.age, born.foreign, world.any_origin
    parent_origin = np.where(
        age < 10,
        1 + _choice(rng, any_origin, n),
        1 + _choice(rng, any_origin * np.where(world.old, 1.0, 0.15), n),
    )
    p_parents = d.foreign_parents * _at(
        age, ((0, 1.0), (17, 1.0), (30, 0.7), (45, 0.45), (65, 0.2), (99, 0.1))
    )
    with_foreign_parents = ~foreign & (rng.random(n) < p_parents)
    two = with_foreign_parents & (rng.random(n) < 0.6)
    foreign_parents = np.where(two, 2, with_foreign_parents.astype(np.int64))
    second_parent = np.where(rng.random(n) < 0.75, parent_origin, 1 + _choice(rng, any_origin, n))
    father_first = rng.random(n) < 0.5
    first = np.where(foreign, born.birth, np.where(with_foreign_parents, parent_origin, 0))
    other = np.where(foreign | two, np.where(foreign, born.birth, second_parent), 0)
    other = np.where(foreign & (rng.random(n) < 0.05), second_parent, other)
    father = np.where(father_first, first, other).astype(np.int64)
    mother = np.where(father_first, other, first).astype(np.int64)
    return _Parents(father, mother, foreign_parents, with_foreign_parents, p_parents, parent_origin)


def _citizenship(
    d: Demography,
    world: _Countries,
    born: _Born,
    moved: _Moved,
    parents: _Parents,
    rng: np.random.Generator,
) -> IntArray:
    """Citizenship, an index into the countries.

    Naturalisation after a waiting time, rare for EU citizens; otherwise the birth
    country, sometimes another one, sometimes none; some native-born children of
    foreign-born parents keep a parent's citizenship.
    """
    n, foreign, years = born.age.size, born.foreign, moved.years
    p_natural = d.naturalise_max * (1.0 - np.exp(-np.maximum(years - d.naturalise_wait, 0) / 8))
    p_natural = np.where(
        foreign & ~moved.arrived_adult, np.minimum(p_natural * 1.3, 0.95), p_natural
    )
    p_natural = np.where(born.eu_born, p_natural * 0.35, p_natural)
    naturalised = foreign & (rng.random(n) < p_natural)
    p_second = d.second_generation * _at(born.age, ((0, 1.4), (18, 1.1), (45, 0.0)))
    second = parents.with_foreign_parents & (
        rng.random(n) < p_second / np.maximum(parents.p_parents, 1e-9)
    )
    citizen = np.where(foreign & ~naturalised, born.birth, 0)
    switch = foreign & ~naturalised & (rng.random(n) < 0.05)
    citizen = np.where(switch, 1 + _choice(rng, world.any_origin, n), citizen)
    citizen = np.where(second, parents.parent_origin, citizen)
    no_state = foreign & ~naturalised & born.neu_born & (rng.random(n) < d.stateless)
    out: IntArray = np.where(no_state, len(world.countries) - 1, citizen).astype(np.int64)
    return out


def _education(
    d: Demography, born: _Born, moved: _Moved, parents: _Parents, rng: np.random.Generator
) -> IntArray:
    """Education (ISCED groups) from 15, by birth cohort, then by origin."""
    age, eu_born, neu_born = born.age, born.eu_born, born.neu_born
    arrived_adult = moved.arrived_adult
    low_young, low_old = d.low
    high_young, high_old = d.tertiary
    p_low = _at(
        age, ((15, 0.95), (18, 0.8), (20, 0.25), (25, low_young), (30, low_young), (80, low_old))
    )
    p_high = interp(
        age,
        ((15, 0.0), (20, 0.02), (23, 0.2), (27, 0.95 * high_young), (30, high_young),
         (80, high_old)),
    )  # fmt: skip
    p_low, p_high = np.clip(p_low, 0.0, 0.98), np.clip(p_high, 0.0, 0.98)
    child_arrival = born.foreign & ~arrived_adult
    p_low = np.where(eu_born & arrived_adult, p_low + 0.03, p_low)
    p_high = np.where(eu_born & arrived_adult, p_high + 0.04, p_high)
    p_low = np.where(neu_born & arrived_adult, np.minimum(p_low + 0.30, 0.75), p_low)
    p_high = np.where(neu_born & arrived_adult, 0.6 * p_high, p_high)
    behind = np.where(child_arrival, 1.0, parents.foreign_parents / 2.0)
    p_low = p_low + 0.08 * behind
    p_high = np.maximum(p_high - 0.06 * behind, 0.0)
    total = p_low + p_high
    squeeze = np.where(total > 0.98, 0.98 / np.maximum(total, 1e-9), 1.0)
    p_low, p_high = p_low * squeeze, p_high * squeeze
    draw = rng.random(age.size)
    education = np.where(draw < p_low, LOW, np.where(draw > 1.0 - p_high, HIGH, MID))
    out: IntArray = np.where(born.adult, education, NONE).astype(np.int64)
    return out


def _labour_status(
    d: Demography,
    born: _Born,
    moved: _Moved,
    parents: _Parents,
    education: IntArray,
    rng: np.random.Generator,
) -> IntArray:
    """ILO labour status from 15: EMP, UNE or INAC."""
    age, female, eu_born, neu_born = born.age, born.female, born.eu_born, born.neu_born
    settled = moved.settled
    edu_factor = np.array([0.78, 1.0, 1.08, 1.0])[education]  # index -1: not used
    native_factor = 1.0 - 0.03 * parents.foreign_parents
    origin_factor = np.where(
        neu_born,
        (0.68 + 0.24 * settled) * np.where(female, 0.76 + 0.16 * settled, 1.0),
        np.where(eu_born, 0.92, native_factor),
    )
    origin_factor = np.where(
        born.foreign & (moved.reason == WORK), origin_factor * 1.1, origin_factor
    )
    p_emp = _at(age, _EMPLOYMENT_BY_AGE) * np.where(female, 0.94, 1.0)
    p_emp = np.minimum(p_emp * edu_factor * origin_factor * d.employment, 0.97)
    une = d.unemployment * _at(
        age, ((15, 2.2), (24, 2.0), (25, 1.0), (54, 1.0), (55, 0.9), (64, 0.9), (65, 0.2))
    )
    une = une * np.array([1.6, 1.0, 0.6, 1.0])[education]
    une = une * np.where(neu_born, 1.6 + 1.6 * (1.0 - settled), np.where(eu_born, 1.3, 1.0))
    une = np.clip(une, 0.0, 0.5)
    p_une = np.minimum(p_emp * une / (1.0 - une), 0.99 - p_emp)
    draw = rng.random(age.size)
    status = np.where(draw < p_emp, EMP, np.where(draw < p_emp + p_une, UNE, INAC))
    out: IntArray = np.where(born.adult, status, NONE).astype(np.int64)
    return out


def _inactivity(born: _Born, moved: _Moved, rng: np.random.Generator) -> tuple[IntArray, BoolArray]:
    """Detail kept by local registers: kind of inactivity, part-time work."""
    n, age, female = born.age.size, born.age, born.female
    p_student = _at(age, ((15, 0.97), (19, 0.9), (24, 0.6), (30, 0.25), (40, 0.05)))
    studies = born.foreign & (moved.reason == STUDY) & (moved.years < 6)
    p_student = np.where(studies, 0.9, p_student)
    p_retired = _at(age, ((50, 0.05), (60, 0.45), (65, 0.9), (70, 0.98)))
    p_care = np.where(female, np.where(born.neu_born, 0.75, 0.55), 0.25)
    draw, care_draw = rng.random(n), rng.random(n)
    inactive = np.where(
        draw < p_student,
        STUDENT,
        np.where(
            draw < p_student + (1.0 - p_student) * p_retired,
            RETIRED,
            np.where(care_draw < p_care, CARE, DISABLED),
        ),
    ).astype(np.int64)
    part_time: BoolArray = rng.random(n) < np.where(female, 0.45, 0.12)
    return inactive, part_time


def _in_education(
    born: _Born,
    education: IntArray,
    status: IntArray,
    inactive: IntArray,
    rng: np.random.Generator,
) -> IntArray:
    """In education or training in the last 4 weeks: 1, 0, or NONE under 15.

    School until upper secondary is done, then tertiary studies, then some adult
    training; students are in education by definition.
    """
    age = born.age
    p_educ = np.select(
        [education == LOW, education == MID],
        [
            _at(age, ((15, 0.98), (17, 0.95), (18, 0.88), (19, 0.8), (20, 0.6), (21, 0.3),
                         (30, 0.06), (60, 0.03), (70, 0.01))),
            _at(age, ((15, 0.95), (18, 0.8), (20, 0.62), (23, 0.45), (26, 0.25),
                         (29, 0.12), (40, 0.08), (60, 0.05), (70, 0.01))),
        ],
        _at(age, ((20, 0.6), (23, 0.5), (26, 0.3), (30, 0.13), (40, 0.1), (60, 0.07),
                     (70, 0.02))),
    )  # fmt: skip
    p_educ = p_educ * np.select([status == EMP, status == UNE], [0.8, 0.7], 0.4)
    studying = (status == INAC) & (inactive == STUDENT)
    in_education = np.where(studying | (rng.random(age.size) < p_educ), 1, 0)
    out: IntArray = np.where(born.adult, in_education, NONE).astype(np.int64)
    return out


def _job(
    d: Demography,
    world: _Countries,
    born: _Born,
    moved: _Moved,
    education: IntArray,
    status: IntArray,
    rng: np.random.Generator,
) -> tuple[IntArray, IntArray]:
    """Status in employment and occupation (ISCO-08 major group) of the employed."""
    n, age, neu_born, eu_born = born.age.size, born.age, born.neu_born, born.eu_born
    arrived_adult, settled = moved.arrived_adult, moved.settled
    employed = status == EMP
    code_of = np.array(world.countries)
    p_self = d.self_employed * _at(
        age, ((15, 0.3), (25, 0.55), (35, 0.9), (50, 1.2), (64, 1.5), (75, 2.5))
    )
    p_self = p_self * np.where(born.female, 0.7, 1.3) * np.where(education == HIGH, 1.15, 1.0)
    entrepreneurial = np.isin(code_of[born.birth], list(_ENTREPRENEURS)) & born.foreign
    p_self = p_self * np.where(entrepreneurial, 1.5, np.where(neu_born, 0.85, 1.0))
    p_self = np.where(moved.refugee & (moved.years < 5), p_self * 0.5, p_self)
    draw = rng.random(n)
    stapro = np.where(
        draw < 0.004,
        CFAM,
        np.where(draw < 0.004 + p_self, np.where(rng.random(n) < 0.3, SELF_EMPLOYER, SELF_ALONE),
                 SAL),
    )  # fmt: skip
    stapro = np.where(employed, stapro, NONE).astype(np.int64)
    p_match = np.where(
        neu_born & arrived_adult,
        d.skill_match * (0.55 + 0.25 * settled),
        np.where(eu_born & arrived_adult, d.skill_match * 0.88, d.skill_match),
    )
    matched = rng.random(n) < p_match
    job_kind = np.where(education == HIGH, np.where(matched, 2, 3), education)
    isco = detail(rng, np.where(employed, job_kind, NONE), _OCCUPATIONS)
    isco = np.where(employed & (rng.random(n) < 0.003), 0, isco).astype(np.int64)
    return stapro, isco


def _log_income(
    d: Demography,
    born: _Born,
    moved: _Moved,
    education: IntArray,
    status: IntArray,
    inactive: IntArray,
    rng: np.random.Generator,
) -> FloatArray:
    """The log of equivalised disposable income."""
    neu_born, settled = born.neu_born, moved.settled
    inactive_factor = np.array([0.7, 0.95, 0.75, 0.7])[inactive]
    status_factor = np.where(
        status == EMP,
        1.12,
        np.where(status == UNE, 0.55, np.where(status == INAC, inactive_factor, 0.85)),
    )
    log_income: FloatArray = (
        np.log(d.income_median)
        + np.log(status_factor)
        + np.log(np.array([0.8, 1.0, 1.3, 1.0])[education])
        + np.log(np.where(neu_born, 0.7 + 0.2 * settled, np.where(born.eu_born, 0.95, 1.0)))
        + rng.normal(0.0, 0.42, born.age.size)
    )
    return log_income


def _tenure(
    d: Demography, born: _Born, moved: _Moved, log_income: FloatArray, rng: np.random.Generator
) -> BoolArray:
    """Owners are older, richer and long settled."""
    age, neu_born, settled = born.age, born.neu_born, moved.settled
    logit = (
        np.log(d.owners / (1.0 - d.owners))
        + 0.03 * (np.clip(np.where(age < 18, 40, age), 18, 75) - 45)
        + 0.8 * (log_income - np.log(d.income_median))
        - np.where(neu_born, 0.6 + 1.4 * (1.0 - settled), np.where(born.eu_born, 0.5, 0.0))
    )
    owner: BoolArray = rng.random(age.size) < 1.0 / (1.0 + np.exp(-logit))
    return owner

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
    """Draw ``n`` persons of one city (a sample with design weights for a survey)."""
    origins = d.eu_origins + d.neu_origins
    countries = (d.country, *(o.code for o in origins), "STLS")
    n_eu = len(d.eu_origins)
    group_of = np.array([NAT] + [EU] * n_eu + [NEU] * len(d.neu_origins) + [STLS])
    earliest = np.array([REFERENCE_YEAR, *(o.since for o in origins), REFERENCE_YEAR])

    # Age, sex and country of birth; a survey over-samples the non-EU-born by age.
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
    foreign = eu_born | neu_born
    birth = np.zeros(n, dtype=np.int64)
    eu_weights = np.array([o.weight for o in d.eu_origins])
    neu_weights = np.array([o.weight for o in d.neu_origins])
    birth[eu_born] = 1 + _choice(rng, eu_weights, int(eu_born.sum()))
    birth[neu_born] = 1 + n_eu + _choice(rng, neu_weights, int(neu_born.sum()))
    weight = np.where(neu_born, d.sampling_weight / d.oversample, d.sampling_weight)
    if d.sampling_weight != 1.0:  # non-response adjustment around the design weight
        weight = weight * np.clip(rng.lognormal(0.0, 0.2, n), 0.6, 1.7)

    # Years since arrival: a fifth arrived as children, the rest as young adults; never
    # before birth, never before the origin's migration history starts.
    as_child = rng.random(n) < 0.18
    arrival_age = np.where(as_child, rng.uniform(0.0, 18.0, n), 18.0 + rng.gamma(2.0, 5.5, n))
    years = age - np.floor(arrival_age)
    years = np.where(years < 0, np.floor(rng.random(n) * (age + 1)), years)
    cap = (REFERENCE_YEAR - earliest)[birth].astype(np.float64)
    years = np.where(years > cap, np.floor(rng.random(n) * (cap + 1)), years)
    years = np.where(foreign, years, 0.0)
    arrived_adult = foreign & (age - years >= 18)
    arrival_year = np.where(foreign, REFERENCE_YEAR - years, NONE).astype(np.int64)
    # Integration of non-EU-born people: 0 on arrival, towards 1 after ~15 years.
    settled = np.where(neu_born, 1.0 - np.exp(-years / 6.0), 1.0)

    # Reason for migration: protection by origin (Ukrainians from 2022), else by age.
    refugee_share = np.array([_REFUGEES.get(c, 0.0) if g == NEU else 0.0
                              for c, g in zip(countries, group_of, strict=True)])  # fmt: skip
    p_protection = refugee_share[birth]
    ukraine = np.array([c == "UA" for c in countries])[birth] & (arrival_year >= 2022)
    p_protection = np.where(ukraine, 0.9, p_protection)
    others = np.where(
        arrived_adult[:, None],
        np.where(eu_born[:, None], [[0.25, 0.50, 0.15, 0.10]], [[0.45, 0.28, 0.14, 0.13]]),
        [[0.85, 0.02, 0.05, 0.08]],
    ).cumsum(axis=1)
    other_reason = 1 + (rng.random(n)[:, None] > others[:, :-1]).sum(axis=1)
    refugee = foreign & (rng.random(n) < p_protection)
    reason = np.where(refugee, PROTECTION, other_reason)
    reason = np.where(foreign, reason, NONE).astype(np.int64)
    settled = np.where(refugee, 1.0 - np.exp(-years / 8.0), settled)  # slower into work

    # Parents' countries of birth: the foreign-born have foreign-born parents (mostly from
    # their own country); some native-born have one or two foreign-born parents.
    any_origin = np.concatenate([eu_weights * d.eu_share, neu_weights * (1.0 - d.eu_share)])
    old = np.array([o.since <= 1995 for o in origins])
    parent_origin = np.where(
        age < 10,
        1 + _choice(rng, any_origin, n),
        1 + _choice(rng, any_origin * np.where(old, 1.0, 0.15), n),
    )
    p_parents = d.foreign_parents * _at(
        age, ((0, 1.0), (17, 1.0), (30, 0.7), (45, 0.45), (65, 0.2), (99, 0.1))
    )
    with_foreign_parents = ~foreign & (rng.random(n) < p_parents)
    two = with_foreign_parents & (rng.random(n) < 0.6)
    foreign_parents = np.where(two, 2, with_foreign_parents.astype(np.int64))
    second_parent = np.where(rng.random(n) < 0.75, parent_origin, 1 + _choice(rng, any_origin, n))
    father_first = rng.random(n) < 0.5
    first = np.where(foreign, birth, np.where(with_foreign_parents, parent_origin, 0))
    other = np.where(foreign | two, np.where(foreign, birth, second_parent), 0)
    other = np.where(foreign & (rng.random(n) < 0.05), second_parent, other)
    father = np.where(father_first, first, other).astype(np.int64)
    mother = np.where(father_first, other, first).astype(np.int64)

    # Citizenship: naturalisation after a waiting time, rare for EU citizens; otherwise the
    # birth country, sometimes another one, sometimes none; some native-born children of
    # foreign-born parents keep a parent's citizenship.
    p_natural = d.naturalise_max * (1.0 - np.exp(-np.maximum(years - d.naturalise_wait, 0) / 8))
    p_natural = np.where(foreign & ~arrived_adult, np.minimum(p_natural * 1.3, 0.95), p_natural)
    p_natural = np.where(eu_born, p_natural * 0.35, p_natural)
    naturalised = foreign & (rng.random(n) < p_natural)
    p_second = d.second_generation * _at(age, ((0, 1.4), (18, 1.1), (45, 0.0)))
    second = with_foreign_parents & (rng.random(n) < p_second / np.maximum(p_parents, 1e-9))
    citizen = np.where(foreign & ~naturalised, birth, 0)
    switch = foreign & ~naturalised & (rng.random(n) < 0.05)
    citizen = np.where(switch, 1 + _choice(rng, any_origin, n), citizen)
    citizen = np.where(second, parent_origin, citizen)
    no_state = foreign & ~naturalised & neu_born & (rng.random(n) < d.stateless)
    citizen = np.where(no_state, len(countries) - 1, citizen).astype(np.int64)

    # Education (ISCED groups) from 15, by birth cohort, then by origin.
    adult = age >= 15
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
    child_arrival = foreign & ~arrived_adult
    p_low = np.where(eu_born & arrived_adult, p_low + 0.03, p_low)
    p_high = np.where(eu_born & arrived_adult, p_high + 0.04, p_high)
    p_low = np.where(neu_born & arrived_adult, np.minimum(p_low + 0.30, 0.75), p_low)
    p_high = np.where(neu_born & arrived_adult, 0.6 * p_high, p_high)
    behind = np.where(child_arrival, 1.0, foreign_parents / 2.0)
    p_low = p_low + 0.08 * behind
    p_high = np.maximum(p_high - 0.06 * behind, 0.0)
    total = p_low + p_high
    squeeze = np.where(total > 0.98, 0.98 / np.maximum(total, 1e-9), 1.0)
    p_low, p_high = p_low * squeeze, p_high * squeeze
    draw = rng.random(n)
    education = np.where(draw < p_low, LOW, np.where(draw > 1.0 - p_high, HIGH, MID))
    education = np.where(adult, education, NONE).astype(np.int64)

    # Labour status from 15.
    edu_factor = np.array([0.78, 1.0, 1.08, 1.0])[education]  # index -1: not used
    native_factor = 1.0 - 0.03 * foreign_parents
    origin_factor = np.where(
        neu_born,
        (0.68 + 0.24 * settled) * np.where(female, 0.76 + 0.16 * settled, 1.0),
        np.where(eu_born, 0.92, native_factor),
    )
    origin_factor = np.where(foreign & (reason == WORK), origin_factor * 1.1, origin_factor)
    p_emp = _at(age, _EMPLOYMENT_BY_AGE) * np.where(female, 0.94, 1.0)
    p_emp = np.minimum(p_emp * edu_factor * origin_factor * d.employment, 0.97)
    une = d.unemployment * _at(
        age, ((15, 2.2), (24, 2.0), (25, 1.0), (54, 1.0), (55, 0.9), (64, 0.9), (65, 0.2))
    )
    une = une * np.array([1.6, 1.0, 0.6, 1.0])[education]
    une = une * np.where(neu_born, 1.6 + 1.6 * (1.0 - settled), np.where(eu_born, 1.3, 1.0))
    une = np.clip(une, 0.0, 0.5)
    p_une = np.minimum(p_emp * une / (1.0 - une), 0.99 - p_emp)
    draw = rng.random(n)
    status = np.where(draw < p_emp, EMP, np.where(draw < p_emp + p_une, UNE, INAC))
    status = np.where(adult, status, NONE).astype(np.int64)

    # Detail kept by local registers: kind of inactivity, part-time work.
    p_student = _at(age, ((15, 0.97), (19, 0.9), (24, 0.6), (30, 0.25), (40, 0.05)))
    p_student = np.where(foreign & (reason == STUDY) & (years < 6), 0.9, p_student)
    p_retired = _at(age, ((50, 0.05), (60, 0.45), (65, 0.9), (70, 0.98)))
    p_care = np.where(female, np.where(neu_born, 0.75, 0.55), 0.25)
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

    # In education or training (last 4 weeks): school until upper secondary is done, then
    # tertiary studies, then some adult training; students are in education by definition.
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
    in_education = np.where(studying | (rng.random(n) < p_educ), 1, 0)
    in_education = np.where(adult, in_education, NONE).astype(np.int64)

    # Status in employment and occupation of the employed.
    employed = status == EMP
    code_of = np.array(countries)
    p_self = d.self_employed * _at(
        age, ((15, 0.3), (25, 0.55), (35, 0.9), (50, 1.2), (64, 1.5), (75, 2.5))
    )
    p_self = p_self * np.where(female, 0.7, 1.3) * np.where(education == HIGH, 1.15, 1.0)
    entrepreneurial = np.isin(code_of[birth], list(_ENTREPRENEURS)) & foreign
    p_self = p_self * np.where(entrepreneurial, 1.5, np.where(neu_born, 0.85, 1.0))
    p_self = np.where(refugee & (years < 5), p_self * 0.5, p_self)
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

    # Equivalised disposable income.
    inactive_factor = np.array([0.7, 0.95, 0.75, 0.7])[inactive]
    status_factor = np.where(
        employed,
        1.12,
        np.where(status == UNE, 0.55, np.where(status == INAC, inactive_factor, 0.85)),
    )
    log_income = (
        np.log(d.income_median)
        + np.log(status_factor)
        + np.log(np.array([0.8, 1.0, 1.3, 1.0])[education])
        + np.log(np.where(neu_born, 0.7 + 0.2 * settled, np.where(eu_born, 0.95, 1.0)))
        + rng.normal(0.0, 0.42, n)
    )
    income = np.round(np.exp(log_income), 2)

    # Tenure: owners are older, richer and long settled.
    logit = (
        np.log(d.owners / (1.0 - d.owners))
        + 0.03 * (np.clip(np.where(age < 18, 40, age), 18, 75) - 45)
        + 0.8 * (log_income - np.log(d.income_median))
        - np.where(neu_born, 0.6 + 1.4 * (1.0 - settled), np.where(eu_born, 0.5, 0.0))
    )
    owner: BoolArray = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))

    return Persons(
        countries=countries,
        age=age,
        female=female,
        birth=birth,
        birth_group=np.asarray(group_of[birth], dtype=np.int64),
        father=father,
        mother=mother,
        foreign_parents=foreign_parents.astype(np.int64),
        citizen=citizen,
        citizen_group=np.asarray(group_of[citizen], dtype=np.int64),
        arrival_year=arrival_year,
        reason=reason,
        status=status,
        inactive=inactive,
        part_time=part_time,
        education=education,
        in_education=in_education,
        owner=owner,
        stapro=stapro,
        isco=isco,
        income=income,
        weight=np.round(weight, 3).astype(np.float64),
    )

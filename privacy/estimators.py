"""Rates, gaps and their confidence intervals from noisy cells (delta method).

An estimate is a ratio of two sums of cells, ``r = (a . x) / (b . x)``, where ``x`` is a
vector of noisy cells (one node's table, or several nodes' tables side by side) and
``a``, ``b`` are 0/1 selectors. Its linearised variance is ``sum_i g_i^2 v_i`` with the
gradient ``g = (a - r b) / (b . x)`` and ``v_i`` each cell's variance: the DP noise
variance, plus for survey cells the sampling variance of a weighted total,
``deff * x_i^2 / n_i`` (``n_i`` the noisy sample count). A gap between two ratios on the
same cells uses the difference of gradients, so shared cells (a group inside ``TOTAL``,
a node inside the pooled value) are accounted for exactly.

Rates get a score-type interval (`rate_interval`) rather than ``value +- z se``: the
delta method's variance is evaluated at every candidate rate ``p`` instead of at the
estimate, the sampling part as ``deff p (1 - p) / n`` (the binomial form the delta method
gives at ``p``), so the interval neither collapses at 0% or 100% nor leaves [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

__all__ = [
    "Z95",
    "Cells",
    "Estimate",
    "Linear",
    "RateSums",
    "RateTerms",
    "below_linear",
    "difference",
    "difference_interval",
    "difference_intervals",
    "gradient_variance",
    "pow2",
    "quantile_linear",
    "rate_bounds",
    "rate_interval",
    "rate_intervals",
    "rate_terms",
    "ratio",
    "ratio_linear",
    "ratio_rows",
    "sampling_term",
    "score_bounds",
    "selected_sums",
    "selections_sums",
    "total_linear",
]

Z95 = 1.959963984540054
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class Cells:
    """Noisy cells with the variance of each.

    Attributes:
        values: Noisy cell totals.
        variance: Variance of each cell's error (noise plus sampling).
        samples: Noisy unweighted counts of each cell (equal to ``values`` for registers).
        noise: Variance of each cell's DP noise alone (None: all of ``variance``).
        design_effect: Each cell's design effect: 0 for a register (no sampling error).
        sample_noise: Variance of each sample count's DP noise (None: ``noise_variance``,
            the samples being the values themselves).
    """

    values: FloatArray
    variance: FloatArray
    samples: FloatArray
    noise: FloatArray | None = None
    design_effect: FloatArray | None = None
    sample_noise: FloatArray | None = None

    @property
    def sample_noise_variance(self) -> FloatArray:
        """Variance of each sample count's DP noise."""
        return self.noise_variance if self.sample_noise is None else self.sample_noise

    @property
    def noise_variance(self) -> FloatArray:
        """Variance of each cell's DP noise."""
        return self.variance if self.noise is None else self.noise

    @property
    def deff(self) -> FloatArray:
        """Each cell's design effect (0 for register cells)."""
        if self.design_effect is None:
            return np.zeros(self.values.shape)
        return self.design_effect

    @classmethod
    def of(
        cls,
        values: npt.ArrayLike,
        sigma: float,
        samples: npt.ArrayLike | None = None,
        sample_sigma: float = 0.0,
        design_effect: float = 1.0,
    ) -> Cells:
        """Cells of one release: noise variance, plus sampling variance for surveys."""
        x = np.asarray(values, dtype=np.float64)
        noise = np.full(x.shape, sigma**2)
        if samples is None:
            return cls(x, noise, x, noise, np.zeros(x.shape))
        n = np.asarray(samples, dtype=np.float64)
        total = np.maximum(x, 0.0)
        var = noise + design_effect * total**2 / np.maximum(n, 1.0)
        return cls(
            x, var, n, noise, np.full(x.shape, design_effect), np.full(x.shape, sample_sigma**2)
        )

    def with_mean_weight(self, mask: BoolArray, weight: float | FloatArray) -> Cells:
        """These cells with the sampling variance of ``mask`` read from one mean weight.

        A survey cell's sampling variance ``deff x^2 / n`` is ``deff w x`` with ``w = x / n``
        its mean weight. For a binned distribution each bin's ``n`` is a small noisy count,
        so ``x / n`` is erratic (and ``1 / n`` overstates on average); the weight of the
        whole population cell, ``weight`` (its weighted total over its low-noise
        observation count), is what every bin of that population shares. ``weight`` may
        also be given per cell (stacked tables, each with its own population's weight).
        """
        variance = self.variance.copy()
        w = weight[mask] if isinstance(weight, np.ndarray) else weight
        variance[mask] = self.noise_variance[mask] + self.deff[mask] * w * np.maximum(
            self.values[mask], 0.0
        )
        return replace(self, variance=variance)

    @staticmethod
    def concat(parts: Sequence[Cells]) -> Cells:
        """Cells of several releases side by side."""
        return Cells._joined(parts, np.concatenate)

    @staticmethod
    def stack(parts: Sequence[Cells]) -> Cells:
        """Cells of one table per release as (releases, cells) arrays."""
        return Cells._joined(parts, np.stack)

    @staticmethod
    def _joined(parts: Sequence[Cells], join: Callable[[list[FloatArray]], FloatArray]) -> Cells:
        return Cells(
            join([p.values for p in parts]),
            join([p.variance for p in parts]),
            join([p.samples for p in parts]),
            join([p.noise_variance for p in parts]),
            join([p.deff for p in parts]),
            join([p.sample_noise_variance for p in parts]),
        )


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error.

    Attributes:
        value: The estimate (a proportion for rates, a difference for gaps).
        se: Standard error from the linearised variance.
        denominator: Noisy denominator total (for rates).
        samples: Noisy sample count of the denominator (for rates).
    """

    value: float
    se: float
    denominator: float = math.nan
    samples: float = math.nan

    def interval(self, z: float = Z95) -> tuple[float, float]:
        """Symmetric normal interval, ``value +- z se``."""
        return self.value - z * self.se, self.value + z * self.se

    @classmethod
    def many(
        cls,
        values: Sequence[float],
        ses: Sequence[float],
        denominators: Sequence[float],
        samples: Sequence[float],
    ) -> list[Estimate]:
        """``Estimate(value, se, denominator, samples)`` of each, made without ``__init__``.

        Each instance's dict is its fields, in order (a 300-city query keeps about 14000;
        the frozen ``__init__`` sets each field through ``object.__setattr__``).
        """
        new, assign = object.__new__, object.__setattr__
        out: list[Estimate] = []
        for value, se, denominator, n in zip(values, ses, denominators, samples, strict=True):
            estimate = new(cls)
            assign(
                estimate,
                "__dict__",
                {"value": value, "se": se, "denominator": denominator, "samples": n},
            )
            out.append(estimate)
        return out


def selected_sums(values: FloatArray, mask: BoolArray) -> FloatArray:
    """Each row's sum of the masked cells of a (rows, cells) array.

    The same sum, bit for bit, as ``row[mask].sum()`` on each row: the selected cells are
    gathered into a C-ordered block first, so each row is summed pairwise on its own.
    """
    block = np.take(values, np.flatnonzero(mask), axis=-1)
    sums: FloatArray = block.sum(axis=-1)
    return sums


def selections_sums(values: FloatArray, selections: Sequence[IntArray]) -> FloatArray:
    """Each selection's `selected_sums`: (selections, rows), from cell positions.

    Selections of as many cells are gathered into one block (rows, selections, cells)
    and summed at once; each row's cells are summed pairwise on their own, as
    `selected_sums` sums them, bit for bit.
    """
    out: FloatArray = np.empty((len(selections), values.shape[0]))
    by_size: dict[int, list[int]] = {}
    for i, at in enumerate(selections):
        by_size.setdefault(at.size, []).append(i)
    for which in by_size.values():
        block = np.take(values, np.stack([selections[i] for i in which]), axis=-1)
        out[which] = block.sum(axis=-1).T
    return out


def ratio_rows(
    values: FloatArray,
    num: BoolArray,
    den: BoolArray,
    sums: tuple[FloatArray, FloatArray] | None = None,
    out: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The ratio of two sums of cells on every row of ``values`` (rows, cells) at once.

    Returns each row's ratio ``r``, denominator ``d`` and gradient ``(num - r den) / d``;
    a row whose denominator is not positive has a ratio and gradient of nan. ``sums``:
    the rows' sums of the ``den`` and the ``num`` cells, if summed already (the same
    `selected_sums`, or `selections_sums` of many selections at once). ``out``: an array
    of ``values``' shape the gradient is written into (else a new one).
    """
    d, n = (selected_sums(values, den), selected_sums(values, num)) if sums is None else sums
    defined = d > 0
    safe = np.where(defined, d, 1.0)
    r = np.where(defined, n / safe, math.nan)
    g = np.empty(values.shape) if out is None else out
    np.multiply(r[..., None], den.astype(np.float64), out=g)
    np.subtract(num.astype(np.float64), g, out=g)
    np.divide(g, safe[..., None], out=g)
    if not defined.all():
        g[~defined] = math.nan
    return r, d, g


def gradient_variance(
    grad: FloatArray, variance: FloatArray, scratch: FloatArray | None = None
) -> FloatArray:
    """``sum(grad^2 x variance)`` over the last axis: a linear estimate's cell variance.

    ``scratch``: an array of ``grad``'s shape to hold the terms (else new ones).
    """
    if scratch is None:
        out: FloatArray = np.sum(grad**2 * variance, axis=-1)
        return out
    terms = np.multiply(np.square(grad, out=scratch), variance, out=scratch)
    out = np.sum(terms, axis=-1)
    return out


def _gradient(cells: Cells, num: BoolArray, den: BoolArray) -> tuple[float, float, FloatArray]:
    r, d, g = ratio_rows(cells.values[None], num, den)
    return float(r[0]), float(d[0]), g[0]


def ratio(cells: Cells, num: BoolArray, den: BoolArray) -> Estimate:
    """The ratio of the numerator cells' sum to the denominator cells' sum."""
    r, d, g = _gradient(cells, num, den)
    se = math.sqrt(float(gradient_variance(g, cells.variance))) if math.isfinite(r) else math.nan
    return Estimate(r, se, d, float(cells.samples[den].sum()))


def difference(
    cells: Cells, first: tuple[BoolArray, BoolArray], second: tuple[BoolArray, BoolArray]
) -> Estimate:
    """The first ratio minus the second, with the covariance of shared cells."""
    r1, _, g1 = _gradient(cells, *first)
    r2, _, g2 = _gradient(cells, *second)
    if not (math.isfinite(r1) and math.isfinite(r2)):
        return Estimate(math.nan, math.nan)
    se = math.sqrt(float(np.sum((g1 - g2) ** 2 * cells.variance)))
    return Estimate(r1 - r2, se)


def difference_interval(
    first: tuple[float, float, float], second: tuple[float, float, float], correlation: float
) -> tuple[float, float]:
    """An interval for a difference from the intervals of its two terms (MOVER).

    The method of variance estimates recovery (Zou and Donner 2008; for two independent
    proportions it is Newcombe's 1998 hybrid score interval): each bound reads the
    distance from each term to the bound of its own interval on the side that moves the
    difference that way, so a term's asymmetric interval (a score interval for a rate on
    a small, noisy denominator) carries its asymmetry into the gap. With symmetric
    ``value +- z se`` intervals it is exactly ``difference +- z se``.

    Args:
        first: ``(value, low, high)`` of the first term.
        second: ``(value, low, high)`` of the term subtracted.
        correlation: The two estimates' correlation (from the delta method).
    """
    low, high = difference_intervals(
        (_one(first[0]), _one(first[1]), _one(first[2])),
        (_one(second[0]), _one(second[1]), _one(second[2])),
        _one(correlation),
    )
    return float(low[0]), float(high[0])


def _one(x: float) -> FloatArray:
    """A number as a one-element array (the scalar forms run the vectorised arithmetic)."""
    return np.array([x], dtype=np.float64)


def difference_intervals(
    first: tuple[FloatArray, FloatArray, FloatArray],
    second: tuple[FloatArray, FloatArray, FloatArray],
    correlation: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """`difference_interval` element-wise, on arrays of values, bounds and correlations."""
    (t1, l1, u1), (t2, l2, u2) = first, second
    down = pow2(t1 - l1) + pow2(u2 - t2) - 2 * correlation * (t1 - l1) * (u2 - t2)
    up = pow2(u1 - t1) + pow2(t2 - l2) - 2 * correlation * (u1 - t1) * (t2 - l2)
    gap = t1 - t2
    return gap - np.sqrt(np.maximum(down, 0.0)), gap + np.sqrt(np.maximum(up, 0.0))


@dataclass(frozen=True)
class Linear:
    """An estimate and its gradient with respect to every cell (the delta method).

    Attributes:
        value: The estimate.
        grad: Its derivative with respect to each cell of the cell vector it reads.
        errors: Errors that no cell carries, each the standard deviation of one source
            (a quantile's position inside its bin) times the estimate's derivative with
            respect to it, by source: a source shared by two estimates (the whole
            population's median in two groups' median ratios) cancels in their gap.
    """

    value: float
    grad: FloatArray
    errors: Mapping[str, float] = field(default_factory=dict)

    def se(self, cells: Cells) -> float:
        """Standard error: sqrt(sum(grad^2 x each cell's variance) + sum(errors^2))."""
        if not math.isfinite(self.value):
            return math.nan
        extra = sum(e * e for e in self.errors.values())
        return math.sqrt(float(gradient_variance(self.grad, cells.variance)) + extra)

    def covariance(self, other: Linear, cells: Cells) -> float:
        """Covariance with another estimate on the same cells (shared error sources too)."""
        shared = sum(e * other.errors[k] for k, e in self.errors.items() if k in other.errors)
        return float(np.sum(self.grad * other.grad * cells.variance)) + shared

    def scaled(self, factor: float) -> Linear:
        """This estimate times a constant."""
        errors = {k: factor * e for k, e in self.errors.items()}
        return Linear(factor * self.value, factor * self.grad, errors)

    def __sub__(self, other: Linear) -> Linear:
        return self + other.scaled(-1.0)

    def __add__(self, other: Linear) -> Linear:
        errors = dict(self.errors)
        for k, e in other.errors.items():
            errors[k] = errors.get(k, 0.0) + e
        return Linear(self.value + other.value, self.grad + other.grad, errors)

    def over(self, other: Linear) -> Linear:
        """This estimate divided by another (a ratio of two estimates)."""
        if not (math.isfinite(other.value) and other.value > 0):
            return Linear(math.nan, np.full(self.grad.shape, math.nan))
        value = self.value / other.value
        return (self - other.scaled(value)).scaled(1.0 / other.value) + Linear(
            value, np.zeros(self.grad.shape)
        )


def ratio_linear(cells: Cells, num: BoolArray, den: BoolArray) -> Linear:
    """The ratio of two sums of cells, as a Linear estimate."""
    r, _, g = _gradient(cells, num, den)
    return Linear(r, g)


def total_linear(cells: Cells, mask: BoolArray) -> Linear:
    """A sum of cells."""
    return Linear(float(cells.values[mask].sum()), mask.astype(np.float64))


def _bin_counts(
    cells: Cells, mask: BoolArray, bin_of_cell: npt.NDArray[np.intp], n_bins: int
) -> FloatArray:
    counts: FloatArray = np.bincount(
        bin_of_cell[mask], weights=cells.values[mask], minlength=n_bins
    ).astype(np.float64)
    return counts


def _spread(
    grad_bins: FloatArray, mask: BoolArray, bin_of_cell: npt.NDArray[np.intp]
) -> FloatArray:
    """A gradient over bins, carried to the cells that make up each bin."""
    return np.where(mask, grad_bins[bin_of_cell], 0.0)


def quantile_linear(
    cells: Cells,
    mask: BoolArray,
    bin_of_cell: npt.NDArray[np.intp],
    edges: tuple[float, ...],
    q: float = 0.5,
    window: int = 0,
) -> Linear:
    """A quantile read from the interpolated distribution of binned, noisy counts.

    ``edges[i]`` is the lower edge of bin ``i``; the selected cells are summed per bin.
    The quantile lies in the first bin ``k`` whose cumulative count reaches ``q N``;
    inside it the distribution is taken as uniform. Its gradient with respect to bin
    ``j``'s count is ``w (q - 1) / c_k`` below ``k``, ``w (q - t) / c_k`` at ``k`` (``t``
    the position inside the bin) and ``w q / c_k`` above, ``w`` being the bin's width.
    A quantile in the open bottom or top bin is its finite edge, with no gradient.

    With ``window = h > 0`` the count ``c_k`` in the gradient is replaced by the mean count
    of the finite bins ``k - h .. k + h``: the noise on the cumulative count moves the
    quantile across several bins, so the density it meets is the local mean, not the one
    noisy bin's count (whose noise would make the standard error itself noisy and too
    small when that count is high), and the estimate carries the binning error of its
    interpolation: the true quantile is an order statistic of the ``c`` persons in the
    bin, which interpolation places as if they were spread evenly; spread at random
    instead, the order statistic at position ``t`` lies off its interpolated place by a
    standard deviation of ``width sqrt(t (1 - t) / (c + 2))`` (the uniform order
    statistic's), ``c`` the local mean count. For a bin of one person it is about
    ``width / sqrt(12)``; it shrinks as the bin fills. ``window = 0`` gives the exact
    derivative and no binning term.
    """
    counts = _bin_counts(cells, mask, bin_of_cell, len(edges))
    total = float(counts.sum())
    zero = np.zeros(cells.values.shape)
    if total <= 0:
        return Linear(math.nan, np.full(cells.values.shape, math.nan))
    cumulative = np.cumsum(counts)
    k = int(np.argmax(cumulative >= q * total))
    low = edges[k]
    high = edges[k + 1] if k + 1 < len(edges) else math.inf
    if not (math.isfinite(low) and math.isfinite(high)):
        return Linear(high if math.isfinite(high) else low, zero)
    below = float(cumulative[k] - counts[k])
    c_k, width = float(counts[k]), high - low
    t = (q * total - below) / c_k
    if window > 0:
        finite_bins = slice(max(k - window, 1), min(k + window + 1, len(edges) - 1))
        c_k = max(float(counts[finite_bins].mean()), 1.0)
    grad_bins = np.full(len(edges), width * q / c_k)
    grad_bins[:k] = width * (q - 1) / c_k
    grad_bins[k] = width * (q - t) / c_k
    position = min(max(t, 0.0), 1.0)
    binning = width * math.sqrt(position * (1 - position) / (c_k + 2))
    errors = {f"{q}:{hash(mask.tobytes())}": binning} if window > 0 else {}
    return Linear(low + t * width, _spread(grad_bins, mask, bin_of_cell), errors)


def below_linear(
    cells: Cells,
    mask: BoolArray,
    bin_of_cell: npt.NDArray[np.intp],
    edges: tuple[float, ...],
    line: float,
) -> Linear:
    """The count below ``line``: whole bins under it plus the part of the bin it cuts."""
    k = int(np.searchsorted(np.asarray(edges[1:]), line, side="right"))
    low = edges[k]
    high = edges[k + 1] if k + 1 < len(edges) else math.inf
    fraction = (line - low) / (high - low) if math.isfinite(low) and math.isfinite(high) else 0.0
    weights = np.zeros(len(edges))
    weights[:k] = 1.0
    weights[k] = fraction
    counts = _bin_counts(cells, mask, bin_of_cell, len(edges))
    return Linear(float(weights @ counts), _spread(weights, mask, bin_of_cell))


def pow2(x: FloatArray) -> FloatArray:
    """``x ** 2`` as Python computes it on a float (libm's pow, not numpy's ``x * x``).

    The per-row arithmetic and its vectorised form must agree to the last bit: they
    square with the same function.
    """
    out: FloatArray = np.power(x, np.full(np.shape(x), 2.0))
    return out


def _largest_deff(deff: FloatArray, den: BoolArray) -> FloatArray:
    """Per row of (tables, cells) arrays: the ``den`` cells' largest design effect (or 0).

    One mask for every row (``den`` 1-D): the ``den`` cells gathered, their maximum with
    0; else the cells outside ``den`` read as 0. The same number either way (a maximum
    is exact, and both start from 0).
    """
    if den.ndim == 1:
        gathered = np.take(deff, np.flatnonzero(den), axis=-1)
        largest: FloatArray = gathered.max(axis=-1, initial=0.0)
    else:
        largest = np.where(den, deff, 0.0).max(axis=-1, initial=0.0)
    return largest


def _table_sums(
    deff: FloatArray, values: FloatArray, samples: FloatArray, den: BoolArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row of (tables, cells) arrays: the ``den`` cells' largest deff, count, samples."""
    return (
        _largest_deff(deff, den),
        np.where(den, values, 0.0).sum(axis=-1),
        np.where(den, samples, 0.0).sum(axis=-1),
    )


def _per_table(
    cells: Cells, den: BoolArray, copies: int | list[BoolArray] | None
) -> list[tuple[float, float, float]]:
    """Per stacked table: the ``den`` cells' largest design effect, count and sample count.

    Stacked equal tables (``copies`` a number) are summed all at once, by reshaping: the
    cost stays linear in the cells however many tables are stacked.
    """
    if isinstance(copies, int):
        shape = (copies, den.size // copies)
        sums = _table_sums(
            cells.deff.reshape(shape), cells.values.reshape(shape),
            cells.samples.reshape(shape), den.reshape(shape),
        )  # fmt: skip
        return list(zip(*(s.tolist() for s in sums), strict=True))
    out = []
    for copy in copies or [np.ones(cells.values.shape, dtype=bool)]:
        part = den & copy
        out.append(
            (
                float(cells.deff[part].max(initial=0.0)),
                float(cells.values[part].sum()),
                float(cells.samples[part].sum()),
            )
        )
    return out


def sampling_term(deff: FloatArray, d_j: FloatArray, n_j: FloatArray, d: FloatArray) -> FloatArray:
    """One stacked table's part of a rate's sampling term ``k`` (0 for a register table)."""
    share = pow2(np.maximum(d_j, 0.0) / d)
    term: FloatArray = np.where(deff > 0, share * deff / np.maximum(n_j, 1.0), 0.0)
    return term


def score_bounds(
    r: FloatArray, s_num: FloatArray, s_den: FloatArray, k: FloatArray, z: float = Z95
) -> tuple[FloatArray, FloatArray]:
    """The score interval's bounds from its terms (see `rate_interval`), element-wise.

    nan where the set of plausible rates is not an interval inside [0, 1].
    """
    z2 = z * z
    # (r - p)^2 - z^2 (s_num (1 - 2p) + s_den p^2 + k p (1 - p)) <= 0, as a p^2 + b p + c
    a = 1.0 - z2 * (s_den - k)
    b = -2.0 * r + z2 * (2.0 * s_num - k)
    c = r * r - z2 * s_num
    disc = b * b - 4.0 * a * c
    bad = (a <= 0) | (disc < 0)
    root = np.sqrt(np.where(bad, 0.0, disc))
    two_a = np.where(bad, 1.0, 2 * a)
    low = np.maximum(0.0, np.minimum((-b - root) / two_a, r))
    high = np.minimum(1.0, np.maximum((-b + root) / two_a, r))
    return np.where(bad, math.nan, low), np.where(bad, math.nan, high)


RateSums = tuple[FloatArray, FloatArray, FloatArray, FloatArray]
"""Per row: the sums a rate reads: its ``den`` and ``num`` cells' values, then their noise
variances in the order ``num``, ``den``."""


def _rate_terms(
    values: FloatArray,
    noise: FloatArray,
    num: BoolArray,
    den: BoolArray,
    sums: RateSums | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per row: the denominator ``d``, the clipped rate and the noise terms over ``d^2``."""
    d, n, noise_num, noise_den = (
        (
            selected_sums(values, den), selected_sums(values, num),
            selected_sums(noise, num), selected_sums(noise, den),
        )
        if sums is None
        else sums
    )  # fmt: skip
    safe = np.where(d > 0, d, 1.0)
    r = np.minimum(np.maximum(n / safe, 0.0), 1.0)
    d2 = pow2(safe)
    return d, r, noise_num / d2, noise_den / d2


RateTerms = tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]
"""Per row: a rate's denominator ``d``, clipped rate, noise terms over ``d^2`` and sampling
term ``k`` (`rate_terms`)."""


def rate_intervals(
    cells: Cells, num: BoolArray, den: BoolArray, z: float = Z95
) -> tuple[FloatArray, FloatArray]:
    """`rate_interval` of one table on every row of (tables, cells) arrays at once.

    ``cells`` holds arrays of shape (tables, cells); ``num`` and ``den`` select cells of
    one table. Each row's bounds equal ``rate_interval`` on that table alone, bit for bit.
    """
    return rate_bounds(rate_terms(cells, num, den), z)


def rate_terms(
    cells: Cells, num: BoolArray, den: BoolArray, sums: RateSums | None = None
) -> RateTerms:
    """The terms of `rate_intervals` on every row, before its element-wise bounds.

    Only a row whose ``den`` cells have a design effect (a survey's) has a sampling term:
    the others' is 0 whatever their sums, which are summed for the surveys' rows alone.
    ``sums``: the cells' sums it reads (`RateSums`), if summed already.
    """
    d, r, s_num, s_den = _rate_terms(cells.values, cells.noise_variance, num, den, sums)
    deff = _largest_deff(cells.deff, den)
    k = np.zeros(d.shape)
    rows = np.flatnonzero(deff > 0)
    if rows.size:
        _, d_j, n_j = _table_sums(cells.deff[rows], cells.values[rows], cells.samples[rows], den)
        safe = np.where(d > 0, d, 1.0)[rows]
        k[rows] = 0.0 + sampling_term(deff[rows], d_j, n_j, safe)
    return d, r, s_num, s_den, k


def rate_bounds(terms: RateTerms, z: float = Z95) -> tuple[FloatArray, FloatArray]:
    """`rate_intervals`' bounds from its terms, element-wise (terms of any shape)."""
    d, r, s_num, s_den, k = terms
    low, high = score_bounds(r, s_num, s_den, k, z)
    return np.where(d > 0, low, math.nan), np.where(d > 0, high, math.nan)


def rate_interval(
    cells: Cells,
    num: BoolArray,
    den: BoolArray,
    copies: int | list[BoolArray] | None = None,
    z: float = Z95,
) -> tuple[float, float]:
    """A score-type interval for the rate ``num / den``, always inside [0, 1].

    The set of rates ``p`` with ``(r - p)^2 <= z^2 V(p)``, where ``V(p)`` is the delta
    method's variance with its gradient taken at ``p``: the DP noise part
    ``(S_num (1 - 2p) + S_den p^2) / d^2`` (``S`` the summed noise variances of the cells)
    plus the sampling part ``k p (1 - p)``, ``k = sum_j (d_j / d)^2 deff_j / n_j`` over the
    stacked tables ``j`` (``n_j`` the noisy sample count of table ``j``'s denominator).
    Like Wilson's interval for a proportion, it stays away from a point at 0 or 1.

    Args:
        cells: The cells.
        num: Numerator cells (within ``den``).
        den: Denominator cells.
        copies: The cells of each stacked table, or how many equal tables are stacked
            side by side (None: one table).
        z: The normal quantile.

    Returns:
        ``(low, high)``; ``(nan, nan)`` when the denominator is not positive or noise
        swamps the rate (the set of plausible rates is not an interval inside [0, 1]).
    """
    d, r, s_num, s_den = (
        float(t[0]) for t in _rate_terms(cells.values[None], cells.noise_variance[None], num, den)
    )
    if d <= 0:
        return math.nan, math.nan
    tables = _per_table(cells, den, copies)
    deff, d_j, n_j = (np.array(t, dtype=np.float64) for t in zip(*tables, strict=True))
    k = 0.0
    for term in sampling_term(deff, d_j, n_j, np.full(deff.shape, d)).tolist():
        k += term  # table by table, in order (a register's term is 0)
    low, high = score_bounds(_one(r), _one(s_num), _one(s_den), _one(k), z)
    return float(low[0]), float(high[0])

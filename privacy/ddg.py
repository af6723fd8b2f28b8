"""The distributed discrete Gaussian: each node adds a share of one release's noise.

Kairouz, Liu and Steinke, "The Distributed Discrete Gaussian Mechanism for Federated
Learning with Secure Aggregation" (ICML 2021), Theorem 1 and Proposition 14 (Eq. 17):
if each of ``n`` nodes adds independent discrete Gaussian noise N_Z(0, sigma^2) to every
entry of its integer vector, the sum of the vectors satisfies, for every order
alpha >= 1, Renyi DP of at most

    min( alpha D^2 / (2 n sigma^2) + tau d,  (alpha / 2) (D / (sqrt(n) sigma) + tau sqrt(d))^2 )

with ``D`` the L2 sensitivity of the sum, ``d`` the number of entries and
``tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k / (k + 1))`` the price of a sum of discrete
Gaussians not being a discrete Gaussian. As ``tau d <= alpha tau d`` for alpha >= 1, both
branches are zCDP bounds, ``rho = min(D^2/(2 n sigma^2) + tau d, (D/(sqrt(n) sigma) +
tau sqrt(d))^2 / 2)``, which is what ``rho_of`` returns. With ``n = 1`` it is the discrete
Gaussian's own ``D^2 / (2 sigma^2)`` (OpenDP's map; checked in the tests).

A share's sigma is small when many nodes split one release (at the demo's scale a node's
share at t = 300 would have variance below 0.01, where ``tau`` makes the bound useless),
so counts are first multiplied by a public integer ``gamma``: the sensitivity becomes
``gamma D`` and each node's share ``sigma`` grows by ``gamma`` too, which keeps ``tau``
negligible. The pooled table is the unmasked sum divided by ``gamma``.

Who carries the noise: with ``t`` the Shamir threshold, the coordinator never unmasks a
sum of fewer than ``t`` nodes, so at least ``t`` shares of noise are in any released sum.
If at most ``K - t`` nodes collude with the coordinator (they can subtract their own
shares) or drop out, the honest survivors' ``t`` shares remain: every node therefore
charges ``rho_of(gamma D, sigma, n=t, d)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from privacy.gaussian import make_measurement

__all__ = ["SharePlan", "noisy_share", "plan_shares", "pooled_sd", "rho_of", "tau"]

MIN_SHARE_SIGMA = 4.0  # a share's sigma on the scaled counts; tau is then below 1e-60
HEADROOM = 2**52  # largest |scaled count| per node: 2,048 such nodes still sum below 2^63
_MAX_NUDGES = 200


def tau(sigma: float, n: int) -> float:
    """KLS21's tau: how far a sum of ``n`` discrete Gaussians is from a discrete Gaussian."""
    if n < 1 or not sigma > 0:
        raise ValueError("n must be >= 1 and sigma > 0")
    return 10.0 * math.fsum(
        math.exp(-2.0 * math.pi**2 * sigma**2 * k / (k + 1)) for k in range(1, n)
    )


def rho_of(sensitivity: float, sigma: float, n: int, dim: int) -> float:
    """The zCDP of the sum of ``n`` nodes' vectors, each noised with N_Z(0, sigma^2) per entry.

    Args:
        sensitivity: L2 sensitivity of the summed (scaled) vector.
        sigma: Each node's discrete Gaussian scale, in the same (scaled) units.
        n: How many nodes' noise the sum is guaranteed to carry.
        dim: Number of entries of the vector.
    """
    if sensitivity < 0 or dim < 1:
        raise ValueError("sensitivity must be >= 0 and dim >= 1")
    t_ = tau(sigma, n)
    scale = sensitivity / (math.sqrt(n) * sigma)
    return min(scale**2 / 2.0 + t_ * dim, (scale + t_ * math.sqrt(dim)) ** 2 / 2.0)


@dataclass(frozen=True)
class SharePlan:
    """How one node noises its share of a secure release.

    Attributes:
        gamma: Public factor the counts are multiplied by before noising.
        sigma: Each node's discrete Gaussian scale on the scaled counts.
        threshold: ``t``, the fewest nodes whose noise any released sum carries.
        dim: Entries in the vector.
        sensitivity: L2 sensitivity of one person on the unscaled counts.
        rho: zCDP each node charges (``rho_of`` at n = threshold), at most the rho asked.
    """

    gamma: int
    sigma: float
    threshold: int
    dim: int
    sensitivity: float
    rho: float


def plan_shares(sensitivity: float, rho: float, threshold: int, dim: int) -> SharePlan:
    """The public factor and share scale that spend at most ``rho`` with ``threshold`` shares.

    ``gamma`` is the smallest integer that lifts a share's sigma to ``MIN_SHARE_SIGMA``;
    sigma starts at the Gaussian rate and is nudged up until ``rho_of`` is within ``rho``.
    """
    if not rho > 0 or sensitivity <= 0 or threshold < 1 or dim < 1:
        raise ValueError("rho and sensitivity must be > 0, threshold and dim >= 1")
    central = sensitivity / math.sqrt(2.0 * rho)  # one release's sigma on unscaled counts
    gamma = max(1, math.ceil(MIN_SHARE_SIGMA * math.sqrt(threshold) / central))
    sigma = gamma * central / math.sqrt(threshold)
    for _ in range(_MAX_NUDGES):
        spent = rho_of(gamma * sensitivity, sigma, threshold, dim)
        if spent <= rho:
            return SharePlan(gamma, sigma, threshold, dim, float(sensitivity), spent)
        sigma *= 1.0 + 1e-9 + (spent - rho) / rho
    raise ArithmeticError(f"no share scale fits rho={rho} with threshold {threshold}")


def noisy_share(counts: npt.NDArray[np.int64], plan: SharePlan) -> npt.NDArray[np.int64]:
    """``gamma * counts`` plus OpenDP's discrete Gaussian share noise on every entry."""
    if len(counts) != plan.dim:
        raise ValueError(f"the plan is for {plan.dim} entries, the counts have {len(counts)}")
    counts = np.asarray(counts, dtype=np.int64)
    if len(counts) and int(np.abs(counts).max()) > HEADROOM // plan.gamma:
        raise ValueError(
            f"a count above {HEADROOM // plan.gamma} times gamma {plan.gamma} leaves the sum "
            "of the nodes no room in Z/2^64"
        )
    scaled = counts * plan.gamma
    noisy = make_measurement(plan.sigma)([int(c) for c in scaled])
    return np.asarray(noisy, dtype=np.int64)


def pooled_sd(plan: SharePlan, contributors: int) -> float:
    """SD of the pooled (unscaled) table's noise when ``contributors`` nodes' shares are in it."""
    return plan.sigma * math.sqrt(contributors) / plan.gamma

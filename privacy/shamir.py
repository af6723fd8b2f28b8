"""Shamir t-of-n secret sharing over the prime field of the Mersenne prime 2^521 - 1.

Secure aggregation shares 256-bit secrets (a node's mask key and self-mask seed), so the
field must be larger than 2^256; 2^521 - 1 is the smallest Mersenne prime that is.
Any ``threshold`` shares give the secret back; fewer give no information about it
(every secret is equally likely given ``threshold - 1`` shares).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PRIME", "SHARE_BYTES", "Share", "lagrange_at_zero", "points_of", "reconstruct", "split"]

PRIME = 2**521 - 1
SHARE_BYTES = 66  # 521 bits


@dataclass(frozen=True)
class Share:
    """One point of the sharing polynomial.

    Attributes:
        x: The holder's evaluation point, 1..n (never 0: that is where the secret sits).
        y: The polynomial's value at ``x``, in [0, PRIME).
    """

    x: int
    y: int

    def to_bytes(self) -> bytes:
        """The value as fixed-width big-endian bytes (the point is known from the holder)."""
        return self.y.to_bytes(SHARE_BYTES, "big")


def points_of(holders: Sequence[str]) -> dict[str, int]:
    """Each holder's evaluation point: its 1-based place among the holders in sorted order."""
    return {h: i for i, h in enumerate(sorted(holders), start=1)}


def split(secret: int, threshold: int, points: Sequence[int]) -> dict[int, Share]:
    """Share ``secret`` so that any ``threshold`` of the points can rebuild it.

    Args:
        secret: The secret, 0 <= secret < PRIME.
        threshold: How many shares rebuild the secret (at least 2: one share would be it).
        points: Distinct evaluation points, each in 1..PRIME-1, one per holder.

    Returns:
        The share for each point.
    """
    if not 0 <= secret < PRIME:
        raise ValueError("the secret must lie in [0, 2^521 - 1)")
    if len(set(points)) != len(points) or any(not 0 < x < PRIME for x in points):
        raise ValueError("share points must be distinct and non-zero")
    if not 2 <= threshold <= len(points):
        raise ValueError(f"threshold {threshold} must lie in [2, {len(points)}]")
    coefficients = [secret] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    return {x: Share(x, _evaluate(coefficients, x)) for x in points}


def lagrange_at_zero(points: Sequence[int]) -> dict[int, int]:
    """The Lagrange weights that interpolate a polynomial at 0 from its values at ``points``.

    The weights depend only on the points, so a coordinator rebuilding many secrets from
    the same holders computes them once.
    """
    if len(set(points)) != len(points):
        raise ValueError("share points must be distinct")
    weights = {}
    for i in points:
        numerator, denominator = 1, 1
        for j in points:
            if j != i:
                numerator = numerator * (-j) % PRIME
                denominator = denominator * (i - j) % PRIME
        weights[i] = numerator * pow(denominator, -1, PRIME) % PRIME
    return weights


def reconstruct(shares: Sequence[Share], weights: dict[int, int] | None = None) -> int:
    """The secret behind ``shares`` (which must be at least the sharing's threshold)."""
    if weights is None:
        weights = lagrange_at_zero([s.x for s in shares])
    return sum(weights[s.x] * s.y for s in shares) % PRIME


def _evaluate(coefficients: list[int], x: int) -> int:
    """Horner's rule modulo the prime."""
    value = 0
    for c in reversed(coefficients):
        value = (value * x + c) % PRIME
    return value

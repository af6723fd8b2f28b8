"""Shamir sharing over 2^521 - 1: any t shares rebuild a secret, t - 1 do not."""

from __future__ import annotations

import itertools
import secrets

import pytest

from privacy import shamir


def test_any_threshold_of_the_shares_rebuilds_the_secret() -> None:
    secret = secrets.randbits(256)
    shares = shamir.split(secret, 3, [1, 2, 3, 4, 5])
    for subset in itertools.combinations(shares.values(), 3):
        assert shamir.reconstruct(list(subset)) == secret
    assert shamir.reconstruct(list(shares.values())) == secret  # more than t also works


def test_fewer_than_threshold_shares_miss_the_secret() -> None:
    secret = secrets.randbits(256)
    shares = shamir.split(secret, 4, [1, 2, 3, 4, 5, 6])
    # Three points fit a degree-2 polynomial whose value at 0 is unrelated to the secret
    # (equal only with probability 2^-521).
    assert shamir.reconstruct([shares[1], shares[2], shares[3]]) != secret


def test_weights_are_reused_for_many_secrets() -> None:
    points = [2, 5, 7]
    weights = shamir.lagrange_at_zero(points)
    for _ in range(5):
        secret = secrets.randbits(256)
        shares = shamir.split(secret, 3, [1, 2, 3, 4, 5, 6, 7])
        assert shamir.reconstruct([shares[p] for p in points], weights) == secret


def test_points_are_places_in_sorted_order() -> None:
    assert shamir.points_of(["n2", "n0", "n1"]) == {"n0": 1, "n1": 2, "n2": 3}


@pytest.mark.parametrize(
    ("secret", "threshold", "points"),
    [(-1, 2, [1, 2]), (shamir.PRIME, 2, [1, 2]), (5, 1, [1, 2]), (5, 3, [1, 2]), (5, 2, [0, 1]),
     (5, 2, [1, 1])],
)  # fmt: skip
def test_bad_sharings_are_refused(secret: int, threshold: int, points: list[int]) -> None:
    with pytest.raises(ValueError):
        shamir.split(secret, threshold, points)

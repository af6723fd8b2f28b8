"""Masking in Z/2^64: masked vectors look uniform, the masks cancel, dropouts are recovered."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from privacy import secagg
from security.roundkeys import RoundError
from tests.support.secagg import make_party


def _vectors(names: list[str], dim: int, seed: int) -> dict[str, npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    return {n: rng.integers(-(2**40), 2**40, size=dim, dtype=np.int64) for n in names}


def _looks_uniform(values: secagg.Ring) -> None:
    """Bytes and bits of a vector are as a uniform one's (each check fails w.p. < 1e-8)."""
    raw = np.frombuffer(values.tobytes(), dtype=np.uint8)
    expected = len(raw) / 256
    chi2 = float((((np.bincount(raw, minlength=256) - expected) ** 2) / expected).sum())
    assert chi2 < 255 + 8 * np.sqrt(2 * 255), chi2  # chi-square, 255 df: 8 SD above the mean
    bits = (values[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    ones = bits.sum(axis=0).astype(float)
    n = len(values)
    assert np.all(np.abs(ones - n / 2) < 6.5 * np.sqrt(n / 4)), ones


def test_prg_is_a_deterministic_stream_of_the_seed() -> None:
    seed = bytes(range(32))
    first = secagg.expand(seed, 1000)
    assert np.array_equal(first, secagg.expand(seed, 1000))
    assert np.array_equal(first[:10], secagg.expand(seed, 10))
    assert not np.array_equal(first, secagg.expand(bytes(31) + b"\x01", 1000))
    with pytest.raises(ValueError, match="32 bytes"):
        secagg.expand(bytes(16), 10)  # 128-bit seeds (let alone 32-bit ones) are refused


def test_ring_round_trip_keeps_signs() -> None:
    values = np.array([-(2**63), -1, 0, 1, 2**63 - 1], dtype=np.int64)
    assert np.array_equal(secagg.from_ring(secagg.to_ring(values)), values)
    wrapped = secagg.to_ring(np.array([2**63 - 1], dtype=np.int64)) + np.uint64(1)
    assert secagg.from_ring(wrapped)[0] == -(2**63)


@pytest.mark.parametrize("fill", [0, 2**62])
def test_a_single_masked_vector_is_indistinguishable_from_uniform(fill: int) -> None:
    dim = 1 << 15
    party = make_party(3, 2, dim)
    party.keys_and_shares()
    envelope = party.mask("n00", np.full(dim, fill, dtype=np.int64))
    masked = np.frombuffer(__import__("base64").b64decode(envelope.content()["values"]),
                           dtype=np.uint64)  # fmt: skip
    _looks_uniform(masked)


def test_the_sum_equals_the_plain_sum() -> None:
    party = make_party(10, 6, 500)
    vectors = _vectors(list(party.nodes), 500, 1)
    assert np.array_equal(party.run(vectors), sum(vectors.values()))


@pytest.mark.parametrize("dropped", [1, 4])
def test_up_to_k_minus_t_dropouts_after_sharing_still_give_the_sum(dropped: int) -> None:
    party = make_party(10, 6, 300)
    vectors = _vectors(list(party.nodes), 300, 2)
    gone = frozenset(list(party.nodes)[-dropped:])
    expected = sum(v for n, v in vectors.items() if n not in gone)
    assert np.array_equal(party.run(vectors, drop_after_shares=gone), expected)


def test_more_than_k_minus_t_dropouts_fail_the_round_cleanly() -> None:
    party = make_party(10, 6, 50)
    gone = frozenset(list(party.nodes)[:5])
    with pytest.raises(RoundError, match="fewer than t: round fails"):
        party.run(_vectors(list(party.nodes), 50, 3), drop_after_shares=gone)


def test_a_node_that_drops_before_sharing_is_left_out() -> None:
    party = make_party(6, 4, 40)
    party.keys_and_shares(drop_before_shares=frozenset({"n02"}))
    vectors = _vectors([n for n in party.nodes if n != "n02"], 40, 4)
    for name, vector in vectors.items():
        party.coordinator.add_masked(party.mask(name, vector))
    assert "n02" not in party.coordinator.close_inputs()
    assert np.array_equal(party.finish(), sum(vectors.values()))

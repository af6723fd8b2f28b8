"""Masking arithmetic of secure aggregation (Bonawitz et al. 2017) in the ring Z/2^64.

A node's integer vector ``x_i`` leaves it only as

    y_i = x_i + PRG(b_i) + sum_{j > i} PRG(s_ij) - sum_{j < i} PRG(s_ij)   (mod 2^64)

where ``b_i`` is the node's own self-mask seed and ``s_ij = s_ji`` the seed it shares with
peer ``j`` (agreed by X25519 and HKDF, see ``security.roundkeys``). Over the nodes that
sent a vector the pair masks cancel; the coordinator removes each survivor's self-mask
(rebuilt from Shamir shares) and each dropped node's pair masks (from its rebuilt key),
and is left with the sum. Every seed is 256 bits and expands by AES-256 in counter mode.
numpy's unsigned 64-bit arithmetic wraps, which is exactly arithmetic mod 2^64.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "SEED_BYTES",
    "Ring",
    "expand",
    "from_ring",
    "mask",
    "remove_pair_masks",
    "remove_self_masks",
    "to_ring",
]

SEED_BYTES = 32
Ring = npt.NDArray[np.uint64]
_ZERO_NONCE = bytes(16)


def expand(seed: bytes, length: int) -> Ring:
    """Expand a 256-bit seed into ``length`` uniform elements of Z/2^64 (AES-256-CTR).

    Each seed is fresh for one vector of one round, so the all-zero counter start is safe.
    """
    if len(seed) != SEED_BYTES:
        raise ValueError(f"a mask seed has {SEED_BYTES} bytes, not {len(seed)}")
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(_ZERO_NONCE)).encryptor()
    stream = encryptor.update(bytes(8 * length)) + encryptor.finalize()
    return np.frombuffer(stream, dtype="<u8").astype(np.uint64)


def to_ring(values: npt.NDArray[np.int64]) -> Ring:
    """Signed 64-bit integers as elements of Z/2^64 (two's complement)."""
    return np.ascontiguousarray(values, dtype=np.int64).view(np.uint64).copy()


def from_ring(values: Ring) -> npt.NDArray[np.int64]:
    """Elements of Z/2^64 read back as signed integers in [-2^63, 2^63)."""
    return np.ascontiguousarray(values, dtype=np.uint64).view(np.int64).copy()


def _pair_sign(me: str, peer: str) -> int:
    """+1 when the mask is added (the lower id adds), -1 when it is subtracted."""
    if me == peer:
        raise ValueError("a node has no pair mask with itself")
    return 1 if me < peer else -1


def mask(
    values: npt.NDArray[np.int64],
    me: str,
    self_seed: bytes,
    pair_seeds: Mapping[str, bytes],
) -> Ring:
    """A node's masked vector: its values plus its self-mask and its signed pair masks."""
    length = len(values)
    out = to_ring(values) + expand(self_seed, length)
    for peer, seed in pair_seeds.items():
        if _pair_sign(me, peer) > 0:
            out += expand(seed, length)
        else:
            out -= expand(seed, length)
    return out


def remove_self_masks(total: Ring, self_seeds: Iterable[bytes]) -> Ring:
    """Subtract the self-masks of the nodes whose masked vectors are in ``total``."""
    out = total.copy()
    for seed in self_seeds:
        out -= expand(seed, len(out))
    return out


def remove_pair_masks(total: Ring, dropped: str, pair_seeds: Mapping[str, bytes]) -> Ring:
    """Cancel the pair masks that survivors added against a node that then dropped out.

    Args:
        total: The sum of the survivors' masked vectors.
        dropped: The id of a node that shared its keys but sent no masked vector.
        pair_seeds: The seed of ``dropped`` with each survivor, keyed by survivor id.
    """
    out = total.copy()
    for survivor, seed in pair_seeds.items():
        # The survivor added sign(survivor, dropped) * PRG(seed); take it back.
        if _pair_sign(survivor, dropped) > 0:
            out -= expand(seed, len(out))
        else:
            out += expand(seed, len(out))
    return out

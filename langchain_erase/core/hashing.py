"""Keyed hashes: the only source of randomness that depends on an example.

Every random choice tied to an example is a function of (seed, purpose, example id), never of
its position, so adding or removing one example cannot change the draws of any other.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

__all__ = ["UNIFORM_BITS", "id_hash64", "keyed_hash64", "mix64", "uniform_open01"]

_MASK64 = (1 << 64) - 1
#: Bits of a hash that make a uniform: u = (2 * (h >> (64 - UNIFORM_BITS)) + 1) / 2**53.
UNIFORM_BITS = 52


def keyed_hash64(seed: int, *parts: str) -> int:
    """A 64-bit BLAKE2b hash of `parts` keyed by `seed` (parts are length-prefixed)."""
    data = b"".join(len(b).to_bytes(8, "little") + b for b in (p.encode("utf-8") for p in parts))
    digest = hashlib.blake2b(data, digest_size=8, key=seed.to_bytes(16, "little", signed=True))
    return int.from_bytes(digest.digest(), "little")


def id_hash64(seed: int, example_ids: list[str]) -> npt.NDArray[np.uint64]:
    """Per-example 64-bit hashes, computed once when an example enters the selector.

    Args:
        seed: the key.
        example_ids: ids to hash.

    Returns:
        One keyed BLAKE2b-64 of ("example", id) per id (the same as `keyed_hash64`).
    """
    key = seed.to_bytes(16, "little", signed=True)
    prefix = len(b"example").to_bytes(8, "little") + b"example"
    blake2b = hashlib.blake2b
    digests = b"".join(
        [
            blake2b(
                prefix + len(data).to_bytes(8, "little") + data, digest_size=8, key=key
            ).digest()
            for data in (example_id.encode("utf-8") for example_id in example_ids)
        ]
    )
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def mix64(
    values: npt.NDArray[np.uint64], salt: int | npt.NDArray[np.uint64]
) -> npt.NDArray[np.uint64]:
    """SplitMix64 finalizer of `values ^ salt`: a fast vectorized bijective mixer."""
    z = values ^ (np.uint64(salt & _MASK64) if isinstance(salt, int) else salt)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform_open01(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
    """Map 64-bit hashes to uniforms in the open interval (0, 1), never 0 or 1.

    52 bits plus one half: (2**52 - 0.5) * 2**-52 is still exactly representable (53 bits),
    whereas with 53 bits the largest value would round up to 1.0.
    """
    mantissa = (values >> np.uint64(64 - UNIFORM_BITS)).astype(np.float64)
    return (mantissa + 0.5) * 2.0**-UNIFORM_BITS

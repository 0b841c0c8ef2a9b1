"""Keyed hashes: stable, seed-dependent, position-independent."""

from __future__ import annotations

import numpy as np

from langchain_erase.core.hashing import id_hash64, keyed_hash64, mix64, uniform_open01


def test_keyed_hash_is_stable_and_depends_on_seed_and_parts() -> None:
    assert keyed_hash64(1, "a", "b") == keyed_hash64(1, "a", "b")
    assert keyed_hash64(1, "a", "b") != keyed_hash64(2, "a", "b")
    assert keyed_hash64(1, "ab", "") != keyed_hash64(1, "a", "b")  # length-prefixed parts
    assert keyed_hash64(-5, "x") != keyed_hash64(5, "x")


def test_id_hashes_do_not_depend_on_the_batch() -> None:
    ids = [f"id{i}" for i in range(50)]
    whole = id_hash64(3, ids)
    assert whole.dtype == np.uint64
    assert all(id_hash64(3, [i])[0] == h for i, h in zip(ids, whole, strict=True))
    assert np.array_equal(id_hash64(3, ids[::-1]), whole[::-1])


def test_mix64_spreads_consecutive_inputs_and_uniforms_are_open() -> None:
    values = np.arange(100_000, dtype=np.uint64)
    mixed = mix64(values, 12345)
    assert len(np.unique(mixed)) == len(values)  # bijective on this sample
    u = uniform_open01(mixed)
    assert (u > 0).all() and (u < 1).all()
    assert abs(u.mean() - 0.5) < 0.01
    extremes = uniform_open01(np.array([0, 2**64 - 1], dtype=np.uint64))
    assert 0 < extremes[0] < extremes[1] < 1


def test_batched_id_hashes_are_the_keyed_hash_of_each_id() -> None:
    ids = ["", "a", "ü", "x" * 300]
    assert id_hash64(-7, ids).tolist() == [keyed_hash64(-7, "example", i) for i in ids]

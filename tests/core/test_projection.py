"""Fixed-point projection: exact, batch-independent, data-independent."""

from __future__ import annotations

import numpy as np
import pytest

from langchain_erase.core.projection import FixedPointProjection, normalize_rows


def test_coordinates_do_not_depend_on_the_batch() -> None:
    rng = np.random.default_rng(0)
    vecs = normalize_rows(rng.standard_normal((500, 384)))
    proj = FixedPointProjection(seed=7, dimension=384, p=8)
    whole = proj.project(vecs)
    assert whole.dtype == np.int64 and whole.shape == (500, 8)
    for i in (0, 17, 499):
        assert np.array_equal(proj.project(vecs[i : i + 1]), whole[i : i + 1])
    assert np.array_equal(proj.project(vecs[::-1]), whole[::-1])


def test_projection_is_seeded_and_roughly_isometric() -> None:
    a = FixedPointProjection(1, 64, 16).matrix
    assert np.array_equal(a, FixedPointProjection(1, 64, 16).matrix)
    assert not np.array_equal(a, FixedPointProjection(2, 64, 16).matrix)
    q = a / (np.sqrt(64) * 2**15)
    assert np.allclose(q.T @ q, np.eye(16), atol=1e-3)  # orthonormal columns


def test_restored_matrix_must_be_integral_and_shaped() -> None:
    m = FixedPointProjection(1, 8, 4).matrix
    assert np.array_equal(FixedPointProjection(9, 8, 4, matrix=m).matrix, m)
    with pytest.raises(ValueError):
        FixedPointProjection(1, 8, 4, matrix=m + 0.5)
    with pytest.raises(ValueError):
        FixedPointProjection(1, 8, 3, matrix=m)


@pytest.mark.parametrize("bad", [[[0.0, 0.0]], [[np.nan, 1.0]], [[np.inf, 1.0]], [1.0, 2.0]])
def test_normalize_rejects_unusable_vectors(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        normalize_rows(bad)

"""Each selection mode keeps exactly one copy of each member's vector, and none of a
deleted member's: counted over every numpy array reachable from the index."""

from __future__ import annotations

import gc

import numpy as np
import numpy.typing as npt
import pytest

from langchain_erase.core.index import SELECTION_MODES, ERASEIndex, SelectionMode
from langchain_erase.core.projection import normalize_rows
from langchain_erase.core.qkmeans import QKMeansParams

DIM = 24


def reachable_buffers(root: object) -> list[bytes]:
    """The bytes of every distinct numpy buffer reachable from `root` (views by their base)."""
    seen: set[int] = set()
    buffers: dict[int, bytes] = {}
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, str, bytes, int, float)):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            base = obj
            while isinstance(base.base, np.ndarray):
                base = base.base
            buffers[id(base)] = base.tobytes()
            continue
        stack.extend(gc.get_referents(obj))
    return list(buffers.values())


def copies(buffers: list[bytes], vector: npt.NDArray[np.float32]) -> int:
    needle = vector.astype(np.float32).tobytes()
    return sum(buffer.count(needle) for buffer in buffers)


@pytest.mark.parametrize("mode", SELECTION_MODES)
def test_each_vector_is_stored_once_and_a_deleted_one_nowhere(mode: SelectionMode) -> None:
    rng = np.random.default_rng(7)
    vectors = normalize_rows(rng.standard_normal((90, DIM)).astype(np.float32))
    ids = [f"e{i:03d}" for i in range(90)]
    texts = [f'{{"input": "{i}"}}' for i in ids]
    index = ERASEIndex(QKMeansParams(k=3, epsilon=0.05, seed=5, max_iter=20), 8, mode)
    index.load(ids[:60], texts[:60], vectors[:60])
    outcomes = index.add(ids[60:], texts[60:], vectors[60:], batch=False)
    deleted = [index.delete(i) for i in ids[::4]]
    assert any(o.refit for o in outcomes + deleted)  # the rebuild path is covered too
    buffers = reachable_buffers(index)
    for r, example_id in enumerate(ids):
        expected = 0 if example_id in ids[::4] else 1
        assert copies(buffers, vectors[r]) == expected, (example_id, mode)
    assert index.verify()
    kept = [r for r, i in enumerate(ids) if i not in ids[::4]]
    assert np.array_equal(index.rows()[2], vectors[kept])


@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf, "inf-inf", "max"])
def test_check_rows_refuses_exactly_the_non_finite_rows(bad: object) -> None:
    """The one-sum finiteness check agrees with an elementwise one, even at float32's edge."""
    big = np.float32(np.finfo(np.float32).max)
    rows = np.full((3, 8), big if bad == "max" else 0.5, dtype=np.float32)
    if bad == "inf-inf":
        rows[0, 0], rows[2, 7] = np.inf, -np.inf
    elif isinstance(bad, float):
        rows[1, 3] = bad
    index = ERASEIndex(QKMeansParams(k=2, epsilon=0.5), 4, "random")
    ids, texts = ["a", "b", "c"], ["{}", "{}", "{}"]
    if np.isfinite(rows).all():
        index.check_rows(ids, texts, rows)
    else:
        with pytest.raises(ValueError, match="finite"):
            index.check_rows(ids, texts, rows)

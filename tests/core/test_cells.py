"""Keyed-sample cell search: after any insert/delete sequence it answers every query like a
fresh build of the surviving set, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_erase.core.buckets import BucketIndex
from langchain_erase.core.cells import CellIndex, exact_dot
from langchain_erase.core.hashing import id_hash64
from langchain_erase.core.projection import normalize_rows
from langchain_erase.core.screen import Fp16Screen, fp16_codes, screen_slack

DIM = 8
SMALL = {"cells": 3, "nprobe": 2, "exact_below": 6}


def fresh(vectors: dict[str, np.ndarray], **options: int | bool) -> CellIndex:
    index = CellIndex(DIM, salt=5, **options)
    ids = sorted(vectors)
    rows = np.array([vectors[i] for i in ids], dtype=np.float32).reshape(len(ids), DIM)
    index.build(ids, id_hash64(0, ids).tolist(), rows)
    return index


def structure(index: CellIndex) -> object:
    if index._flat is not None:
        assert index._screen is None
        return ("flat", sorted(index._flat.ids))
    if index._screen is not None:  # the screen mirrors every cell block, row for row
        codes = index.screen_codes()
        for center, cell in index._cells.items():
            assert codes[index._slot[center]] == fp16_codes(cell.rows).tobytes()
        assert sum(map(len, codes)) == 2 * DIM * len(index)
    return ("cells", sorted(index._centers.ids), dict(sorted(index._cell_of.items())))


def exact_best(vectors: dict[str, np.ndarray], query: np.ndarray) -> str:
    q64 = query.astype(np.float64)
    return min((-exact_dot(v, q64), i) for i, v in vectors.items())[1]


@st.composite
def histories(draw: st.DrawFn) -> tuple[np.ndarray, list[tuple[str, str, int]]]:
    pool = normalize_rows(np.random.default_rng(draw(st.integers(0, 99))).standard_normal((6, DIM)))
    ops: list[tuple[str, str, int]] = []
    alive: set[str] = set()
    for n in range(draw(st.integers(1, 40))):
        if alive and draw(st.integers(0, 2)) == 0:
            victim = draw(st.sampled_from(sorted(alive)))
            alive.discard(victim)
            ops.append(("delete", victim, 0))
        else:  # few distinct vectors: duplicates and exactly tied scores are common
            ops.append(("insert", f"x{n}", draw(st.integers(0, len(pool) - 1))))
            alive.add(f"x{n}")
    return pool, ops


@pytest.mark.parametrize("screen", [True, False])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
def test_in_place_changes_equal_a_fresh_build(screen: bool, history) -> None:  # type: ignore[no-untyped-def]
    pool, ops = history
    index = CellIndex(DIM, salt=5, screen=screen, **SMALL)
    vectors: dict[str, np.ndarray] = {}
    queries = [*pool, *normalize_rows(np.random.default_rng(1).standard_normal((4, DIM)))]
    for op, example_id, which in ops:
        if op == "insert":
            vectors[example_id] = pool[which]
            index.add(example_id, int(id_hash64(0, [example_id])[0]), pool[which])
        else:
            del vectors[example_id]
            index.remove(example_id, int(id_hash64(0, [example_id])[0]))
        built = fresh(vectors, screen=not screen, **SMALL)  # the other scan, built afresh
        assert structure(index) == structure(built)
        if vectors:
            for query in queries:
                q64 = query.astype(np.float64)
                assert index.best(query, q64) == built.best(query, q64)


@pytest.mark.parametrize("screen", [True, False])
def test_probing_every_cell_is_the_exact_scan_and_few_cells_find_most(screen: bool) -> None:
    rng = np.random.default_rng(3)
    vectors = normalize_rows(rng.standard_normal((3000, DIM)))
    data = {f"v{i}": v for i, v in enumerate(vectors)}
    full = fresh(data, cells=40, nprobe=40, exact_below=100, screen=screen)
    probe = fresh(data, cells=40, nprobe=8, exact_below=100, screen=screen)
    queries = normalize_rows(rng.standard_normal((200, DIM)))
    hits = 0
    for query in queries:
        q64 = query.astype(np.float64)
        truth = exact_best(data, query)
        assert full.best(query, q64) == truth
        hits += probe.best(query, q64) == truth
    assert hits >= 150  # an approximate search, but not a random one


def test_bucket_index_keeps_the_only_copy_and_zeroes_it_on_removal() -> None:
    rng = np.random.default_rng(4)
    ids = [f"m{i}" for i in range(60)]
    vectors = normalize_rows(rng.standard_normal((60, DIM)))
    labels = np.zeros(60, dtype=np.int64)
    index = BucketIndex.build(
        1, "similar", DIM, ids, labels, labels, vectors, cells=4, nprobe=2, exact_below=20
    )
    assert np.array_equal(index.vector("m7", 0), vectors[7])
    assert np.array_equal(index.vectors_of(["m9", "m7"]), vectors[[9, 7]])
    index.remove("m7", 0, 0)
    stored = b"".join(block.matrix.tobytes() for block in index.vector_blocks())
    assert vectors[7].tobytes() not in stored
    assert fp16_codes(vectors[7:8]).tobytes() not in b"".join(index._blocks[0].screen_codes())


@pytest.mark.parametrize("screen", [True, False])
def test_bucket_index_in_cell_mode_follows_deletions_and_insertions_exactly(screen: bool) -> None:
    rng = np.random.default_rng(6)
    base = normalize_rows(rng.standard_normal((15, DIM)))
    vectors = base[rng.integers(0, 15, 120)]  # duplicates: tied scores
    ids = [f"m{i:03d}" for i in range(120)]
    labels = (np.arange(120) % 2).astype(np.int64)
    options = {"seed": 3, "cells": 5, "nprobe": 2, "exact_below": 20, "screen": screen}

    def built(alive: list[int]) -> BucketIndex:
        chosen = [ids[i] for i in alive]
        return BucketIndex.build(
            2, "similar", DIM, chosen, labels[alive], labels[alive], vectors[alive],
            id_hashes=id_hash64(3, chosen), **options,
        )  # fmt: skip

    index = built(list(range(120)))
    alive = list(range(120))
    queries = [*base, *normalize_rows(rng.standard_normal((5, DIM)))]
    for step, victim in enumerate(rng.permutation(120)[:90].tolist()):
        index.remove(ids[victim], int(labels[victim]), 0)
        alive.remove(victim)
        if step % 3 == 0:  # and put one back now and then
            index.add(ids[victim], int(labels[victim]), 0, vectors[victim])
            alive.append(victim)
        fresh_index = built(sorted(alive))
        assert [index.pick(0, q) for q in queries] == [fresh_index.pick(0, q) for q in queries]


def _screened_scores(rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """FAISS's float16 scores of `rows` against `query`, in row order."""
    screen = Fp16Screen(rows.shape[1], 1)
    screen.extend(0, rows)
    scores, labels = screen._index.search_preassigned(
        query[None, :], len(rows), np.zeros((1, 1), np.int64), np.zeros((1, 1), np.float32)
    )
    out = np.empty(len(rows))
    out[labels[0]] = scores[0]
    return out


unit_rows = st.integers(0, 2**32 - 1).map(
    lambda seed: normalize_rows(
        # heavy-tailed coordinates: some in float16's subnormal range, some near 1
        np.random.default_rng(seed).standard_normal((20, 384))
        * np.random.default_rng(seed + 1).choice([1.0, 1e-6, 1e-3, 30.0], size=(20, 384))
    )
)


@settings(max_examples=60, deadline=None)
@given(rows=unit_rows, which=st.integers(0, 19))
def test_screened_scores_stay_within_the_proven_slack(rows: np.ndarray, which: int) -> None:
    query = rows[which]
    screened = _screened_scores(rows, query)
    q64 = query.astype(np.float64)
    for row, score in zip(rows, screened, strict=True):
        assert abs(score - exact_dot(row, q64)) <= screen_slack(384)


def test_screen_slack_is_not_vacuous() -> None:
    # float16 codes do move scores: by more than float32's bound, less than the screen's
    rng = np.random.default_rng(8)
    rows = normalize_rows(rng.standard_normal((500, 384)))
    query = normalize_rows(rng.standard_normal((1, 384)))[0]
    q64 = query.astype(np.float64)
    error = max(
        abs(s - exact_dot(r, q64)) for r, s in zip(rows, _screened_scores(rows, query), strict=True)
    )
    assert 2.0**-20 < error <= screen_slack(384) / 4


def test_many_tied_members_are_all_screened_and_the_smallest_id_wins() -> None:
    # 300 copies of one vector outnumber the screen's first FAISS k: it must widen its search
    rng = np.random.default_rng(9)
    others = normalize_rows(rng.standard_normal((200, DIM)))
    twin = normalize_rows(rng.standard_normal((1, DIM)))[0]
    data = {f"o{i:03d}": v for i, v in enumerate(others)}
    data.update({f"t{i:03d}": twin for i in range(300)})
    screened = fresh(data, cells=8, nprobe=8, exact_below=100)
    plain = fresh(data, cells=8, nprobe=8, exact_below=100, screen=False)
    q64 = twin.astype(np.float64)
    assert screened.best(twin, q64) == plain.best(twin, q64) == exact_best(data, twin)
    lists = list(screened._slot.values())
    assert len(screened._screen.candidates(twin, lists, len(data))) >= 300


class _ResizeWatch:
    """InvertedLists stand-in that records, at every resize, whether the list's bytes were
    already zero (what C++ frees or leaves behind must hold no code)."""

    def __init__(self, screen: Fp16Screen) -> None:
        self.inner = screen._lists
        self.screen = screen
        self.zero_before: list[tuple[int, bool]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def resize(self, list_no: int, size: int) -> None:
        old = self.inner.list_size(list_no)
        codes = self.screen._codes(list_no, old)
        region = codes if size > old else codes[size:]  # growing may free the whole buffer
        self.zero_before.append((size, not region.any()))
        self.inner.resize(list_no, size)


def test_a_growing_list_zeroes_its_old_buffer_and_a_shrinking_one_its_tail() -> None:
    rng = np.random.default_rng(10)
    rows = normalize_rows(rng.standard_normal((40, DIM)))
    screen = Fp16Screen(DIM, 2)
    screen.extend(1, rows[:8])
    watch = _ResizeWatch(screen)
    screen._lists = watch
    screen.extend(1, rows[8:9])  # full: C++ moves it to a larger buffer, frees the old one
    # a larger buffer (capacity 10) was taken with every old byte zero; then the 9 rows
    assert watch.zero_before == [(10, True), (9, True)]
    screen.swap_remove(1, 0)  # row 0 takes the last row; the freed last row is zeroed
    assert watch.zero_before[-1] == (8, True)
    live = screen._codes(1, 8)
    capacity = screen._codes(1, screen._capacity[1])
    assert np.array_equal(live[0], fp16_codes(rows[8:9])[0])
    assert not capacity[8:].any()
    assert fp16_codes(rows[:1]).tobytes() not in capacity.tobytes()
    assert screen.nbytes() == 10 * (2 * DIM + 8)  # list 1 at capacity 10: codes and labels

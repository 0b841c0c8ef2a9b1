"""ERASEExampleSelector: the guarantees through the LangChain adapter, with fake embeddings."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_erase import (
    DeletionReceipt,
    DuplicateExampleError,
    ERASEExampleSelector,
    InvalidParameterError,
    UnknownExampleError,
    default_example_id,
)
from langchain_erase.core.hashing import keyed_hash64

EMB = DeterministicFakeEmbedding(size=24)
QUERIES = [{"input": q} for q in ("alpha", "beta gamma", "a", "zz top", "the end")]
MODES = ["random", "centroid", "similar", "fixed", "knn", "mmr"]


def build(
    examples: list[dict[str, str]], mode: str, seed: int = 0, **kw: object
) -> ERASEExampleSelector:
    if mode == "mmr":  # fewer candidates than examples, so fetch_k's cut is exercised too
        kw = {"fetch_k": 4, "lambda_mult": 0.3, **kw}
    return ERASEExampleSelector.from_examples(
        examples,
        EMB,
        k=kw.pop("k", 3),
        epsilon=kw.pop("epsilon", 0.5),
        seed=seed,  # type: ignore[arg-type]
        input_keys=["input"],
        selection=mode,
        **kw,  # type: ignore[arg-type]
    )


def same(a: ERASEExampleSelector, b: ERASEExampleSelector) -> None:
    assert a.state_digest() == b.state_digest()
    assert a.ids == b.ids
    for q in QUERIES:
        assert a.select_examples(q) == b.select_examples(q)


words = st.sampled_from(["cat", "dog", "sun", "moon", "red", "blue", "a b", "x"])
example_st = st.builds(lambda i, o: {"input": i, "output": o}, words, st.text("abc", max_size=3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(example_st, max_size=14, unique_by=default_example_id),
    st.lists(example_st, max_size=4, unique_by=default_example_id),
    st.sampled_from(MODES),
    st.integers(0, 1000),
    st.integers(1, 5),
    st.data(),
)
def test_any_delete_insert_sequence_equals_a_fresh_fit(  # type: ignore[no-untyped-def]
    initial, extra, mode, seed, k, data
) -> None:
    sel = build(initial, mode, seed, k=k)
    current = {default_example_id(e): e for e in initial}
    for e in extra:
        if default_example_id(e) in current:
            continue
        if current and data.draw(st.booleans()):
            victim = data.draw(st.sampled_from(sorted(current)))
            receipt = sel.delete_example(victim)
            assert receipt.example_id == victim and receipt.digest_after == sel.state_digest()
            del current[victim]
        sel.add_example(e)
        current[default_example_id(e)] = e
        shuffled = list(current.values())
        np.random.default_rng(len(shuffled)).shuffle(shuffled)
        same(sel, build(shuffled, mode, seed, k=k))
    assert sel.verify()


@pytest.mark.parametrize("mode", MODES)
def test_real_task_deletions_match_fresh_fit_and_never_select_deleted(
    mode: str, sentiment_examples: list[dict[str, str]]
) -> None:
    pool = sentiment_examples[:120]
    sel = build(pool, mode, k=4)
    deleted: set[str] = set()
    for victim in sel.ids[::7]:
        receipt = sel.delete_example(victim)
        assert isinstance(receipt, DeletionReceipt) and receipt.seconds >= 0
        deleted.add(victim)
        for q in QUERIES:
            picked = {default_example_id(e) for e in sel.select_examples(q)}
            assert not picked & deleted
    remaining = [e for e in pool if default_example_id(e) not in deleted]
    same(sel, build(remaining[::-1], mode, k=4))


def test_constant_time_path_is_taken_on_real_data(sentiment_examples: list[dict[str, str]]) -> None:
    sel = build(sentiment_examples, "random", k=4, epsilon=0.25)
    receipts = sel.delete_examples(sel.ids[:40])
    assert sum(not r.refit for r in receipts) >= 30
    assert all(r.reason == "none" for r in receipts if not r.refit)
    assert sel.verify()


def test_selection_returns_one_example_per_nonempty_bucket_and_respects_example_keys() -> None:
    examples = [{"input": f"w{i}", "output": f"o{i}", "note": "n"} for i in range(30)]
    sel = ERASEExampleSelector.from_examples(
        examples, EMB, k=4, input_keys=["input"], example_keys=["input", "output"]
    )
    picks = sel.select_examples({"input": "hello"})
    assert len(picks) == sum(1 for b in sel.buckets() if b) == 4
    assert all(set(p) == {"input", "output"} for p in picks)
    picks[0]["input"] = "mutated"
    assert "mutated" not in {e["input"] for e in sel.select_examples({"input": "hello"})}


def test_fewer_examples_than_k_and_empty_selector() -> None:
    sel = build([{"input": "only", "output": "one"}], "random", k=5)
    assert len(sel.select_examples({"input": "q"})) == 1
    sel.delete_example(sel.ids[0])
    assert len(sel) == 0 and sel.select_examples({"input": "q"}) == []
    empty = ERASEExampleSelector(EMB, selection="similar")
    assert empty.select_examples({"input": "q"}) == []


def test_ids_get_example_and_typed_errors_leave_state_unchanged() -> None:
    sel = build([{"input": "a", "output": "1"}, {"input": "b", "output": "2"}], "centroid")
    eid = sel.add_example({"input": "c", "output": "3"})
    assert eid == default_example_id({"input": "c", "output": "3"}) and eid in sel.ids
    assert sel.get_example(eid) == {"input": "c", "output": "3"}
    before = sel.state_digest()
    with pytest.raises(DuplicateExampleError):
        sel.add_example({"input": "c", "output": "3"})
    with pytest.raises(UnknownExampleError):
        sel.delete_example("missing")
    with pytest.raises(KeyError):  # UnknownExampleError is a KeyError
        sel.get_example("missing")
    with pytest.raises(UnknownExampleError):
        sel.delete_examples([eid, "missing"])
    assert sel.state_digest() == before and eid in sel.ids


def test_custom_ids_and_batch_duplicates() -> None:
    sel = ERASEExampleSelector(EMB, k=2)
    assert sel.add_examples([{"input": "a"}, {"input": "b"}], ids=["x", "y"]) == ["x", "y"]
    with pytest.raises(DuplicateExampleError):
        sel.add_examples([{"input": "c"}, {"input": "d"}], ids=["z", "z"])
    assert sel.ids == ["x", "y"]


async def test_async_api_matches_sync() -> None:
    sel = ERASEExampleSelector(EMB, k=2, input_keys=["input"])
    eid = await sel.aadd_example({"input": "hello", "output": "hi"})
    await sel.aadd_examples([{"input": "bye", "output": "ciao"}])
    assert await sel.aselect_examples({"input": "x"}) == sel.select_examples({"input": "x"})
    receipt = await sel.adelete_example(eid)
    assert receipt.example_id == eid and eid not in sel.ids
    results = await asyncio.gather(*(sel.aselect_examples(q) for q in QUERIES))
    assert all(len(r) == 1 for r in results)
    receipts = await sel.adelete_examples(sel.ids)
    assert len(receipts) == 1 and len(sel) == 0


def test_deletion_listeners_see_each_deleted_example_after_the_change() -> None:
    sel = build([{"input": f"w{i}", "output": str(i)} for i in range(12)], "random")
    seen: list[tuple[str, dict[str, str], bool]] = []
    sel.add_deletion_listener(lambda i, e: seen.append((i, e, i in sel.ids)))
    victims = sel.ids[:3]
    sel.delete_examples(victims)
    assert [v for v, _, _ in seen] == victims
    assert all(e["input"].startswith("w") and not still_there for _, e, still_there in seen)

    def broken(_i: str, _e: dict[str, str]) -> None:
        raise RuntimeError("cache unavailable")

    sel.add_deletion_listener(broken)
    victim = sel.ids[0]
    with pytest.raises(RuntimeError):
        sel.delete_example(victim)
    assert victim not in sel.ids and sel.verify()  # the deletion itself is done


@pytest.mark.parametrize("seed", [0, 7])
def test_fixed_mode_shows_each_buckets_smallest_keyed_hash_to_every_query(seed: int) -> None:
    pool = [{"input": f"w{i} {'ab'[i % 2]}", "output": str(i)} for i in range(30)]
    sel = build(pool, "fixed", seed=seed, k=4)
    expected = [
        sel.get_example(min(bucket, key=lambda i: keyed_hash64(seed, "fixed", i)))
        for bucket in sel.buckets()
        if bucket
    ]
    assert all(sel.select_examples(q) == expected for q in QUERIES)


@pytest.mark.parametrize("mode", ["random", "similar", "knn"])
def test_a_bulk_add_of_a_tenth_is_one_refit_and_equals_a_fresh_fit(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """100k onto 1M in miniature: a batch of a tenth of the result refits once (checking each
    new example alone costs far more than one refit) and is still exactly a fresh fit."""
    examples = [{"input": f"w{i} x{i % 7}", "output": str(i)} for i in range(440)]
    grown = build(examples[:400], mode)
    with caplog.at_level(logging.INFO, logger="langchain_erase"):
        grown.add_examples(examples[400:])
    assert "fitted 40 new examples at once" in caplog.text  # not 40 checked insertions
    same(grown, build(examples, mode))
    assert grown.verify()


def test_similar_screen_changes_no_selection_and_holds_through_deletions() -> None:
    # one bucket (k = 1) of 17,000 members: above the 16,384 at which cells (and the float16
    # FAISS screen) take over from the exact scan
    rng = np.random.default_rng(12)
    base = rng.standard_normal((400, 24)).astype(np.float32)
    vectors = base[rng.integers(0, 400, 17_000)] + 0.05 * rng.standard_normal((17_000, 24))
    examples = [{"input": f"doc {i}"} for i in range(17_000)]

    def fit(screen: bool, rows: list[int]) -> ERASEExampleSelector:
        return ERASEExampleSelector.from_examples(
            [examples[r] for r in rows],
            EMB,
            k=1,
            input_keys=["input"],
            selection="similar",
            vectors=vectors[rows],
            similar_screen=screen,
        )

    everyone = list(range(17_000))
    screened, plain = fit(True, everyone), fit(False, everyone)
    assert screened.view().screen_nbytes >= 17_000 * (2 * 24 + 8)
    assert plain.view().screen_nbytes == 0
    queries = [{"input": f"query {i}"} for i in range(40)]
    picks = [screened.select_examples(q) for q in queries]
    assert picks == [plain.select_examples(q) for q in queries]
    for victim in {p["input"] for pick in picks for p in pick}:  # the picked ones leave
        screened.delete_example(default_example_id({"input": victim}))
    kept = [r for r in everyone if examples[r]["input"] not in {p[0]["input"] for p in picks}]
    fresh = fit(False, kept)
    assert screened.state_digest() == fresh.state_digest()
    assert [screened.select_examples(q) for q in queries] == [
        fresh.select_examples(q) for q in queries
    ]


def test_similar_screen_is_checked_and_is_no_part_of_the_stored_parameters(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidParameterError, match="similar_screen must be True or False"):
        ERASEExampleSelector(EMB, selection="similar", similar_screen=1)  # type: ignore[arg-type]
    path = tmp_path / "s.db"
    sel = ERASEExampleSelector.open(path, EMB, selection="similar", input_keys=["input"])
    sel.add_examples([{"input": "a"}, {"input": "b"}])
    digest = sel.state_digest()
    sel.close()
    # a process short of memory may reopen the same store without the screen
    again = ERASEExampleSelector.open(path, EMB, similar_screen=False)
    assert again.state_digest() == digest and again.view().similar_screen is False
    again.close()

"""selection="knn" / "mmr": LangChain's similarity selectors' answers, exactly unlearnable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.example_selectors import (
    MaxMarginalRelevanceExampleSelector,
    SemanticSimilarityExampleSelector,
)
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_erase import ERASEExampleSelector, InvalidParameterError, default_example_id

EMB = DeterministicFakeEmbedding(size=64)
QUERIES = ["a great movie", "terrible acting", "I fell asleep", "loved every minute", "meh"]


def erase(pool: list[dict[str, str]], mode: str, **kw: Any) -> ERASEExampleSelector:
    kw.setdefault("k", 4)
    return ERASEExampleSelector.from_examples(pool, EMB, input_keys=["input"], selection=mode, **kw)


def test_knn_selects_what_semantic_similarity_selector_selects(
    sentiment_examples: list[dict[str, str]],
) -> None:
    pool = sentiment_examples[:200]
    ours = erase(pool, "knn")
    theirs = SemanticSimilarityExampleSelector.from_examples(
        pool, EMB, InMemoryVectorStore, k=4, input_keys=["input"]
    )
    for query in QUERIES:
        assert ours.select_examples({"input": query}) == theirs.select_examples({"input": query})


@pytest.mark.parametrize("lambda_mult", [0.5, 0.9])
def test_mmr_selects_what_max_marginal_relevance_selector_selects(
    sentiment_examples: list[dict[str, str]], lambda_mult: float
) -> None:
    pool = sentiment_examples[:200]
    ours = erase(pool, "mmr", fetch_k=12, lambda_mult=lambda_mult)
    store = InMemoryVectorStore.from_texts(
        [e["input"] for e in pool], EMB, metadatas=[dict(e) for e in pool]
    )
    for query in QUERIES:
        docs = store.max_marginal_relevance_search(query, k=4, fetch_k=12, lambda_mult=lambda_mult)
        assert ours.select_examples({"input": query}) == [d.metadata for d in docs]
    if lambda_mult == 0.5:  # LangChain's selector with its defaults (fetch_k=20)
        theirs = MaxMarginalRelevanceExampleSelector.from_examples(
            pool, EMB, InMemoryVectorStore, k=4, input_keys=["input"]
        )
        default = erase(pool, "mmr")
        for query in QUERIES:
            expected = theirs.select_examples({"input": query})
            assert default.select_examples({"input": query}) == expected


def test_k_examples_over_all_members_and_deleted_ones_never_return(
    sentiment_examples: list[dict[str, str]],
) -> None:
    pool = sentiment_examples[:120]
    for mode in ("knn", "mmr"):
        sel = erase(pool, mode, k=3)
        picks = sel.select_with_ids({"input": "a fine film"})
        assert len(picks) == 3 and all(p.bucket is None for p in picks)
        assert len(sel.select_with_ids({"input": "a fine film"}, k=7)) == 7
        receipts = sel.delete_examples([p.id for p in picks])
        assert all(r.digest_after for r in receipts) and sel.verify()
        again = {p.id for p in sel.select_with_ids({"input": "a fine film"}, k=50)}
        assert not again & {p.id for p in picks}
        rest = [e for e in pool if default_example_id(e) not in {p.id for p in picks}]
        fresh = erase(rest[::-1], mode, k=3)
        assert fresh.state_digest() == sel.state_digest()
        assert fresh.select_examples({"input": "a fine film"}) == sel.select_examples(
            {"input": "a fine film"}
        )


def test_mmr_parameters_are_checked_stored_and_part_of_the_state(tmp_path: Path) -> None:
    pool = [{"input": f"w{i}", "output": str(i)} for i in range(30)]
    for bad in ({"fetch_k": 0}, {"fetch_k": 2.5}, {"lambda_mult": 1.5}, {"lambda_mult": "x"}):
        with pytest.raises(InvalidParameterError):
            erase(pool, "mmr", **bad)
    with pytest.raises(InvalidParameterError, match="only to selection='mmr'"):
        erase(pool, "knn", fetch_k=10)
    assert erase(pool, "mmr").state_digest() == erase(pool, "mmr", fetch_k=20).state_digest()
    assert erase(pool, "mmr").state_digest() != erase(pool, "mmr", lambda_mult=0.3).state_digest()
    path = tmp_path / "mmr.db"
    sel = ERASEExampleSelector.open(path, EMB, selection="mmr", fetch_k=8, input_keys=["input"])
    sel.add_examples(pool)
    digest = sel.state_digest()
    sel.close()
    again = ERASEExampleSelector.open(path, EMB)  # parameters come from the store
    assert again.state_digest() == digest
    again.close()
    with pytest.raises(InvalidParameterError, match="fetch_k=8"):
        ERASEExampleSelector.open(path, EMB, selection="mmr", fetch_k=9)


async def test_afrom_examples_builds_the_same_selector() -> None:
    pool = [{"input": f"w{i}", "output": str(i)} for i in range(25)]
    built = await ERASEExampleSelector.afrom_examples(
        pool, EMB, k=3, input_keys=["input"], selection="mmr", fetch_k=6
    )
    assert built.state_digest() == erase(pool, "mmr", k=3, fetch_k=6).state_digest()
    with pytest.raises(InvalidParameterError):
        await ERASEExampleSelector.afrom_examples(pool, EMB, selection="nope")


@pytest.mark.parametrize("mode", ["knn", "mmr"])
def test_two_selectors_on_one_store_agree_after_a_deletion(mode: str, tmp_path: Path) -> None:
    pool = [{"input": f"word {i}", "output": str(i)} for i in range(60)]
    path = tmp_path / "shared.db"
    writer = ERASEExampleSelector.open(path, EMB, k=3, input_keys=["input"], selection=mode)
    writer.add_examples(pool)
    reader = ERASEExampleSelector.open(path, EMB)  # another opener of the same set
    query = {"input": "word 7"}
    picked = reader.select_with_ids(query)
    writer.delete_examples([p.id for p in picked])
    after = reader.select_with_ids(query)  # strong consistency: catches up first
    assert not {p.id for p in after} & {p.id for p in picked}
    assert reader.state_digest() == writer.state_digest() and reader.verify()
    rest = [e for e in pool if default_example_id(e) not in {p.id for p in picked}]
    assert after == erase(rest, mode, k=3).select_with_ids(query)
    writer.close()
    reader.close()

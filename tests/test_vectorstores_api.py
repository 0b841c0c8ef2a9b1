"""`ERASEVectorStore` behaviour: retriever contract, filter semantics, upserts and receipts,
refusals, the cell index against exact search, and stores shared between openers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from langchain_erase import (
    EmbeddingError,
    EmbeddingModelMismatchError,
    ERASEExampleSelector,
    ERASEVectorStore,
    InvalidExampleError,
    InvalidParameterError,
    StateFileError,
)
from langchain_erase.receipts import DeletionReceipt

DIM = 16
WORDS = [f"w{i}" for i in range(30)]


def fake() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=DIM)


class Axis(Embeddings):
    """2-d embeddings chosen by text, to build exact geometric cases."""

    VECTORS: ClassVar[dict[str, list[float]]] = {
        "q": [1.0, 0.0],
        "near": [0.99, 0.14],
        "twin": [0.99, 0.141],
        "far": [0.0, 1.0],
        "opposite": [-1.0, 0.05],
    }

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.VECTORS[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.VECTORS[text]


def axis_store() -> ERASEVectorStore:
    texts = ["near", "twin", "far", "opposite"]
    metas = [{"kind": "a"}, {"kind": "a"}, {"kind": "b"}, {"kind": "b"}]
    return ERASEVectorStore.from_texts(texts, Axis(), metas, ids=texts, p=2)


# ------------------------------------------------------------------------- retriever
def test_retriever_honours_k_and_search_types() -> None:
    store = axis_store()
    similar = store.as_retriever(search_kwargs={"k": 2}).invoke("q")
    assert [d.id for d in similar] == ["near", "twin"]
    assert len(store.as_retriever().invoke("q")) == 4  # LangChain's default k
    # MMR with diversity weight: the near-duplicate twin loses to a different document
    mmr = store.as_retriever(
        search_type="mmr", search_kwargs={"k": 2, "fetch_k": 4, "lambda_mult": 0.1}
    ).invoke("q")
    assert mmr[0].id == similar[0].id and mmr[1].id != similar[1].id
    assert mmr == store.max_marginal_relevance_search("q", k=2, fetch_k=4, lambda_mult=0.1)
    threshold = store.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"k": 4, "score_threshold": 0.5}
    ).invoke("q")
    assert {d.id for d in threshold} == {"near", "twin"}
    filtered = store.as_retriever(search_kwargs={"k": 1, "filter": {"kind": "b"}}).invoke("q")
    assert [d.id for d in filtered] == ["far"]


@pytest.mark.parametrize(
    ("search_type", "kwargs"),
    [
        ("similarity", {"kk": 2}),
        ("similarity", {"fetch_k": 10}),
        ("similarity", {"score_threshold": 0.2}),
        ("mmr", {"score_threshold": 0.2}),
        ("similarity_score_threshold", {"score_threshold": 0.2, "lambda_mult": 0.5}),
    ],
)
def test_retriever_refuses_unknown_search_kwargs(search_type: str, kwargs: dict) -> None:
    with pytest.raises(ValueError, match="not read by search_type"):
        axis_store().as_retriever(search_type=search_type, search_kwargs=kwargs)


def test_retriever_refuses_call_kwargs_and_non_string_queries() -> None:
    retriever = axis_store().as_retriever()
    with pytest.raises(InvalidParameterError, match="not read"):
        retriever.invoke("q", kk=3)
    for query in ({"q": 1}, 3, None, ["q"]):
        with pytest.raises(InvalidParameterError, match="must be a string"):
            retriever.invoke(query)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="score_threshold"):
        axis_store().as_retriever(search_type="similarity_score_threshold")
    with pytest.raises(ValueError, match="not allowed"):
        axis_store().as_retriever(search_type="random")


async def test_retriever_async_refuses_non_string_query() -> None:
    retriever = axis_store().as_retriever(search_kwargs={"k": 1})
    assert [d.id for d in await retriever.ainvoke("far")] == ["far"]
    with pytest.raises(InvalidParameterError):
        await retriever.ainvoke(7)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ filter
def test_filter_is_canonical_json_equality() -> None:
    store = ERASEVectorStore(fake())
    metas = [{"v": 1}, {"v": 1.0}, {"v": True}, {"v": [1, 2]}, {"v": {"x": 1}}, {}]
    store.add_texts([f"t{i}" for i in range(len(metas))], metas, ids=[str(i) for i in range(6)])

    def ids(spec: object) -> set[str]:
        return {d.id for d in store.similarity_search("t0", k=10, filter=spec)}  # type: ignore[arg-type,misc]

    assert ids({"v": 1}) == {"0"}
    assert ids({"v": 1.0}) == {"1"}
    assert ids({"v": True}) == {"2"}
    assert ids({"v": [1, 2]}) == {"3"}
    assert ids({"v": {"x": 1}}) == {"4"}
    assert ids({"x": 1}) == set()  # nested keys are not top-level keys
    assert ids({}) == {str(i) for i in range(6)}
    assert ids(lambda d: d.metadata == {}) == {"5"}
    with pytest.raises(InvalidParameterError):
        ids("v = 1")


def test_filtered_search_is_exact_over_matches() -> None:
    """The k best matching documents, even where none is among the k best overall."""
    store = ERASEVectorStore(fake())
    texts = [f"doc {i}" for i in range(60)]
    store.add_texts(texts, [{"odd": i % 7 == 3} for i in range(60)], ids=texts)
    query = np.asarray(fake().embed_query("doc 1"), dtype=np.float64)
    vectors = np.asarray(fake().embed_documents(texts), dtype=np.float64)
    scores = vectors @ query / np.linalg.norm(vectors, axis=1) / np.linalg.norm(query)
    matching = [i for i in range(60) if i % 7 == 3]
    best = sorted(matching, key=lambda i: -scores[i])[:3]
    found = store.similarity_search("doc 1", k=3, filter={"odd": True})
    assert [d.id for d in found] == [texts[i] for i in best]


# ---------------------------------------------------------------- writes and receipts
def test_upsert_replaces_with_a_receipt_and_same_content_twice_is_two_documents() -> None:
    store = ERASEVectorStore(fake())
    receipts: list[DeletionReceipt] = []
    store.add_deletion_listener(receipts.append)
    store.add_texts(["same", "same"], ids=["a", "b"])
    assert len(store) == 2
    before = store.state_digest()
    store.add_texts(["changed"], [{"v": 2}], ids=["a"])
    assert [r.example_id for r in receipts] == ["a"] and receipts[0].digest_before == before
    assert store.get_by_ids(["a", "b", "zz"]) == [
        Document(id="a", page_content="changed", metadata={"v": 2}),
        Document(id="b", page_content="same"),
    ]
    fresh = ERASEVectorStore.from_texts(["same", "changed"], fake(), [{}, {"v": 2}], ids=["b", "a"])
    assert store.state_digest() == fresh.state_digest()


def test_delete_skips_missing_ids_and_returns_receipts() -> None:
    store = ERASEVectorStore.from_texts(["x", "y"], fake(), ids=["1", "2"])
    assert store.delete(["nope"]) is True
    receipts = store.delete_with_receipts(["2", "nope", "2"])
    assert [r.example_id for r in receipts] == ["2"]
    assert receipts[0].digest_after == store.state_digest()
    assert receipts[0].position is None and receipts[0].erasure_complete
    with pytest.raises(InvalidParameterError):
        store.delete()
    with pytest.raises(InvalidParameterError):
        store.delete("1")  # type: ignore[arg-type]


def test_refusals_leave_the_store_unchanged() -> None:
    store = ERASEVectorStore.from_texts(["x"], fake(), ids=["1"])
    digest = store.state_digest()
    with pytest.raises(InvalidExampleError):
        store.add_texts(["y"], [{"when": object()}])
    with pytest.raises(InvalidExampleError):
        store.add_texts(["y", "z"], ids=["2", "2"])
    with pytest.raises(InvalidExampleError):
        store.add_texts(["y"], [{}, {}])
    with pytest.raises(EmbeddingError):
        store.add_embeddings(["y"], [[0.0] * DIM])
    with pytest.raises(EmbeddingError):
        store.add_embeddings(["y"], [[1.0] * (DIM + 1)])
    with pytest.raises(InvalidParameterError):
        store.similarity_search("x", k=0)
    with pytest.raises(InvalidParameterError):
        store.similarity_search("x", fetch_k=3)
    with pytest.raises(EmbeddingError):
        store.similarity_search_by_vector([1.0, 2.0])
    with pytest.raises(InvalidParameterError):
        ERASEVectorStore(fake(), nprobe=10, cells=5)
    with pytest.raises(InvalidParameterError):
        ERASEVectorStore(fake(), colour="red")
    assert store.state_digest() == digest and len(store) == 1


async def test_async_twins() -> None:
    store = await ERASEVectorStore.afrom_texts(["a b", "c d"], fake(), ids=["1", "2"])
    await store.aadd_documents([Document(page_content="e f", metadata={"s": 1}, id="3")])
    assert [d.id for d in await store.asimilarity_search("e f", k=1)] == ["3"]
    assert [d.id for d in await store.amax_marginal_relevance_search("a b", k=1)] == ["1"]
    assert [d.id for d in await store.aget_by_ids(["2"])] == ["2"]
    await store.adelete(["3"])
    assert len(store) == 2 and store.verify()


# ------------------------------------------------------------------------ cell index
def test_cells_read_every_cell_equals_exact_search() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((300, DIM)).astype(np.float32)
    texts = [f"t{i}" for i in range(300)]
    exact = ERASEVectorStore(fake())
    every = ERASEVectorStore(fake(), exact_below=40, cells=12, nprobe=12)
    few = ERASEVectorStore(fake(), exact_below=40, cells=12, nprobe=1)
    for store in (exact, every, few):
        store.add_embeddings(texts, vectors, ids=texts)
    queries = rng.standard_normal((40, DIM)).tolist()
    answers = {
        name: [store.similarity_search_by_vector(q, k=5) for q in queries]
        for name, store in (("exact", exact), ("every", every), ("few", few))
    }
    assert answers["every"] == answers["exact"]
    assert answers["few"] != answers["exact"]  # one cell of 12: the knob matters
    gone = texts[::7]
    few.delete(gone)
    rebuilt = ERASEVectorStore(fake(), exact_below=40, cells=12, nprobe=1)
    keep = [i for i in range(300) if texts[i] not in set(gone)]
    rebuilt.add_embeddings([texts[i] for i in keep], vectors[keep], ids=[texts[i] for i in keep])
    assert few.state_digest() == rebuilt.state_digest()
    assert [few.similarity_search_by_vector(q, k=5) for q in queries] == [
        rebuilt.similarity_search_by_vector(q, k=5) for q in queries
    ]


# ----------------------------------------------------------------------------- stores
def test_store_is_shared_and_refuses_mismatches(tmp_path: Path) -> None:
    path = tmp_path / "docs.db"
    writer = ERASEVectorStore.open(path, fake(), nprobe=8)
    reader = ERASEVectorStore.open(path, fake())
    assert reader.params.nprobe == 8
    writer.add_texts(["alpha", "beta"], [{"s": "a"}, {"s": "b"}], ids=["a", "b"])
    assert [d.id for d in reader.similarity_search("beta", k=1)] == ["b"]
    receipt = writer.delete_with_receipts(["b"])[0]
    assert receipt.position == 3
    assert [d.id for d in reader.similarity_search("beta", k=2)] == ["a"]  # strong reads
    assert reader.state_digest() == writer.state_digest() == receipt.digest_after
    with pytest.raises(InvalidParameterError, match="nprobe"):
        ERASEVectorStore.open(path, fake(), nprobe=9)
    with pytest.raises(EmbeddingModelMismatchError):
        ERASEVectorStore.open(path, DeterministicFakeEmbedding(size=DIM + 1))
    selector = ERASEExampleSelector.open(tmp_path / "sel.db", fake())
    selector.close()
    with pytest.raises(StateFileError, match="not an ERASEVectorStore"):
        ERASEVectorStore.open(tmp_path / "sel.db", fake())
    reader.close()
    with pytest.raises(StateFileError):
        reader.similarity_search("alpha")
    writer.close()


def test_eventual_consistency_follows_the_log(tmp_path: Path) -> None:
    path = tmp_path / "docs.db"
    writer = ERASEVectorStore.open(path, fake())
    follower = ERASEVectorStore.open(path, fake(), consistency="eventual")
    try:
        writer.add_texts(["alpha", "beta"], ids=["a", "b"])
        writer.delete(["a"])
        deadline = time.monotonic() + 30
        while follower.session.position != 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert follower.session.position == 3
        assert [d.id for d in follower.similarity_search("alpha", k=2)] == ["b"]
        assert follower.state_digest() == writer.state_digest()
    finally:
        follower.close()
        writer.close()


@pytest.mark.parametrize("params", [{}, {"exact_below": 20, "cells": 4, "nprobe": 2}])
def test_deleted_vectors_leave_no_bytes_in_memory(params: dict[str, int]) -> None:
    rng = np.random.default_rng(9)
    vectors = rng.standard_normal((60, DIM)).astype(np.float32)
    texts = [f"t{i}" for i in range(60)]
    store = ERASEVectorStore(fake(), **params)
    store.add_embeddings(texts, vectors, ids=texts)
    index = store.session.index
    _, stored = store.rows()
    gone = texts[::5]  # cell centers among them in cell mode
    rows = {t: stored[n].tobytes() for n, t in enumerate(sorted(texts)) if t in gone}
    assert all(row in index.vector_memory() for row in rows.values())
    store.delete(gone)
    memory = index.vector_memory()
    assert not any(row in memory for row in rows.values())
    assert not any(index.remembers(t) for t in gone)

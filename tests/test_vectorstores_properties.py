"""The guarantee for `ERASEVectorStore`: after any sequence of adds, upserts and deletes the
store equals a fresh build of what remains (state digest, and the answer to every query:
similarity with scores, MMR, filtered search), in memory, on SQLite and on PostgreSQL;
exact search and keyed-sample cells alike."""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_erase import ERASEVectorStore

DIM = 8
#: exact scan throughout; cells from the 6th document on (a few cells, few probed).
PARAMS = [{}, {"exact_below": 6, "cells": 3, "nprobe": 1, "seed": 5}]
QUERIES = ["w1", "w4 w7", "w9", "nothing alike"]

ids_st = st.sampled_from([f"d{i}" for i in range(14)])
words_st = st.lists(st.sampled_from([f"w{i}" for i in range(10)]), min_size=1, max_size=3)
add_st = st.tuples(
    st.just("add"),
    st.lists(st.tuples(ids_st, words_st, st.sampled_from(["a", "b"])), min_size=1, max_size=5),
)
delete_st = st.tuples(st.just("delete"), st.lists(ids_st, min_size=1, max_size=4))
ops_st = st.lists(st.one_of(add_st, delete_st), min_size=1, max_size=10)


def _apply(store: ERASEVectorStore, model: dict[str, tuple[str, str]], op: Any) -> None:
    kind, payload = op
    if kind == "delete":
        store.delete(payload)
        for doc_id in payload:
            model.pop(doc_id, None)
        return
    batch = {doc_id: (" ".join(words), group) for doc_id, words, group in payload}
    ids = list(batch)
    store.add_texts([batch[i][0] for i in ids], [{"group": batch[i][1]} for i in ids], ids=ids)
    model.update(batch)


def _fresh(model: dict[str, tuple[str, str]], params: dict[str, Any]) -> ERASEVectorStore:
    ids = list(model)
    random.Random(len(ids)).shuffle(ids)  # a fresh build in another order
    return ERASEVectorStore.from_texts(
        [model[i][0] for i in ids],
        DeterministicFakeEmbedding(size=DIM),
        [{"group": model[i][1]} for i in ids],
        ids=ids,
        **params,
    )


def answers(store: ERASEVectorStore) -> list[Any]:
    """Every kind of answer the store gives, for a few queries."""
    out: list[Any] = []
    for query in QUERIES:
        out.append(store.similarity_search_with_score(query, k=3))
        out.append(store.max_marginal_relevance_search(query, k=2, fetch_k=4, lambda_mult=0.3))
        out.append(store.similarity_search(query, k=2, filter={"group": "a"}))
    return out


def _check(store: ERASEVectorStore, model: dict[str, tuple[str, str]], params: dict[str, Any]):
    fresh = _fresh(model, params)
    assert len(store) == len(model)
    assert store.state_digest() == fresh.state_digest()
    assert answers(store) == answers(fresh)


@pytest.mark.parametrize("params", PARAMS, ids=["exact", "cells"])
@settings(max_examples=60, deadline=None)
@given(ops=ops_st)
def test_memory_equals_fresh_build(params: dict[str, Any], ops: list[Any]) -> None:
    store = ERASEVectorStore(DeterministicFakeEmbedding(size=DIM), **params)
    model: dict[str, tuple[str, str]] = {}
    for op in ops:
        _apply(store, model, op)
        _check(store, model, params)
    assert store.verify()


def _shared_store_equals_fresh_build(
    target: str | Path, params: dict[str, Any], ops: list[Any], **open_kw: Any
) -> None:
    """Apply ``ops`` through one handle; a second handle on the same store follows the log.
    Both equal a fresh build of what remains, after every step."""
    store = ERASEVectorStore.open(target, DeterministicFakeEmbedding(size=DIM), **open_kw, **params)
    other = ERASEVectorStore.open(target, DeterministicFakeEmbedding(size=DIM), **open_kw)
    model: dict[str, tuple[str, str]] = {}
    try:
        for op in ops:
            _apply(store, model, op)
            _check(other, model, params)
        _check(store, model, params)
    finally:
        store.close()
        other.close()


@pytest.mark.parametrize("params", PARAMS, ids=["exact", "cells"])
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=ops_st)
def test_sqlite_equals_fresh_build(tmp_path: Path, params: dict[str, Any], ops: list[Any]) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.db"  # hypothesis seeds `random`
    _shared_store_equals_fresh_build(path, params, ops)


@pytest.mark.parametrize("params", PARAMS, ids=["exact", "cells"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=ops_st)
def test_postgres_equals_fresh_build(
    postgres_url: str, params: dict[str, Any], ops: list[Any]
) -> None:
    name = f"docs_{uuid.uuid4().hex[:12]}"  # one set per example, in the test's database
    _shared_store_equals_fresh_build(
        postgres_url, params, ops, name=name, log_key="property-test-key"
    )

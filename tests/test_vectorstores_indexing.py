"""LangChain's indexing API (`langchain_core.indexing.index`) on `ERASEVectorStore`, in the
three cleanup modes, with `InMemoryRecordManager` and `SQLRecordManager`, on an in-memory
and a SQLite-backed store: re-indexing unchanged documents writes nothing; a dropped or
changed source loses its old chunks; the store then equals a fresh build of the surviving
chunks (digest and answers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_classic.indexes import SQLRecordManager
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.indexing import InMemoryRecordManager, RecordManager, index

from langchain_erase import ERASEVectorStore
from langchain_erase.receipts import DeletionReceipt

DIM = 12


def chunks(source: str, texts: list[str]) -> list[Document]:
    return [
        Document(page_content=t, metadata={"source": source, "n": i}) for i, t in enumerate(texts)
    ]


A = chunks("a.md", ["alpha one", "alpha two"])
B = chunks("b.md", ["beta one", "beta two", "beta three"])
C = chunks("c.md", ["gamma one"])


def _manager(kind: str, tmp_path: Path) -> RecordManager:
    namespace = f"erase/{uuid.uuid4().hex}"
    if kind == "memory":
        manager: RecordManager = InMemoryRecordManager(namespace)
    else:
        manager = SQLRecordManager(namespace, db_url=f"sqlite:///{tmp_path / 'records.db'}")
    manager.create_schema()
    return manager


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ERASEVectorStore]:
    embedding = DeterministicFakeEmbedding(size=DIM)
    if request.param == "memory":
        yield ERASEVectorStore(embedding)
        return
    opened = ERASEVectorStore.open(tmp_path / "docs.db", embedding)
    yield opened
    opened.close()


def _index(docs: list[Document], manager: RecordManager, store: Any, cleanup: str) -> dict:
    return dict(
        index(docs, manager, store, cleanup=cleanup, source_id_key="source", key_encoder="sha256")
    )


def _fresh(docs: list[Document], tmp_path: Path) -> ERASEVectorStore:
    """A fresh build of `docs` through the same API (so with the same ids)."""
    fresh = ERASEVectorStore(DeterministicFakeEmbedding(size=DIM))
    _index(docs, _manager("memory", tmp_path), fresh, "full")
    return fresh


def _same(store: ERASEVectorStore, fresh: ERASEVectorStore) -> None:
    assert store.state_digest() == fresh.state_digest()
    for query in ("alpha", "beta two", "gamma"):
        assert store.similarity_search_with_score(query, k=3) == fresh.similarity_search_with_score(
            query, k=3
        )


@pytest.mark.parametrize("manager_kind", ["memory", "sql"])
@pytest.mark.parametrize("cleanup", ["incremental", "full", "scoped_full"])
def test_index_syncs_sources(
    store: ERASEVectorStore, manager_kind: str, cleanup: str, tmp_path: Path
) -> None:
    manager = _manager(manager_kind, tmp_path)
    receipts: list[DeletionReceipt] = []
    store.add_deletion_listener(receipts.append)
    first = _index(A + B + C, manager, store, cleanup)
    assert first["num_added"] == 6 and first["num_deleted"] == 0
    digest, position = store.state_digest(), store.session.position

    again = _index(A + B + C, manager, store, cleanup)  # unchanged: nothing is written
    assert again == {"num_added": 0, "num_updated": 0, "num_skipped": 6, "num_deleted": 0}
    assert store.state_digest() == digest and store.session.position == position
    assert receipts == []

    if cleanup == "full":  # dropping source b from the corpus removes its chunks
        survivors = A + C
        result = _index(survivors, manager, store, cleanup)
        assert result["num_deleted"] == 3
    else:  # a changed source b: its old chunks are removed, the new one added
        new_b = chunks("b.md", ["beta rewritten"])
        survivors = A + new_b + C
        result = _index(new_b, manager, store, cleanup)
        assert (result["num_added"], result["num_deleted"]) == (1, 3)
    assert len(receipts) == 3
    assert receipts[-1].digest_after == store.state_digest()
    beta = {d.page_content for d in B}
    for query in ("beta one", "beta two", "beta three"):
        assert not beta & {d.page_content for d in store.similarity_search(query, k=10)}
    assert len(store) == len(survivors)
    _same(store, _fresh(survivors, tmp_path))
    assert store.verify()


def test_forget_a_source_in_incremental_mode(store: ERASEVectorStore, tmp_path: Path) -> None:
    """Incremental cleanup only touches sources it is given; a whole source is forgotten by
    deleting the ids its record manager lists for it (the recipe docs/rag.md shows)."""
    manager = _manager("memory", tmp_path)
    _index(A + B + C, manager, store, "incremental")
    keys = manager.list_keys(group_ids=["b.md"])
    receipts = store.delete_with_receipts(keys)
    manager.delete_keys(keys)
    assert sorted(r.example_id for r in receipts) == sorted(keys)
    _same(store, _fresh(A + C, tmp_path))
    assert _index(A + C, manager, store, "incremental")["num_skipped"] == 3

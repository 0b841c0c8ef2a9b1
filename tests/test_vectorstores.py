"""langchain-tests' standard `VectorStoreIntegrationTests` (sync, async, get_by_ids) on the
in-memory `ERASEVectorStore`, on SQLite and on PostgreSQL (a private pgserver)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests.vectorstores import VectorStoreIntegrationTests

from langchain_erase import ERASEVectorStore
from langchain_erase.storage import LOG_KEY_ENV


class TestInMemory(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> Iterator[VectorStore]:
        yield ERASEVectorStore(self.get_embeddings())


class TestInMemoryCells(VectorStoreIntegrationTests):
    """The same suite with the keyed-sample cell index from the third document on."""

    @pytest.fixture
    def vectorstore(self) -> Iterator[VectorStore]:
        yield ERASEVectorStore(self.get_embeddings(), exact_below=3, cells=2, nprobe=2)


class TestSQLite(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:
        store = ERASEVectorStore.open(tmp_path / "docs.db", self.get_embeddings())
        yield store
        store.close()


class TestPostgres(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(
        self, postgres_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[VectorStore]:
        monkeypatch.setenv(LOG_KEY_ENV, "test-log-key")
        store = ERASEVectorStore.open(postgres_url, self.get_embeddings(), name="docs")
        yield store
        store.close()

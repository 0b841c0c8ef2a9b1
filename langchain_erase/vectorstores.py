"""`ERASEVectorStore`: a LangChain vector store whose documents can be exactly unlearned.

The state is a function of the set of (id, text, metadata, vector) rows and the parameters
(`VectorStoreParams`): search is exact below `exact_below` documents and reads the `nprobe`
nearest keyed-sample cells above it, every score is decided exactly and ties go to the
smaller id. So after `delete(ids)` the store is the store a fresh build without those
documents gives, bit for bit (`state_digest()`), and every query answers the same.

Writes go through a write session (`langchain_erase.replication.session`): in memory, or
`open`ed on a SQLite file or PostgreSQL database shared by any number of processes, with the
change log, consistency modes, erasure and receipts of the example selector. Adding a
document under a present id replaces it: the old version is deleted (with a receipt) and the
new one inserted in one transaction. Scores are cosine similarities of the L2-normalized
embeddings (higher is more similar); relevance scores are the same, clipped to [0, 1].
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from langchain_erase.core.index import DEFAULT_FETCH_K, DEFAULT_LAMBDA_MULT
from langchain_erase.errors import (
    InvalidParameterError,
)
from langchain_erase.receipts import DeletionReceipt
from langchain_erase.replication.changes import Deletion
from langchain_erase.replication.session import Consistency, MemorySession, Session
from langchain_erase.selector import audit, embedder
from langchain_erase.selector.fingerprint import ModelFingerprint
from langchain_erase.vectorstore.documents import MetadataFilter, document_of, document_rows
from langchain_erase.vectorstore.params import VectorStoreParams
from langchain_erase.vectorstore.retriever import ERASEVectorStoreRetriever, check_query
from langchain_erase.vectorstore.search import (
    check_count,
    check_lambda,
    nearest,
    no_kwargs,
)
from langchain_erase.vectorstore.stores import open_session

__all__ = ["ERASEVectorStore"]

logger = logging.getLogger("langchain_erase")
Filter = dict[str, Any] | Callable[[Document], bool] | None
ReceiptListener = Callable[[DeletionReceipt], object]


class ERASEVectorStore(VectorStore):
    """A vector store that forgets exactly: after a deletion it equals a fresh build of
    the remaining documents (`state_digest()`, every search answer). Thread-safe.

    Example:
        .. code-block:: python

            from langchain_core.embeddings import DeterministicFakeEmbedding
            from langchain_erase import ERASEVectorStore

            store = ERASEVectorStore(DeterministicFakeEmbedding(size=32))
            ids = store.add_texts(["red apples", "green pears"], metadatas=[{"s": "a"}, {"s": "b"}])
            store.similarity_search("apples", k=1, filter={"s": "a"})
            receipts = store.delete_with_receipts([ids[0]])
    """

    def __init__(
        self, embedding: Embeddings, *, session: Session | None = None, **params: Any
    ) -> None:
        """An empty in-memory store (or one over `session`, as `open` builds it).

        Args:
            embedding: The LangChain embedding model.
            session: Internal: the write session `open` creates; default in memory.
            **params: `VectorStoreParams` fields (seed, exact_below, cells, nprobe, ...).
        """
        self.params = VectorStoreParams.of(**params)
        self.embedding = embedding
        self._session = session or MemorySession(self.params.new_index())
        self._listeners: list[ReceiptListener] = []
        self._fingerprint = ModelFingerprint(embedding)

    # ------------------------------------------------------------------ build
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> ERASEVectorStore:
        """A new in-memory store holding `texts`.

        Args:
            texts: Page contents.
            embedding: The embedding model.
            metadatas: One metadata dict per text.
            ids: One id per text (default: random UUIDs).
            **kwargs: `VectorStoreParams` fields.

        Returns:
            The store.
        """
        store = cls(embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def open(
        cls,
        target: str | os.PathLike[str],
        embedding: Embeddings,
        *,
        name: str = "default",
        consistency: Consistency = "strong",
        log_key: str | bytes | None = None,
        **params: Any,
    ) -> ERASEVectorStore:
        """Create or open a store on SQLite or PostgreSQL, shared by any number of processes.

        Args:
            target: A SQLite file path, or a ``postgresql://`` URL.
            embedding: The embedding model (checked against the store's fingerprint).
            name: Which document set of the database.
            consistency: "strong" (every read first catches up with the committed log) or
                "eventual" (a background follower catches up).
            log_key: Key of the HMAC the change log keeps of ids (see
                `ERASEExampleSelector.open`); every process of one store uses the same.
            **params: `VectorStoreParams` fields; on reopen they must equal the stored ones
                (omitted ones are taken from the store).

        Returns:
            The store, caught up with the committed rows.
        """
        session, stored = open_session(target, embedding, name, consistency, log_key, params)
        return cls(embedding, session=session, **stored)

    # ----------------------------------------------------------------- writes
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        batch_size: int = 256,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and add texts in one transaction; a present id is replaced (deleted with
        a receipt, then inserted).

        Args:
            texts: Page contents.
            metadatas: One metadata dict per text (JSON values).
            ids: One id per text (default: random UUIDs: the same text twice is two
                documents).
            batch_size: Texts per call of the embedding model (LangChain's indexing API
                passes it); the write is one transaction whatever its value.
            **kwargs: None are accepted (an unknown keyword is refused).

        Returns:
            The ids, in order.
        """
        no_kwargs(kwargs)
        batch = check_count(batch_size, "batch_size")
        texts = list(texts)
        rows = document_rows(texts, metadatas, ids)
        vectors = (
            np.concatenate(
                [
                    embedder.embed_documents(
                        self.embedding, texts[i : i + batch], p=1, dimension=None
                    )
                    for i in range(0, len(texts), batch)
                ]
            )
            if texts
            else None
        )
        return self._write(*rows, vectors)

    def add_embeddings(
        self,
        texts: Sequence[str],
        embeddings: npt.ArrayLike,
        metadatas: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Add documents with precomputed embeddings (of this store's model).

        Args:
            texts: Page contents.
            embeddings: One embedding per text.
            metadatas: One metadata dict per text.
            ids: One id per text (default: random UUIDs).

        Returns:
            The ids, in order.
        """
        texts = list(texts)
        rows = document_rows(texts, metadatas, ids)
        return self._write(
            *rows, embedder.validated(embeddings, len(texts), 1, None) if texts else None
        )

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Exactly unlearn documents by id; absent ids are skipped (not an error).

        Args:
            ids: The ids to delete (required).
            **kwargs: None are accepted.

        Returns:
            True.
        """
        self.delete_with_receipts(ids, **kwargs)
        return True

    def delete_with_receipts(
        self, ids: Sequence[str] | None, **kwargs: Any
    ) -> list[DeletionReceipt]:
        """`delete`, returning a receipt per deleted document (absent ids get none).

        Args:
            ids: The ids to delete.
            **kwargs: None are accepted.

        Returns:
            Receipts (digest before and after, refit, log position in a store), in order.
        """
        no_kwargs(kwargs)
        if ids is None or isinstance(ids, str) or not isinstance(ids, Iterable):
            raise InvalidParameterError("delete takes a list of ids")
        wanted = list(dict.fromkeys(ids))
        if not all(isinstance(i, str) for i in wanted):
            raise InvalidParameterError("ids must be strings")
        with self._session.lock:
            with self._session.write() as writer:
                present = [i for i in wanted if i in writer.index]
                deletions = writer.delete(present) if present else []
            return self._receipts(deletions)

    def add_deletion_listener(self, listener: ReceiptListener) -> None:
        """Call `listener(receipt)` after every committed deletion, also the ones the
        indexing API's cleanup and replacing writes make.

        Args:
            listener: Called with each `DeletionReceipt`, under the store's lock; an
                exception it raises is logged on the "langchain_erase" logger (the
                deletion has happened and stands).
        """
        with self._session.lock:
            self._listeners.append(listener)

    # ------------------------------------------------------------------ reads
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Args:
            ids: Ids to look up.

        Returns:
            The present documents, in the order of `ids` (absent ids are skipped)."""
        with self._session.lock:
            self._session.read()
            index = self._session.index
            return [document_of(i, index.text(i)) for i in ids if i in index]

    def similarity_search(
        self, query: str, k: int = 4, filter: Filter = None, **kwargs: Any
    ) -> list[Document]:
        """Args:
            query: The query text.
            k: How many documents.
            filter: Metadata filter (`langchain_erase.vectorstore.documents`).
            **kwargs: None are accepted.

        Returns:
            The k most similar documents, most similar first (ties by smaller id)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Filter = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Args:
            query: The query text.
            k: How many documents.
            filter: Metadata filter.
            **kwargs: None are accepted.

        Returns:
            (document, cosine similarity) pairs, most similar first."""
        no_kwargs(kwargs)
        return self._knn(self._embed_query(query), k, filter)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Filter = None, **kwargs: Any
    ) -> list[Document]:
        """Args:
            embedding: A query embedding of the store's dimension.
            k: How many documents.
            filter: Metadata filter.
            **kwargs: None are accepted.

        Returns:
            The k most similar documents."""
        no_kwargs(kwargs)
        return [
            doc for doc, _ in self._knn(embedder.validated([embedding], 1, 1, None)[0], k, filter)
        ]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = DEFAULT_FETCH_K,
        lambda_mult: float = DEFAULT_LAMBDA_MULT,
        filter: Filter = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Args:
            query: The query text.
            k: How many documents.
            fetch_k: How many nearest documents are candidates.
            lambda_mult: 1 ranks by similarity alone, 0 by diversity alone.
            filter: Metadata filter.
            **kwargs: None are accepted.

        Returns:
            The MMR picks, in pick order (decided exactly, ties by smaller id)."""
        no_kwargs(kwargs)
        vector = self._embed_query(query)
        return self.max_marginal_relevance_search_by_vector(
            list(map(float, vector)), k, fetch_k, lambda_mult, filter
        )

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = DEFAULT_FETCH_K,
        lambda_mult: float = DEFAULT_LAMBDA_MULT,
        filter: Filter = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Args:
            embedding: A query embedding.
            k: How many documents.
            fetch_k: How many nearest documents are candidates.
            lambda_mult: 1 ranks by similarity alone, 0 by diversity alone.
            filter: Metadata filter.
            **kwargs: None are accepted.

        Returns:
            The MMR picks, in pick order."""
        no_kwargs(kwargs)
        picks = check_count(k, "k")
        fetch = max(picks, check_count(fetch_k, "fetch_k"))
        mmr = (picks, check_lambda(lambda_mult))
        hits = self._search(embedder.validated([embedding], 1, 1, None)[0], fetch, filter, mmr)
        return [doc for doc, _ in hits]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Relevance is the cosine similarity (LangChain's 1 - cosine distance), clipped to
        [0, 1]: opposite directions are irrelevant, and a float32 rounding above 1 is 1."""
        return _relevance

    def as_retriever(self, **kwargs: Any) -> ERASEVectorStoreRetriever:
        """A retriever that honours `search_type` and `search_kwargs` and refuses what it
        cannot (see `langchain_erase.vectorstore.retriever`).

        Args:
            **kwargs: `search_type`, `search_kwargs`, `tags`, ... as LangChain's.

        Returns:
            The retriever.
        """
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return ERASEVectorStoreRetriever(vectorstore=self, tags=tags, **kwargs)

    @property
    def embeddings(self) -> Embeddings:
        """The embedding model."""
        return self.embedding

    # ------------------------------------------------------------ the state
    def rows(self) -> tuple[list[Document], npt.NDArray[np.float32]]:
        """Every stored document and its stored vector: what a fresh build of this store
        takes (`add_embeddings` with the documents' texts, metadata and ids), so a check
        that the store equals a fresh build does not depend on re-embedding bit for bit.

        Returns:
            (documents sorted by id, float32 (n, D) unit vectors in the same order).
        """
        with self._session.lock:
            self._session.read()
            ids, texts, vectors = self._session.index.rows()
            return [document_of(i, t) for i, t in zip(ids, texts, strict=True)], vectors

    def __len__(self) -> int:
        with self._session.lock:
            self._session.read()
            return len(self._session.index)

    def state_digest(self) -> str:
        """Returns:
        sha256 of the state: equal for two stores exactly when they hold the same
        rows under the same parameters (and so answer every query alike)."""
        with self._session.lock:
            self._session.read()
            return self._session.index.state_digest()

    def verify(self) -> bool:
        """Returns:
        True if the incrementally maintained state equals a fresh build of its rows."""
        with self._session.lock:
            self._session.read()
            return self._session.index.verify()

    @property
    def session(self) -> Session:
        """The write session (store, log position, deletion log, close)."""
        return self._session

    def close(self) -> None:
        """Release the store (no-op in memory); later reads and writes raise."""
        self._session.close()

    def __repr__(self) -> str:
        """Parameters, size and digest prefix; never content or ids."""
        with self._session.lock:
            index = self._session.index
            return (
                f"ERASEVectorStore(documents={len(index)}, dimension={index.dimension}, "
                f"store={self._session.describe()!r}, nprobe={self.params.nprobe}, "
                f"state_digest={index.state_digest()[:16]!r})"
            )

    # ------------------------------------------------------------- internals
    def _write(
        self, ids: list[str], texts: list[str], vectors: npt.NDArray[np.float32] | None
    ) -> list[str]:
        """Replace-or-insert in one write transaction."""
        if vectors is None:
            return ids
        with self._session.lock:
            with self._session.write() as writer:
                present = [i for i in ids if i in writer.index]
                deletions = writer.delete(present) if present else []
                writer.add(ids, texts, vectors, self._fingerprint)
            self._receipts(deletions)
        return ids

    def _receipts(self, deletions: Sequence[Deletion]) -> list[DeletionReceipt]:
        """Receipts of committed deletions, handed to the listeners (never raises for a
        deletion that has happened: the erasure status reports, it does not raise)."""
        if not deletions:
            return []
        receipts = audit.receipts(deletions, self._session.erasure())
        for receipt in receipts:
            for listener in self._listeners:
                try:
                    listener(receipt)
                except Exception:  # the deletion stands; a failing listener is logged
                    logger.exception("ERASEVectorStore: a deletion listener failed")
        return receipts

    def _embed_query(self, query: object) -> npt.NDArray[np.float32]:
        return embedder.embed_query(self.embedding, check_query(query), p=1)

    def _knn(
        self, vector: npt.NDArray[np.float32], k: int, filter: Filter
    ) -> list[tuple[Document, float]]:
        return self._search(vector, check_count(k, "k"), filter)

    def _search(
        self,
        vector: npt.NDArray[np.float32],
        fetch: int,
        filter: Filter,
        mmr: tuple[int, float] | None = None,
    ) -> list[tuple[Document, float]]:
        """`search.nearest` under the lock, after catching up, as documents."""
        matcher = None if filter is None else MetadataFilter(filter)
        with self._session.lock:
            self._session.read()
            index = self._session.index
            hits = nearest(index, vector, fetch, matcher, mmr)
            return [(document_of(i, index.text(i)), score) for i, score in hits]


def _relevance(score: float) -> float:
    return min(1.0, max(0.0, score))

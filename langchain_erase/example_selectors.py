"""`ERASEExampleSelector`: LangChain's example-selector interface over the ERASE core.

This module is the thin adapter: it validates examples, embeds them once with the user's
`Embeddings`, takes the selector's lock and delegates. All ERASE state lives in one
`langchain_erase.core.index.ERASEIndex`, owned by a `langchain_erase.replication.Session`:
a `MemorySession` for an in-memory selector, a `StoreSession` (following a store's change
log) for one from `open`; every add and delete goes through the session's writer. The
parts with one concern each are in `langchain_erase.selector` (parameters, embedding,
model fingerprint, receipts and listeners, snapshots, store handles).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Self

import numpy.typing as npt
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.runnables.config import run_in_executor

from langchain_erase.core.canonical import canonical_json, default_example_id, redact_id
from langchain_erase.core.hashing import keyed_hash64
from langchain_erase.core.index import ERASEIndex, SelectionMode
from langchain_erase.errors import (
    EmbeddingError,
    InvalidExampleError,
    InvalidParameterError,
    UnknownExampleError,
)
from langchain_erase.inputs import (
    Example,
    embedded_text,
    embedded_texts,
    example_ids,
    parse_example,
    validate_example,
    validate_query,
)
from langchain_erase.receipts import DeletionReceipt
from langchain_erase.replication import FOLLOW_INTERVAL_S, Consistency, MemorySession, Session
from langchain_erase.replication.changes import check_absent
from langchain_erase.retrievers import ERASERetriever
from langchain_erase.selections import SelectedExample, checked_limit
from langchain_erase.selector import audit, embedder
from langchain_erase.selector.asynchronous import AsyncMethods
from langchain_erase.selector.fingerprint import FINGERPRINT_PROBES, ModelFingerprint
from langchain_erase.selector.params import (
    DEFAULT_EPSILON,
    DEFAULT_GAMMA,
    DEFAULT_MAX_ITER,
    DEFAULT_P,
    ParameterViews,
    SelectorParams,
)
from langchain_erase.selector.pickling import Pickling
from langchain_erase.selector.snapshots import SnapshotMethods
from langchain_erase.selector.stores import MemoryHandle, StoreHandle
from langchain_erase.selector.views import SessionViews

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings


__all__ = [
    "DEFAULT_EPSILON",
    "DEFAULT_GAMMA",
    "DEFAULT_MAX_ITER",
    "DEFAULT_P",
    "FINGERPRINT_PROBES",
    "FOLLOW_INTERVAL_S",
    "Consistency",
    "ERASEExampleSelector",
    "canonical_json",
    "default_example_id",
]

_RUNTIME = ("show_progress", "similar_screen")


class ERASEExampleSelector(
    AsyncMethods, ParameterViews, SessionViews, SnapshotMethods, Pickling, BaseExampleSelector
):
    """Few-shot example selector whose examples can be exactly unlearned in constant time.

    Examples are clustered by quantized k-means into k buckets and one example per bucket
    is selected. After `delete_example(id)` the selector is bit-for-bit the selector that
    `from_examples` would build without that example (`state_digest()` equal, same
    selections); most deletions take O(T*k*p) work, independent of the number of examples.
    Thread-safe: every public method takes an internal lock. A selector from `open` follows
    a shared store that any number of processes may read and write.

    Pickling and `copy.deepcopy`: an in-memory selector is copied with its examples (equal
    digest and selections); a store-backed one is copied as a handle that opens the same
    store and set again (its own connection). Deletion listeners are copied too.
    """

    def __init__(
        self,
        embeddings: Embeddings,
        *,
        k: int = 4,
        epsilon: float = DEFAULT_EPSILON,
        seed: int = 0,
        input_keys: Sequence[str] | None = None,
        example_keys: Sequence[str] | None = None,
        selection: SelectionMode = "random",
        p: int = DEFAULT_P,
        gamma: float = DEFAULT_GAMMA,
        max_iter: int = DEFAULT_MAX_ITER,
        show_progress: bool = False,
        fetch_k: int | None = None,
        lambda_mult: float | None = None,
        similar_screen: bool = True,
    ) -> None:
        """An empty in-memory selector.

        Args:
            embeddings: The LangChain embedding model.
            k: Clusters, i.e. demonstrations per prompt (in every mode).
            epsilon: Lattice width of the quantized k-means.
            seed: Seed of every random choice.
            input_keys: Keys whose values are embedded (default: all, sorted). Only these
                variables of a selection call are read.
            example_keys: Keys returned by `select_examples` (default: all).
            selection: "random", "centroid" or "similar" (one example per cluster), or
                "knn" / "mmr" (the k most similar examples / maximal marginal relevance,
                over all examples, exact).
            p: Projected dimension.
            gamma: Balance threshold of the quantized k-means.
            max_iter: Lloyd iterations.
            show_progress: Show a progress bar while embedding.
            fetch_k: "mmr" only: how many nearest examples are candidates (default 20, as
                LangChain's; at least k are).
            lambda_mult: "mmr" only: 1 ranks by similarity alone, 0 by diversity alone
                (default 0.5, as LangChain's).
            similar_screen: "similar" only: buckets of 16,384 or more members are scanned
                by FAISS through float16 codes, about half the query time for 776 more
                bytes per example at D = 384; the answers are identical either way
                (docs/concepts.md). False keeps memory lower.
        """
        params = SelectorParams.create(
            k=k,
            epsilon=epsilon,
            seed=seed,
            input_keys=input_keys,
            example_keys=example_keys,
            selection=selection,
            p=p,
            gamma=gamma,
            max_iter=max_iter,
            fetch_k=fetch_k,
            lambda_mult=lambda_mult,
        )
        if not isinstance(similar_screen, bool):
            raise InvalidParameterError(
                f"similar_screen must be True or False, got {similar_screen!r}"
            )
        self._setup(
            embeddings,
            params,
            MemoryHandle(),
            None,
            show_progress=show_progress,
            similar_screen=similar_screen,
        )

    def _setup(
        self,
        embeddings: Embeddings,
        params: SelectorParams,
        handle: MemoryHandle | StoreHandle,
        session: Session | None,
        *,
        show_progress: bool = False,
        similar_screen: bool = True,
        listeners: audit.DeletionListeners | None = None,
        fingerprint: ModelFingerprint | None = None,
    ) -> Self:
        """Set every attribute (from `__init__`, `open`, `load` and unpickling)."""
        self.embeddings = embeddings
        self.show_progress = show_progress
        self._params = params
        self._similar_screen = similar_screen
        self._handle = handle
        self._fingerprint = fingerprint or ModelFingerprint(embeddings)
        self._session = session or MemorySession(params.new_index(similar_screen=similar_screen))
        self._listeners = listeners or audit.DeletionListeners()
        return self

    # ------------------------------------------------------------- construction
    @classmethod
    def from_examples(
        cls,
        examples: Sequence[Mapping[str, Any]],
        embeddings: Embeddings,
        k: int = 4,
        epsilon: float = DEFAULT_EPSILON,
        seed: int = 0,
        input_keys: Sequence[str] | None = None,
        example_keys: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        selection: SelectionMode = "random",
        vectors: npt.ArrayLike | None = None,
        **kwargs: Any,
    ) -> ERASEExampleSelector:
        """Embed `examples` once and fit the clustering (the order of examples is irrelevant).

        Args:
            examples: Dicts with string keys and JSON values (see `langchain_erase.inputs`).
            embeddings: The embedding model.
            k: Clusters (demonstrations per prompt).
            epsilon: Lattice width.
            seed: Seed.
            input_keys: Keys that are embedded.
            example_keys: Keys that are returned.
            ids: One id per example (default: `default_example_id`).
            selection: Selection mode.
            vectors: Precomputed embeddings (see `add_examples`).
            **kwargs: `p`, `gamma`, `max_iter`, `show_progress`, `fetch_k`, `lambda_mult`,
                `similar_screen`.

        Returns:
            The fitted in-memory selector.
        """
        selector = cls(
            embeddings,
            k=k,
            epsilon=epsilon,
            seed=seed,
            input_keys=input_keys,
            example_keys=example_keys,
            selection=selection,
            **kwargs,
        )
        selector.add_examples(examples, ids=ids, vectors=vectors)
        return selector

    @classmethod
    async def afrom_examples(
        cls,
        examples: Sequence[Mapping[str, Any]],
        embeddings: Embeddings,
        **kwargs: Any,
    ) -> ERASEExampleSelector:
        """Async `from_examples`: embedding and fitting run in an executor thread.

        Args:
            examples: Dicts with string keys and JSON values.
            embeddings: The embedding model.
            **kwargs: Every other argument of `from_examples` (k, selection, ids, ...).

        Returns:
            The fitted in-memory selector.
        """
        return await run_in_executor(
            None, partial(cls.from_examples, examples, embeddings, **kwargs)
        )

    @property
    def dimension(self) -> int | None:
        """Embedding dimension, fixed by the first example."""
        return self._session.index.dimension

    # ---------------------------------------------------------------- reading
    def _reading(self) -> ERASEIndex:
        """Under the lock: the index, caught up (strong) with the store."""
        self._session.read()
        return self._session.index

    @property
    def ids(self) -> list[str]:
        """Every example id, sorted."""
        with self._session.lock:
            return self._reading().ids()

    def __len__(self) -> int:
        with self._session.lock:
            return len(self._reading())

    def __contains__(self, example_id: object) -> bool:
        with self._session.lock:
            return example_id in self._reading()

    def get_example(self, example_id: str) -> Example:
        """Args:
            example_id: An id.

        Returns:
            A copy of the example (UnknownExampleError if absent)."""
        with self._session.lock:
            index = self._reading()
            if not isinstance(example_id, str) or example_id not in index:
                raise UnknownExampleError(f"no example with {redact_id(example_id)}")
            return parse_example(index.text(example_id))

    def buckets(self) -> list[list[str]]:
        """Returns:
        Example ids of each cluster (in cluster order, ids sorted)."""
        with self._session.lock:
            return self._reading().buckets()

    def state_digest(self) -> str:
        """sha256 of the canonical clustering state and membership (layout-independent).

        Returns:
            64 hex digits; two selectors with equal digests select the same examples.
        """
        with self._session.lock:
            return self._reading().state_digest()

    def verify(self) -> bool:
        """Refit from the stored vectors and compare state digests.

        Returns:
            True if the state equals a fresh fit of the current examples.
        """
        with self._session.lock:
            return self._reading().verify()

    # ------------------------------------------------------------- selection
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        """The demonstrations for a prompt (LangChain's example-selector contract).

        Bucket modes: one example per non-empty cluster, in cluster (seeding) order. "knn":
        the k most similar examples, most similar first; "mmr": k examples by maximal
        marginal relevance, in pick order. Ties are broken by id.

        Args:
            input_variables: The prompt's variables; only the input keys are read (all
                variables without input keys), others such as chat history pass through.

        Returns:
            The selected examples (restricted to `example_keys` if set).
        """
        return [selected.example for selected in self.select_with_ids(input_variables)]

    def select_with_ids(
        self, input_variables: dict[str, Any], *, k: int | None = None
    ) -> list[SelectedExample]:
        """The selection of `select_examples`, with each example's id, text and cluster.

        For feedback loops: ``selector.delete_example(record.id)`` unlearns a
        demonstration that turned out bad.

        Args:
            input_variables: The prompt's variables (see `select_examples`).
            k: How many: knn and mmr select this many instead of the selector's k; the
                bucket modes return their first k picks. None: the selector's selection.

        Returns:
            One record per selected example, in `select_examples` order, all carrying the
            `state_digest()` of the state that selected them.
        """
        checked_limit(k)
        keys = self.input_keys
        text = embedded_text(validate_query(input_variables, keys), keys)
        query_vector = None
        if self._session.index.needs_query_vector:  # embedded outside the lock
            query_vector = embedder.embed_query(self.embeddings, text, p=self.p)
        query_hash = keyed_hash64(self._params.seed, "select", text)
        with self._session.lock:
            index = self._reading()
            if query_vector is not None and len(index) and query_vector.shape[0] != index.dimension:
                raise EmbeddingError(
                    f"query embedding dimension {query_vector.shape[0]} differs from the "
                    f"selector's {index.dimension}"
                )
            picks = index.pick(query_hash, query_vector if len(index) else None, k)
            digest = index.state_digest()
            selected = []
            for bucket, example_id in picks:
                example = parse_example(index.text(example_id))
                public = {key: example[key] for key in self.example_keys or example}
                selected.append(
                    SelectedExample(
                        example_id, public, embedded_text(example, keys), bucket, digest
                    )
                )
            return selected

    def as_retriever(self, **kwargs: Any) -> ERASERetriever:
        """This selector as a LangChain retriever, like `VectorStore.as_retriever()`.

        Args:
            **kwargs: `ERASERetriever` fields: `k` (documents per query), `tags`,
                `metadata` (added to ``{"erase_selection": <mode>}``, the run metadata
                that traces show).

        Returns:
            A retriever whose documents are the selected examples, with their ids.
        """
        metadata = {"erase_selection": self.selection, **(kwargs.pop("metadata", None) or {})}
        return ERASERetriever(selector=self, metadata=metadata, **kwargs)

    # ------------------------------------------------------------- insertion
    def add_example(self, example: dict[str, Any]) -> str:
        """Add one example.

        Args:
            example: A dict with string keys and JSON values.

        Returns:
            Its id (the hash of its canonical JSON).
        """
        return self.add_examples([example])[0]

    def add_examples(
        self,
        examples: Sequence[Mapping[str, Any]],
        ids: Sequence[str] | None = None,
        vectors: npt.ArrayLike | None = None,
    ) -> list[str]:
        """Add examples atomically: on any error nothing is added (in memory or the store).

        Args:
            examples: Dicts with string keys and JSON values.
            ids: One id per example, in their order: a list, tuple or iterator (a set or
                dict is refused: its order is not the examples'). Default: `default_example_id`.
            vectors: One embedding per example, skipping the model (examples embedded
                elsewhere with the same model).

        Returns:
            The new ids.
        """
        if isinstance(examples, str | bytes | Mapping) or not isinstance(examples, Iterable):
            raise InvalidExampleError("examples must be a list of dicts")
        examples = list(examples)
        required = sorted(set(self.input_keys or ()) | set(self.example_keys or ()))
        clean = [validate_example(e, required) for e in examples]
        new_ids = example_ids(clean, ids)
        with self._session.lock:
            check_absent(self._session.index, new_ids)  # fail before embedding
        if not clean:
            return []
        texts = embedded_texts(clean, self.input_keys)
        dimension = self.dimension
        unit = (
            embedder.embed_documents(
                self.embeddings,
                texts,
                p=self.p,
                dimension=dimension,
                show_progress=self.show_progress,
            )
            if vectors is None
            else embedder.validated(vectors, len(texts), self.p, dimension)
        )
        rows = [canonical_json(e) for e in clean]
        with self._session.lock, self._session.write() as writer:
            added = writer.add(new_ids, rows, unit, self._fingerprint)
        audit.log_add(self._session.key_of, new_ids, added.outcomes, added.seconds)
        return new_ids

    # -------------------------------------------------------------- deletion
    def delete_example(self, example_id: str) -> DeletionReceipt:
        """Exactly unlearn one example.

        Args:
            example_id: A present id (UnknownExampleError otherwise).

        Returns:
            The receipt (for a store-backed selector: committed, with its log position).
        """
        return self.delete_examples([example_id])[0]

    def delete_examples(self, ids: Sequence[str]) -> list[DeletionReceipt]:
        """Delete several examples in one step: all ids are checked first, so an unknown
        id deletes none; for a store-backed selector the batch is one transaction.

        Once committed, the deletions have happened and nothing about the store raises:
        a failure afterwards (a status query of the erasure step) is reported in the
        receipts' `erasure_error`. Deletion listeners run after the whole batch, once per
        id in order; if any raises, the others still run and the first exception is
        re-raised at the end (the deletions stand). The same holds with and without a store.

        Args:
            ids: Present ids, each at most once.

        Returns:
            One receipt per id, in order.
        """
        if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
            raise UnknownExampleError("delete_examples takes a list of ids")
        ids = list(ids)
        with self._session.lock:
            with self._session.write() as writer:
                done = writer.delete(ids)
            receipts = audit.receipts(done, self._session.erasure())
            audit.log_deletions(self._session.key_of, receipts)
            self._listeners.notify(done)
            return receipts

    def add_deletion_listener(self, listener: audit.DeletionListener) -> None:
        """Call `listener(example_id, example)` after every deletion, under the lock.

        For caches outside the selector that may hold a deleted example (an LLM's prompt or
        KV cache: see `langchain_erase.llms.evict_on_delete`). Listeners run after the whole
        deletion (batch) is done and committed; see `delete_examples` for failures.

        Args:
            listener: Called with the id and the deleted example.
        """
        with self._session.lock:
            self._listeners.add(listener)

    # ------------------------------------------------------------------ store
    @classmethod
    def open(
        cls,
        target: str | os.PathLike[str],
        embeddings: Embeddings,
        *,
        name: str = "default",
        consistency: Consistency = "strong",
        log_key: str | bytes | None = None,
        **params: Any,
    ) -> ERASEExampleSelector:
        """Create or open a shared store; every add and delete is committed when it returns.

        Any number of processes may open the same target and name and read and write.

        Args:
            target: A SQLite file path, or a ``postgresql://`` URL.
            embeddings: The embedding model (checked against the store's fingerprint).
            name: Which example set of the database (one per tenant or task).
            consistency: "strong": every select first catches up to the committed log
                head, so no select follows a returned deletion in any process.
                "eventual": a background follower applies changes every
                `FOLLOW_INTERVAL_S` seconds.
            log_key: Key of the HMAC that the change log keeps of ids; else the
                LANGCHAIN_ERASE_LOG_KEY environment variable; else (SQLite) the key file
                ``<database>.key``. Every process of one store must use the same key.
            **params: Selector parameters; on reopen they must equal the stored ones
                (omitted ones are taken from the store).

        Returns:
            The selector, caught up with the store.
        """
        handle = StoreHandle.checked(target, name, consistency, log_key)
        runtime = {key: params.pop(key) for key in _RUNTIME if key in params}
        cls(embeddings, **params, **runtime)  # refused before anything is created
        probe = ModelFingerprint(embeddings)
        stored, session = handle.open(params, probe, runtime.get("similar_screen", True))
        return cls.__new__(cls)._setup(
            embeddings, stored, handle, session, fingerprint=probe, **runtime
        )

    def __repr__(self) -> str:
        """Settings, size and digest prefix; never example content or ids."""
        with self._session.lock:
            params, index = self._params, self._session.index
            extra = (
                f", fetch_k={params.fetch_k}, lambda_mult={params.lambda_mult}"
                if params.selection == "mmr"
                else ""
            )
            return (
                f"ERASEExampleSelector(selection={params.selection!r}, k={params.k}{extra}, "
                f"examples={len(index)}, dimension={index.dimension}, "
                f"input_keys={self.input_keys}, epsilon={params.epsilon}, "
                f"seed={params.seed}, store={self._session.describe()!r}, "
                f"state_digest={index.state_digest()[:16]!r})"
            )

"""`ERASEExampleSelector`: LangChain's example-selector interface over the ERASE core.

This module is the thin adapter: it validates examples, embeds them once with the user's
`Embeddings`, takes the selector's lock and delegates: all ERASE state lives in
`langchain_erase.core.index.ERASEIndex`, and a store-backed selector (`open`) follows its
store through `langchain_erase.replication.Replica` over a backend from
`langchain_erase.storage`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.runnables.config import run_in_executor
from tqdm.auto import tqdm

from langchain_erase.core import QKMeansParams
from langchain_erase.core.canonical import canonical_json, default_example_id, redact_id
from langchain_erase.core.hashing import keyed_hash64
from langchain_erase.core.index import (
    BATCH_FIT,
    DEFAULT_FETCH_K,
    DEFAULT_LAMBDA_MULT,
    SELECTION_MODES,
    ERASEIndex,
    SelectionMode,
)
from langchain_erase.core.projection import MAX_DIMENSION, normalize_rows
from langchain_erase.core.qkmeans import MAX_P, ChangeOutcome
from langchain_erase.errors import (
    EmbeddingError,
    EmbeddingModelMismatchError,
    ERASEError,
    InvalidExampleError,
    InvalidParameterError,
    StaleSnapshotError,
    StateFileError,
    UnknownExampleError,
)
from langchain_erase.inputs import (
    Example,
    check_unicode,
    embedded_text,
    embedded_texts,
    encodable,
    parse_example,
    validate_example,
    validate_query,
)
from langchain_erase.receipts import DeletionReceipt, receipts_for
from langchain_erase.replication import (
    FOLLOW_INTERVAL_S,
    Consistency,
    MemorySession,
    Session,
    StoreSession,
    logger,
)
from langchain_erase.replication.changes import check_absent
from langchain_erase.retrievers import ERASERetriever
from langchain_erase.selections import SelectedExample, checked_limit
from langchain_erase.storage import open_backend
from langchain_erase.storage.base import StoreHeader
from langchain_erase.storage.snapshot import Snapshot, read_snapshot, write_snapshot

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from langchain_erase.storage.base import StorageBackend

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

#: Defaults chosen with benchmarks/bench_selector.py (see docs/benchmarks.md).
DEFAULT_P = 8
DEFAULT_EPSILON = 0.25
DEFAULT_GAMMA = 0.2
DEFAULT_MAX_ITER = 30
#: Fixed texts whose embeddings identify the embedding model of a store.
FINGERPRINT_PROBES = (
    "langchain-erase model fingerprint: the quick brown fox jumps over the lazy dog.",
    "Quel temps fait-il à Paris ? 3.14159 — ¿qué tal?",
    "def select(examples): return sorted(examples)[:4]",
)
#: Two models agree when every probe embedding has at least this cosine similarity
#: (tolerates the last-bit differences of one model on different hardware).
_FINGERPRINT_MIN_COSINE = 0.9999
_CONSISTENCY = ("strong", "eventual")
_EMBED_BATCH = 256
_MAX_NAME = 200


def _file_path(path: str | os.PathLike[str], what: str) -> Path:
    """`path` as a Path, or InvalidParameterError if no file system can name it."""
    try:
        os.fsencode(path)
    except (TypeError, UnicodeEncodeError):
        raise InvalidParameterError(
            f"{what} must be a file path of valid Unicode (no lone surrogates)"
        ) from None
    return Path(path)


class ERASEExampleSelector(BaseExampleSelector):
    """Few-shot example selector whose examples can be exactly unlearned in constant time.

    Examples are clustered by quantized k-means into k buckets and one example per bucket
    is selected. After `delete_example(id)` the selector is bit-for-bit the selector that
    `from_examples` would build without that example (`state_digest()` equal, same
    selections); most deletions take O(T*k*p) work, independent of the number of examples.
    Thread-safe: every public method takes an internal lock. A selector from `open` follows
    a shared store that any number of processes may read and write.
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
        if selection not in SELECTION_MODES:
            raise InvalidParameterError(
                f"selection must be one of {SELECTION_MODES}, got {selection!r}"
            )
        mmr = _mmr_params(selection, fetch_k, lambda_mult)
        if not isinstance(similar_screen, bool):
            raise InvalidParameterError(
                f"similar_screen must be True or False, got {similar_screen!r}"
            )
        if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= MAX_P:
            raise InvalidParameterError(f"p must be an integer in [1, {MAX_P}], got {p!r}")
        for name, keys in (("input_keys", input_keys), ("example_keys", example_keys)):
            if keys is not None and (
                isinstance(keys, str)
                or not all(isinstance(key, str) and encodable(key) for key in keys)
            ):
                raise InvalidParameterError(
                    f"{name} must be a list of strings (valid Unicode), got {keys!r}"
                )
        try:
            params = QKMeansParams(k=k, epsilon=epsilon, seed=seed, gamma=gamma, max_iter=max_iter)
        except (ValueError, TypeError) as err:  # TypeError: a string where a number belongs
            raise InvalidParameterError(str(err)) from None
        self.embeddings = embeddings
        self.input_keys = list(input_keys) if input_keys else None
        self.example_keys = list(example_keys) if example_keys else None
        self.show_progress = show_progress
        self._session: Session = MemorySession(
            ERASEIndex(
                params,
                p,
                selection,
                {"input_keys": self.input_keys, "example_keys": self.example_keys},
                **mmr,
                similar_screen=similar_screen,
            )
        )
        self._fingerprint: dict[str, Any] | None = None
        self._deletion_listeners: list[Callable[[str, dict[str, Any]], object]] = []

    @property
    def _index(self) -> ERASEIndex:
        """The session's index (read it; only the session's writer changes it)."""
        return self._session.index

    @property
    def _lock(self) -> threading.RLock:
        return self._session.lock

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
    def params(self) -> QKMeansParams:
        """The clustering parameters."""
        return self._index.params

    @property
    def p(self) -> int:
        """The projected dimension."""
        return self._index.p

    @property
    def selection(self) -> SelectionMode:
        """The selection mode."""
        return self._index.selection

    @property
    def dimension(self) -> int | None:
        """Embedding dimension, fixed by the first example."""
        return self._index.dimension

    def _stored_params(self) -> dict[str, Any]:
        """The constructor arguments that define the state (JSON-able)."""
        params = self.params
        return {
            "k": params.k,
            "epsilon": params.epsilon,
            "seed": params.seed,
            "gamma": params.gamma,
            "max_iter": params.max_iter,
            "p": self.p,
            "selection": self.selection,
            "input_keys": self.input_keys,
            "example_keys": self.example_keys,
            **(
                {"fetch_k": self._index.fetch_k, "lambda_mult": self._index.lambda_mult}
                if self.selection == "mmr"
                else {}
            ),
        }

    # ---------------------------------------------------------------- reading
    @property
    def ids(self) -> list[str]:
        """Every example id, sorted."""
        with self._lock:
            self._session.read()
            return self._index.ids()

    def __len__(self) -> int:
        with self._lock:
            self._session.read()
            return len(self._index)

    def __contains__(self, example_id: object) -> bool:
        with self._lock:
            self._session.read()
            return example_id in self._index

    def get_example(self, example_id: str) -> Example:
        """Args:
            example_id: An id.

        Returns:
            A copy of the example (UnknownExampleError if absent)."""
        with self._lock:
            self._session.read()
            if not isinstance(example_id, str) or example_id not in self._index:
                raise UnknownExampleError(f"no example with {redact_id(example_id)}")
            return parse_example(self._index.text(example_id))

    def buckets(self) -> list[list[str]]:
        """Returns:
        Example ids of each cluster (in cluster order, ids sorted)."""
        with self._lock:
            self._session.read()
            return self._index.buckets()

    def state_digest(self) -> str:
        """sha256 of the canonical clustering state and membership (layout-independent).

        Returns:
            64 hex digits; two selectors with equal digests select the same examples.
        """
        with self._lock:
            self._session.read()
            return self._index.state_digest()

    def verify(self) -> bool:
        """Refit from the stored vectors and compare state digests.

        Returns:
            True if the state equals a fresh fit of the current examples.
        """
        with self._lock:
            self._session.read()
            return self._index.verify()

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
        text = embedded_text(validate_query(input_variables, self.input_keys), self.input_keys)
        query_vector = None
        if self._index.needs_query_vector:  # embedded outside the lock
            query_vector = self._embed([text], query=True, dimension=None)[0]
        query_hash = keyed_hash64(self.params.seed, "select", text)
        with self._lock:
            self._session.read()
            if (
                query_vector is not None
                and len(self._index)
                and query_vector.shape[0] != self._index.dimension
            ):
                raise EmbeddingError(
                    f"query embedding dimension {query_vector.shape[0]} differs from the "
                    f"selector's {self._index.dimension}"
                )
            picks = self._index.pick(query_hash, query_vector if len(self._index) else None, k)
            digest = self._index.state_digest()
            selected = []
            for bucket, example_id in picks:
                example = parse_example(self._index.text(example_id))
                selected.append(
                    SelectedExample(
                        id=example_id,
                        example=self._public(example),
                        text=embedded_text(example, self.input_keys),
                        bucket=bucket,
                        state_digest=digest,
                    )
                )
            return selected

    async def aselect_with_ids(
        self, input_variables: dict[str, Any], *, k: int | None = None
    ) -> list[SelectedExample]:
        """Async `select_with_ids` (the query is embedded in an executor thread).

        Args:
            input_variables: The prompt's variables (see `select_examples`).
            k: How many (see `select_with_ids`).

        Returns:
            One record per selected example.
        """
        return await run_in_executor(None, partial(self.select_with_ids, k=k), input_variables)

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

    def _public(self, example: Example) -> dict[str, Any]:
        if self.example_keys:
            return {key: example[key] for key in self.example_keys}
        return example

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
        if isinstance(examples, (str, bytes, Mapping)) or not isinstance(examples, Iterable):
            raise InvalidExampleError("examples must be a list of dicts")
        examples = list(examples)
        required = sorted(set(self.input_keys or ()) | set(self.example_keys or ()))
        clean = [validate_example(e, required) for e in examples]
        new_ids = self._new_ids(clean, ids)
        with self._lock:
            check_absent(self._index, new_ids)
        if not clean:
            return []
        texts = embedded_texts(clean, self.input_keys)
        dimension = self.dimension
        unit = (
            self._embed(texts, query=False, dimension=dimension)
            if vectors is None
            else self._validated(vectors, len(texts), dimension)
        )
        rows = [canonical_json(e) for e in clean]
        with self._lock, self._session.write() as writer:
            added = writer.add(new_ids, rows, unit, self._model_fingerprint)
        self._log_add(new_ids, added.outcomes, added.seconds)
        return new_ids

    async def aadd_example(self, example: dict[str, Any]) -> str:
        """Async `add_example` (runs in an executor).

        Args:
            example: A dict with string keys and JSON values.

        Returns:
            Its id.
        """
        return await run_in_executor(None, self.add_example, example)

    async def aadd_examples(
        self, examples: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None
    ) -> list[str]:
        """Async `add_examples` (runs in an executor).

        Args:
            examples: Dicts with string keys and JSON values.
            ids: One id per example.

        Returns:
            The new ids.
        """
        return await run_in_executor(None, self.add_examples, examples, ids)

    def _new_ids(self, examples: list[Example], ids: Sequence[str] | None) -> list[str]:
        if ids is None:
            return [default_example_id(e) for e in examples]
        # a set or mapping would pair ids with examples in hash order, which varies per process
        if isinstance(ids, (str, bytes, AbstractSet, Mapping)) or not isinstance(ids, Iterable):
            raise InvalidExampleError("ids must be a list with one id per example, in order")
        new_ids = list(ids)
        if len(new_ids) != len(examples):
            raise InvalidExampleError("ids must be a list with one id per example")
        if not all(isinstance(i, str) and i for i in new_ids):
            raise InvalidExampleError("ids must be non-empty strings")
        if not encodable("".join(new_ids)):  # one check for all; then find the culprit
            for example_id in new_ids:
                check_unicode(example_id, "an id")
        return new_ids

    def _embed(
        self, texts: list[str], *, query: bool, dimension: int | None
    ) -> npt.NDArray[np.float32]:
        """Embed and validate: finite, non-zero, all of the selector's dimension."""
        try:
            if query:
                raw: list[list[float]] = [self.embeddings.embed_query(texts[0])]
            else:
                raw = []
                # No tqdm object at all unless asked: even a disabled one takes tqdm's global
                # lock, which deadlocks a process forked while tqdm's monitor thread held it.
                bar = (
                    tqdm(total=len(texts), desc="embedding examples", unit="ex")
                    if self.show_progress
                    else None
                )
                try:
                    for start in range(0, len(texts), _EMBED_BATCH):
                        chunk = texts[start : start + _EMBED_BATCH]
                        raw.extend(self.embeddings.embed_documents(chunk))
                        if bar is not None:
                            bar.update(len(chunk))
                finally:
                    if bar is not None:
                        bar.close()
        except ERASEError:  # the model's own typed refusal (InputTooLongError) stays as is
            raise
        except Exception as err:
            raise EmbeddingError(f"the embedding model failed: {err}") from err
        return self._validated(raw, len(texts), dimension)

    def _validated(
        self, raw: npt.ArrayLike, count: int, dimension: int | None
    ) -> npt.NDArray[np.float32]:
        """Normalized float32 rows, or EmbeddingError unless there are `count` finite,
        non-zero, real vectors of `dimension` (any allowed dimension if None)."""
        try:
            if np.iscomplexobj(raw):
                raise ValueError("embeddings must be real numbers")
            with np.errstate(over="raise"):  # a value beyond float32 is refused, not warned
                matrix = np.asarray(raw, dtype=np.float32)
            if matrix.ndim != 2 or matrix.shape[0] != count:
                raise ValueError(
                    f"expected {count} embeddings, got an array of shape {matrix.shape}"
                )
            if not self.p <= matrix.shape[1] <= MAX_DIMENSION:
                raise ValueError(f"embedding dimension must be in [p={self.p}, {MAX_DIMENSION}]")
            if dimension is not None and matrix.shape[1] != dimension:
                raise ValueError(
                    f"embedding dimension {matrix.shape[1]} differs from the selector's {dimension}"
                )
            return normalize_rows(matrix)
        except (ValueError, TypeError, FloatingPointError) as err:
            raise EmbeddingError(f"invalid embeddings: {err}") from err

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

        Deletion listeners run after the whole batch is done (and committed), once per id
        in order; if any raises, the others still run and the first exception is re-raised
        at the end. The deletions stand either way. The same holds with and without a store.

        Args:
            ids: Present ids, each at most once.

        Returns:
            One receipt per id, in order.
        """
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise UnknownExampleError("delete_examples takes a list of ids")
        ids = list(ids)
        with self._lock:
            with self._session.write() as writer:
                done = writer.delete(ids)
            # committed: the deletions have happened; nothing below may raise for them
            receipts = receipts_for(done, self._session.erasure())
            for receipt in receipts:
                self._log_delete(receipt)
            self._notify([(d.example_id, parse_example(d.text)) for d in done])
            return receipts

    # ------------------------------------------------------------------ logging
    def _log_id(self, example_id: str) -> str:
        """How logs name an id: the first 16 hex digits of its HMAC-SHA256 under the store's
        log key (the change log's ``id_key`` starts with them), or under a random key of
        this selector when it has no store. Never the id or the example itself."""
        return self._session.key_of(example_id)[:16]

    def _log_add(self, ids: list[str], outcomes: Sequence[ChangeOutcome], seconds: float) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        if outcomes and outcomes[0] is BATCH_FIT:
            logger.info("fitted %d new examples at once in %.6f s", len(ids), seconds)
            return
        for example_id, outcome in zip(ids, outcomes, strict=True):
            if outcome.refit:
                logger.info(
                    "added example %s: refit (reason=%s, iteration=%s)",
                    self._log_id(example_id),
                    outcome.reason.value,
                    outcome.iteration,
                )

    def _log_delete(self, receipt: DeletionReceipt) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "deleted example %s: refit=%s reason=%s iteration=%s seconds=%.6f "
                "position=%s digest_after=%s",
                self._log_id(receipt.example_id),
                receipt.refit,
                receipt.reason,
                receipt.iteration,
                receipt.seconds,
                receipt.position,
                receipt.digest_after[:16],
            )

    def __repr__(self) -> str:
        """Settings, size and digest prefix; never example content or ids."""
        with self._lock:
            params = self.params
            store = self._session.describe()
            extra = (
                f", fetch_k={self._index.fetch_k}, lambda_mult={self._index.lambda_mult}"
                if self.selection == "mmr"
                else ""
            )
            return (
                f"ERASEExampleSelector(selection={self.selection!r}, k={params.k}{extra}, "
                f"examples={len(self._index)}, dimension={self.dimension}, "
                f"input_keys={self.input_keys}, epsilon={params.epsilon}, seed={params.seed}, "
                f"store={store!r}, state_digest={self._index.state_digest()[:16]!r})"
            )

    def _notify(self, deleted: list[tuple[str, Example]]) -> None:
        """Run every listener for every deleted example; re-raise the first failure last."""
        failure: BaseException | None = None
        for example_id, example in deleted:
            for listener in self._deletion_listeners:
                try:
                    listener(example_id, dict(example))
                except Exception as err:
                    failure = failure or err
        if failure is not None:
            raise failure

    def add_deletion_listener(self, listener: Callable[[str, dict[str, Any]], object]) -> None:
        """Call `listener(example_id, example)` after every deletion, under the lock.

        For caches outside the selector that may hold a deleted example (an LLM's prompt or
        KV cache: see `langchain_erase.llms.evict_on_delete`). Listeners run after the whole
        deletion (batch) is done and committed; see `delete_examples` for failures.

        Args:
            listener: Called with the id and the deleted example.
        """
        with self._lock:
            self._deletion_listeners.append(listener)

    async def adelete_example(self, example_id: str) -> DeletionReceipt:
        """Async `delete_example` (runs in an executor).

        Args:
            example_id: A present id.

        Returns:
            The receipt.
        """
        return await run_in_executor(None, self.delete_example, example_id)

    async def adelete_examples(self, ids: Sequence[str]) -> list[DeletionReceipt]:
        """Async `delete_examples` (runs in an executor).

        Args:
            ids: Present ids.

        Returns:
            The receipts.
        """
        return await run_in_executor(None, self.delete_examples, ids)

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
        if consistency not in _CONSISTENCY:
            raise InvalidParameterError(f"consistency must be one of {_CONSISTENCY}")
        if (
            not isinstance(name, str)
            or not 0 < len(name) <= _MAX_NAME
            or "\0" in name
            or not encodable(name)
        ):
            raise InvalidParameterError(
                f"name must be a non-empty string of valid Unicode of at most {_MAX_NAME}"
            )
        if isinstance(target, str | os.PathLike):
            _file_path(target, "target")
        if isinstance(log_key, str):
            if not encodable(log_key):
                raise InvalidParameterError("log_key must be valid Unicode (no lone surrogates)")
            log_key = log_key.encode("utf-8")
        if log_key is not None and (not isinstance(log_key, bytes) or not log_key):
            raise InvalidParameterError("log_key must be a non-empty string or bytes")
        cls(embeddings, **params)  # invalid parameters are refused before anything is created
        backend, key = open_backend(target, name, log_key)
        try:
            return cls._attach(backend, key, embeddings, params, consistency)
        except BaseException:
            backend.close()
            raise

    @classmethod
    def _attach(
        cls,
        backend: StorageBackend,
        key: bytes,
        embeddings: Embeddings,
        params: dict[str, Any],
        consistency: Consistency,
    ) -> ERASEExampleSelector:
        header = backend.read_header()
        if header is None:
            new = cls(embeddings, **params)
            header = backend.create(StoreHeader(new._stored_params(), None, None, None))
        stored = header.params
        try:
            cls(embeddings, **stored)
        except (InvalidParameterError, TypeError) as err:
            raise StateFileError(f"{backend.describe()} has invalid parameters: {err}") from None
        selector = cls(embeddings, **{**stored, **params})
        given = selector._stored_params()
        if given != stored:
            differ = sorted(key for key in stored if given.get(key) != stored[key])
            raise InvalidParameterError(
                f"{backend.describe()} was created with other parameters: "
                + ", ".join(f"{k}={stored[k]!r} (given {given.get(k)!r})" for k in differ)
            )
        if header.fingerprint is not None:
            selector._check_fingerprint(header.fingerprint, backend.describe())
        selector._session = StoreSession(selector._index, backend, key, parse_example, consistency)
        return selector

    def _model_fingerprint(self) -> dict[str, Any]:
        """Dimension and embeddings of the fixed probe texts (computed once)."""
        if self._fingerprint is None:
            probes = self._embed(list(FINGERPRINT_PROBES), query=False, dimension=None)
            self._fingerprint = {
                "dimension": int(probes.shape[1]),
                "probes": [[float(x) for x in row] for row in probes],
            }
        return self._fingerprint

    def _check_fingerprint(self, stored: dict[str, Any], where: str) -> None:
        mine = self._model_fingerprint()
        advice = (
            "open it with the embedding model it was built with, or build a new store "
            "(another path or name) with this model"
        )
        if stored.get("dimension") != mine["dimension"]:
            raise EmbeddingModelMismatchError(
                f"{where} was built with an embedding model of dimension "
                f"{stored.get('dimension')!r}, this one has {mine['dimension']}: {advice}"
            )
        try:
            theirs = np.asarray(stored["probes"], dtype=np.float64)
            ours = np.asarray(mine["probes"], dtype=np.float64)
            cosines = np.sum(theirs * ours, axis=1) / (
                np.linalg.norm(theirs, axis=1) * np.linalg.norm(ours, axis=1)
            )
        except (KeyError, TypeError, ValueError):
            raise StateFileError(f"{where} has an invalid model fingerprint") from None
        if theirs.shape != ours.shape or not np.all(cosines >= _FINGERPRINT_MIN_COSINE):
            raise EmbeddingModelMismatchError(
                f"{where} was built with another embedding model (its probe embeddings "
                f"differ): {advice}"
            )

    @property
    def store(self) -> StorageBackend | None:
        """The storage backend behind an `open`ed selector, else None."""
        return self._session.store

    @property
    def consistency(self) -> Consistency:
        """ "strong" or "eventual" (see `open`)."""
        return self._session.consistency

    @property
    def log_position(self) -> int | None:
        """The last change-log position applied to memory (None without a store)."""
        return self._session.position

    @property
    def consistency_repairs(self) -> int:
        """How often catching up found a digest mismatch and refitted from the rows."""
        return self._session.repairs

    def deletion_log(self) -> list[dict[str, Any]]:
        """The store's audit log of deletions, oldest first; never example content.

        Returns:
            One dict per deletion with the change-record fields (position, op, id_key: the
            keyed HMAC of the id, digest_after, time, refit, reason, iteration, seconds);
            an empty list without a store.
        """
        with self._lock:
            return [dataclasses.asdict(change) for change in self._session.changes()]

    def sync(self) -> int | None:
        """Catch up with the store now.

        Returns:
            The log position after catching up (None without a store).
        """
        with self._lock:
            return self._session.sync()

    def close(self) -> None:
        """Release the store; later reads and changes raise StateFileError (no-op without
        one)."""
        self._session.close()

    # ------------------------------------------------------------ snapshots
    def save(self, path: str | Path) -> None:
        """Write a snapshot (no pickle, mode 0600) that `load` restores and verifies.

        A store-backed selector records its set name and log position; see `load`.

        Args:
            path: Destination file.
        """
        with self._lock:
            ids, texts, vectors = self._index.rows()
            matrix = self._index.projection_matrix
            backend = self._session.store
            store = None
            if backend is not None:
                store = {"set": backend.name, "position": self._session.position}
            header = {
                "params": self._stored_params(),
                "count": len(ids),
                "dimension": self.dimension,
                "state_digest": self.state_digest(),
                "store": store,
            }
            write_snapshot(
                _file_path(path, "path"),
                Snapshot(
                    header,
                    ids,
                    texts,
                    vectors.reshape(len(ids), self.dimension or 0),
                    matrix if matrix is not None else np.zeros((0, 0)),
                ),
            )

    @classmethod
    def load(
        cls,
        path: str | Path,
        embeddings: Embeddings,
        *,
        store: ERASEExampleSelector | None = None,
    ) -> ERASEExampleSelector:
        """Restore a snapshot into an in-memory selector; StateFileError if it is corrupted
        or foreign.

        A snapshot saved from a store-backed selector knows the store's log position at
        that time. Deletions committed to the store later must not come back, so loading
        it needs `store=` (a selector `open`ed on that store and set): it is refused with
        `StaleSnapshotError` if the store's log has moved past the snapshot's position.

        Args:
            path: The snapshot file.
            embeddings: The embedding model.
            store: The open store-backed selector to check a store snapshot against.

        Returns:
            The restored selector.
        """
        path = _file_path(path, "path")
        snapshot = read_snapshot(path)
        header = snapshot.header
        origin = header.get("store")
        if origin is not None:
            if store is None or store.store is None:
                raise StaleSnapshotError(
                    f"{path} was saved from a store; pass store= (the store opened again) "
                    "so deletions made after the snapshot cannot come back"
                )
            position = store.sync()
            if not isinstance(origin, dict) or origin.get("set") != store.store.name:
                raise StaleSnapshotError(f"{path} was saved from another example set")
            if origin.get("position") != position:
                raise StaleSnapshotError(
                    f"{path} was saved at log position {origin.get('position')!r}; the store "
                    f"is at {position}: its later changes (deletions) are not in the snapshot"
                )
        try:
            selector = cls(embeddings, **dict(header["params"]))
            vectors = snapshot.vectors
            if snapshot.ids:
                selector._index.load(snapshot.ids, snapshot.texts, vectors, snapshot.projection)
                for text in snapshot.texts:
                    parse_example(text)
        except StateFileError:
            raise
        except (TypeError, ValueError, KeyError, OverflowError) as err:
            raise StateFileError(f"{path} has invalid contents: {err}") from None
        if selector.state_digest() != header.get("state_digest"):
            raise StateFileError(f"{path} failed its integrity check (state digest mismatch)")
        return selector


def _mmr_params(selection: str, fetch_k: object, lambda_mult: object) -> dict[str, Any]:
    """Checked `fetch_k` and `lambda_mult` for the index (defaults for mmr, none otherwise)."""
    if selection != "mmr":
        if fetch_k is not None or lambda_mult is not None:
            raise InvalidParameterError("fetch_k and lambda_mult apply only to selection='mmr'")
        return {}
    fetch_k = DEFAULT_FETCH_K if fetch_k is None else fetch_k
    lambda_mult = DEFAULT_LAMBDA_MULT if lambda_mult is None else lambda_mult
    if isinstance(fetch_k, bool) or not isinstance(fetch_k, int) or fetch_k < 1:
        raise InvalidParameterError(f"fetch_k must be a positive integer, got {fetch_k!r}")
    if (
        isinstance(lambda_mult, bool)
        or not isinstance(lambda_mult, (int, float))
        or not 0.0 <= lambda_mult <= 1.0
    ):
        raise InvalidParameterError(f"lambda_mult must be a number in [0, 1], got {lambda_mult!r}")
    return {"fetch_k": fetch_k, "lambda_mult": float(lambda_mult)}

"""`ERASEExampleSelector`: LangChain's example-selector interface over the ERASE core.

This module is the thin adapter: it validates examples, embeds them once with the user's
`Embeddings`, keeps the examples and their stored vectors, and delegates clustering and the
exact deletion check to `langchain_erase.core`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.runnables.config import run_in_executor
from tqdm.auto import tqdm

from langchain_erase.core import (
    BucketIndex,
    ChangeOutcome,
    FixedPointProjection,
    QKMeansParams,
    QuantizedKMeans,
)
from langchain_erase.core.buckets import SelectionMode
from langchain_erase.core.hashing import id_hash64, keyed_hash64, mix64
from langchain_erase.core.projection import MAX_DIMENSION, normalize_rows
from langchain_erase.core.qkmeans import MAX_P, MAX_POINTS, squared_distances
from langchain_erase.errors import (
    DuplicateExampleError,
    EmbeddingError,
    ERASEError,
    InvalidExampleError,
    InvalidParameterError,
    StateFileError,
    UnknownExampleError,
)
from langchain_erase.receipts import DeletionReceipt

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from langchain_erase.store import SelectorStore

__all__ = [
    "DEFAULT_EPSILON",
    "DEFAULT_GAMMA",
    "DEFAULT_MAX_ITER",
    "DEFAULT_P",
    "ERASEExampleSelector",
    "canonical_json",
    "default_example_id",
]

#: Defaults chosen with benchmarks/bench_selector.py (see docs/benchmarks.md).
DEFAULT_P = 8
DEFAULT_EPSILON = 0.25
DEFAULT_GAMMA = 0.2
DEFAULT_MAX_ITER = 30
_SELECTION_MODES = ("random", "centroid", "similar", "fixed")
_EMBED_BATCH = 256
_MASK64 = (1 << 64) - 1
_LABEL_SALT = 0x9E3779B97F4A7C15


def canonical_json(example: Mapping[str, str]) -> str:
    """The one serialization of an example used for ids, digests and the store."""
    return json.dumps(example, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def default_example_id(example: Mapping[str, str]) -> str:
    """Stable id of an example: the first 32 hex digits of sha256 of its canonical JSON."""
    return hashlib.sha256(canonical_json(example).encode("utf-8")).hexdigest()[:32]


def _validate_example(
    example: object, required: Sequence[str], what: str = "example"
) -> dict[str, str]:
    if not isinstance(example, Mapping) or not example:
        raise InvalidExampleError(
            f"{what} must be a non-empty dict of strings, got {example!r:.80}"
        )
    for key, value in example.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidExampleError(
                f"{what} keys and values must be strings, got {key!r:.40}: {value!r:.40}"
            )
    missing = [key for key in required if key not in example]
    if missing:
        raise InvalidExampleError(f"{what} is missing keys {missing}")
    return dict(example)


def _text_of(values: Mapping[str, str], input_keys: Sequence[str] | None) -> str:
    """Text that is embedded: the input keys' values, sorted by key, joined by spaces
    (as LangChain's similarity selectors do)."""
    keys = sorted(input_keys) if input_keys else sorted(values)
    return " ".join(values[key] for key in keys)


class ERASEExampleSelector(BaseExampleSelector):
    """Few-shot example selector whose examples can be exactly unlearned in constant time.

    Examples are clustered by quantized k-means into k buckets and one example per bucket
    is selected. After `delete_example(id)` the selector is bit-for-bit the selector that
    `from_examples` would build without that example (`state_digest()` equal, same
    selections); most deletions take O(T*k*p) work, independent of the number of examples.
    Thread-safe: every public method takes an internal lock.
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
    ) -> None:
        if selection not in _SELECTION_MODES:
            raise InvalidParameterError(
                f"selection must be one of {_SELECTION_MODES}, got {selection!r}"
            )
        if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= MAX_P:
            raise InvalidParameterError(f"p must be an integer in [1, {MAX_P}], got {p!r}")
        for name, keys in (("input_keys", input_keys), ("example_keys", example_keys)):
            if keys is not None and (
                isinstance(keys, str) or not all(isinstance(key, str) for key in keys)
            ):
                raise InvalidParameterError(f"{name} must be a list of strings, got {keys!r}")
        try:
            self._params = QKMeansParams(
                k=k, epsilon=epsilon, seed=seed, gamma=gamma, max_iter=max_iter
            )
        except (ValueError, TypeError) as err:  # TypeError: a string where a number belongs
            raise InvalidParameterError(str(err)) from None
        self.embeddings = embeddings
        self.input_keys = list(input_keys) if input_keys else None
        self.example_keys = list(example_keys) if example_keys else None
        self.selection: SelectionMode = selection
        self.show_progress = show_progress
        self._p = p
        self._lock = threading.RLock()
        self._store: SelectorStore | None = None
        self._deletion_listeners: list[Callable[[str, dict[str, str]], object]] = []
        self._clear_state()

    def _clear_state(self) -> None:
        """Empty every structure that holds examples (the state of a fresh selector)."""
        self._projection: FixedPointProjection | None = None
        self._static: tuple[bool, bytes] | None = None
        self._kmeans = QuantizedKMeans(self._params, self._p)
        self._examples: dict[str, dict[str, str]] = {}
        self._vectors: dict[str, npt.NDArray[np.float32]] = {}
        self._tags: dict[str, npt.NDArray[np.uint64]] = {}
        self._members_acc = np.zeros(4, dtype=np.uint64)
        self._buckets = BucketIndex(0, self.selection, 0)

    # ------------------------------------------------------------- construction
    @classmethod
    def from_examples(
        cls,
        examples: Sequence[Mapping[str, str]],
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

        Extra keyword arguments (`p`, `gamma`, `max_iter`, `show_progress`) go to the
        constructor; `vectors` passes precomputed embeddings (see `add_examples`).
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

    @property
    def params(self) -> QKMeansParams:
        return self._params

    @property
    def p(self) -> int:
        return self._p

    @property
    def dimension(self) -> int | None:
        """Embedding dimension, fixed by the first example."""
        return None if self._projection is None else self._projection.dimension

    # ---------------------------------------------------------------- reading
    @property
    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._examples)

    def __len__(self) -> int:
        return len(self._examples)

    def __contains__(self, example_id: object) -> bool:
        return example_id in self._examples

    def get_example(self, example_id: str) -> dict[str, str]:
        with self._lock:
            if example_id not in self._examples:
                raise UnknownExampleError(f"no example with id {example_id!r}")
            return dict(self._examples[example_id])

    def buckets(self) -> list[list[str]]:
        """Example ids of each cluster (in cluster order, ids sorted)."""
        with self._lock:
            out: list[list[str]] = [[] for _ in range(self._kmeans.n_clusters)]
            for example_id, label in self._kmeans.members():
                out[label].append(example_id)
            return [sorted(b) for b in out]

    def state_digest(self) -> str:
        """sha256 of the canonical clustering state and membership (layout-independent).

        Two selectors with equal digests select the same examples for every query.
        """
        with self._lock:
            h = hashlib.sha256(self._static_digest())
            h.update(self._kmeans.record_digest())
            h.update(self._members_acc.astype("<u8").tobytes())
            return h.hexdigest()

    def _static_digest(self) -> bytes:
        """Digest of what never changes after the first example: settings and projection."""
        if self._static is None or (self._projection is not None) != self._static[0]:
            h = hashlib.sha256()
            settings = {
                "format": "erase-state-1",
                "selection": self.selection,
                "input_keys": self.input_keys,
                "example_keys": self.example_keys,
            }
            h.update(json.dumps(settings, sort_keys=True).encode())
            if self._projection is not None:
                h.update(self._projection.matrix.astype("<f8").tobytes())
            self._static = (self._projection is not None, h.digest())
        return self._static[1]

    # ------------------------------------------------------------- selection
    def select_examples(self, input_variables: dict[str, str]) -> list[dict[str, Any]]:
        """One example per non-empty cluster, in cluster (seeding) order."""
        query = _validate_example(input_variables, self.input_keys or (), "input_variables")
        text = _text_of(query, self.input_keys)
        query_vector = None
        if self.selection == "similar" and self._examples:
            query_vector = self._embed([text], query=True)[0]
        query_hash = keyed_hash64(self._params.seed, "select", text)
        with self._lock:
            picks = self._buckets.pick(query_hash, query_vector)
            return [self._public(self._examples[example_id]) for _, example_id in picks]

    def _public(self, example: dict[str, str]) -> dict[str, Any]:
        if self.example_keys:
            return {key: example[key] for key in self.example_keys}
        return dict(example)

    # ------------------------------------------------------------- insertion
    def add_example(self, example: dict[str, str]) -> str:
        """Add one example; returns its id (the hash of its canonical JSON)."""
        return self.add_examples([example])[0]

    def add_examples(
        self,
        examples: Sequence[Mapping[str, str]],
        ids: Sequence[str] | None = None,
        vectors: npt.ArrayLike | None = None,
    ) -> list[str]:
        """Add examples atomically: on any error nothing is added.

        `vectors` (one row per example) skips the embedding model, for examples that were
        embedded elsewhere with the same model.
        """
        if isinstance(examples, (str, bytes, Mapping)) or not isinstance(examples, Iterable):
            raise InvalidExampleError("examples must be a list of dicts")
        examples = list(examples)
        required = sorted(set(self.input_keys or ()) | set(self.example_keys or ()))
        clean = [_validate_example(e, required) for e in examples]
        new_ids = self._new_ids(clean, ids)
        if len(self._examples) + len(new_ids) > MAX_POINTS:
            raise InvalidExampleError(f"a selector holds at most {MAX_POINTS} examples")
        if not clean:
            return []
        texts = [_text_of(e, self.input_keys) for e in clean]
        unit = (
            self._embed(texts, query=False)
            if vectors is None
            else self._validated(vectors, len(texts))
        )
        with self._lock:
            self._check_new_ids(new_ids)  # again, under the lock
            with self._durable() as store:
                projection = self._projection_for(unit.shape[1])
                coords = projection.project(unit)
                hashes = id_hash64(self._params.seed, new_ids)
                for example_id, example, vector in zip(new_ids, clean, unit, strict=True):
                    self._examples[example_id] = example
                    self._vectors[example_id] = vector
                    self._tags[example_id] = self._member_tag(example_id, example, vector)
                if len(new_ids) * 8 >= len(self._examples):  # large batch: one fit is cheaper
                    self._kmeans.insert_many(new_ids, coords, hashes)
                    self._rebuild()
                else:
                    for example_id, xv, xh in zip(new_ids, coords, hashes.tolist(), strict=True):
                        self._after_insert(example_id, self._kmeans.insert(example_id, xv, xh))
                if store is not None:
                    store.add(new_ids, clean, unit, projection.matrix)
        return new_ids

    async def aadd_example(self, example: dict[str, str]) -> str:
        return await run_in_executor(None, self.add_example, example)

    async def aadd_examples(
        self, examples: Sequence[Mapping[str, str]], ids: Sequence[str] | None = None
    ) -> list[str]:
        return await run_in_executor(None, self.add_examples, examples, ids)

    def _new_ids(self, examples: list[dict[str, str]], ids: Sequence[str] | None) -> list[str]:
        if ids is None:
            new_ids = [default_example_id(e) for e in examples]
        else:
            if isinstance(ids, str) or len(ids) != len(examples):
                raise InvalidExampleError("ids must be a list with one id per example")
            if not all(isinstance(i, str) and i for i in ids):
                raise InvalidExampleError("ids must be non-empty strings")
            new_ids = list(ids)
        self._check_new_ids(new_ids)
        return new_ids

    def _check_new_ids(self, new_ids: list[str]) -> None:
        seen: set[str] = set()
        for example_id in new_ids:
            if example_id in seen or example_id in self._examples:
                raise DuplicateExampleError(f"example id {example_id!r} already present")
            seen.add(example_id)

    def _embed(self, texts: list[str], *, query: bool) -> npt.NDArray[np.float32]:
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
        return self._validated(raw, len(texts))

    def _validated(self, raw: npt.ArrayLike, count: int) -> npt.NDArray[np.float32]:
        """Normalized float32 rows, or EmbeddingError unless there are `count` finite,
        non-zero vectors of the selector's dimension."""
        try:
            matrix = np.asarray(raw, dtype=np.float32)
            if matrix.ndim != 2 or matrix.shape[0] != count:
                raise ValueError(
                    f"expected {count} embeddings, got an array of shape {matrix.shape}"
                )
            if not self._p <= matrix.shape[1] <= MAX_DIMENSION:
                raise ValueError(f"embedding dimension must be in [p={self._p}, {MAX_DIMENSION}]")
            if self.dimension is not None and matrix.shape[1] != self.dimension:
                raise ValueError(
                    f"embedding dimension {matrix.shape[1]} differs from the selector's "
                    f"{self.dimension}"
                )
            return normalize_rows(matrix)
        except (ValueError, TypeError) as err:
            raise EmbeddingError(f"invalid embeddings: {err}") from err

    def _projection_for(self, dimension: int) -> FixedPointProjection:
        if self._projection is None:
            self._projection = FixedPointProjection(self._params.seed, dimension, self._p)
        return self._projection

    # -------------------------------------------------------------- deletion
    def delete_example(self, example_id: str) -> DeletionReceipt:
        """Exactly unlearn one example. Raises UnknownExampleError if it is not present."""
        with self._lock:
            if not isinstance(example_id, str) or example_id not in self._examples:
                raise UnknownExampleError(f"no example with id {example_id!r}")
            start = time.perf_counter()
            before = self.state_digest()
            with self._durable() as store:
                label = self._kmeans.label(example_id)
                distance = self._center_distance(example_id, label)
                outcome = self._kmeans.delete(example_id)
                if outcome.refit:
                    self._rebuild()
                else:
                    self._members_acc -= self._labelled_tag(example_id, label)
                    self._buckets.remove(example_id, label, distance)
                vector = self._vectors.pop(example_id)
                vector[:] = 0.0  # erase the stored bytes, not just the reference
                example = self._examples[example_id]
                del self._examples[example_id]
                del self._tags[example_id]
                if not self._examples:  # a fresh fit of no examples has no projection
                    self._projection = None
                receipt = DeletionReceipt(
                    example_id=example_id,
                    refit=outcome.refit,
                    reason=outcome.reason.value,
                    iteration=outcome.iteration,
                    seconds=time.perf_counter() - start,
                    digest_before=before,
                    digest_after=self.state_digest(),
                )
                if store is not None:
                    store.delete(receipt, now_empty=not self._examples)
            for listener in self._deletion_listeners:
                listener(example_id, example)
            return receipt

    def add_deletion_listener(self, listener: Callable[[str, dict[str, str]], object]) -> None:
        """Call `listener(example_id, example)` after every deletion, under the lock.

        For caches outside the selector that may hold a deleted example (an LLM's prompt or
        KV cache: see `langchain_erase.llms.evict_on_delete`). The deletion is already done
        when a listener runs; an exception from it propagates to the caller.
        """
        with self._lock:
            self._deletion_listeners.append(listener)

    async def adelete_example(self, example_id: str) -> DeletionReceipt:
        return await run_in_executor(None, self.delete_example, example_id)

    def delete_examples(self, ids: Sequence[str]) -> list[DeletionReceipt]:
        """Delete several examples; all ids are checked first, so an unknown id deletes none."""
        if isinstance(ids, str) or not isinstance(ids, Iterable):
            raise UnknownExampleError("delete_examples takes a list of ids")
        with self._lock:
            ids = list(ids)
            for example_id in ids:
                if not isinstance(example_id, str) or example_id not in self._examples:
                    raise UnknownExampleError(f"no example with id {example_id!r}")
            if len(set(ids)) != len(ids):
                raise DuplicateExampleError("the same id is listed twice")
            with self._durable():  # one transaction for the batch
                return [self.delete_example(example_id) for example_id in ids]

    async def adelete_examples(self, ids: Sequence[str]) -> list[DeletionReceipt]:
        return await run_in_executor(None, self.delete_examples, ids)

    # -------------------------------------------------------- internal state
    def _member_tag(
        self, example_id: str, example: dict[str, str], vector: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.uint64]:
        """256-bit hash of (id, content, stored vector): what the membership digest sums."""
        parts = (example_id.encode(), canonical_json(example).encode(), vector.tobytes())
        data = b"".join(len(part).to_bytes(8, "little") + part for part in parts)
        return np.frombuffer(hashlib.blake2b(data, digest_size=32).digest(), dtype=np.uint64)

    def _labelled_tag(self, example_id: str, label: int) -> npt.NDArray[np.uint64]:
        """The member's contribution to the membership digest (a sum mod 2**64 per lane)."""
        return mix64(self._tags[example_id], (label * _LABEL_SALT) & _MASK64)

    def _center_distance(self, example_id: str, label: int) -> int:
        center = self._kmeans.final_centers()[label]
        return int(squared_distances(self._kmeans.coords(example_id)[None, :], center)[0])

    def _after_insert(self, example_id: str, outcome: ChangeOutcome) -> None:
        """Bring buckets and the membership digest in line with the clustering."""
        if outcome.refit:
            self._rebuild()
            return
        label = self._kmeans.label(example_id)
        self._members_acc += self._labelled_tag(example_id, label)
        self._buckets.add(
            example_id, label, self._center_distance(example_id, label), self._vectors[example_id]
        )

    def _rebuild(self) -> None:
        """Rebuild buckets and the membership digest after a (re)fit: O(n), vectorized."""
        ids, labels, coords = self._kmeans.alive()
        centers = self._kmeans.final_centers()
        if ids:
            tags = np.stack([self._tags[i] for i in ids])
            salts = (labels.astype(np.uint64) * np.uint64(_LABEL_SALT))[:, None]
            self._members_acc = mix64(tags, salts).sum(axis=0, dtype=np.uint64)
            diff = coords - centers[labels]
            distances = np.einsum("ij,ij->i", diff, diff)
        else:
            self._members_acc = np.zeros(4, dtype=np.uint64)
            distances = np.zeros(0, dtype=np.int64)
        self._buckets = BucketIndex.build(
            self._kmeans.n_clusters,
            self.selection,
            self.dimension or 0,
            ids,
            labels,
            distances,
            [self._vectors[i] for i in ids],
            seed=self._params.seed,
        )

    # ------------------------------------------------------------ verification
    def verify(self) -> bool:
        """Refit a fresh selector from the stored vectors and compare state digests."""
        with self._lock:
            fresh = self._fresh_copy()
            return fresh.state_digest() == self.state_digest()

    def _fresh_copy(self) -> ERASEExampleSelector:
        fresh = ERASEExampleSelector(
            self.embeddings,
            k=self._params.k,
            epsilon=self._params.epsilon,
            seed=self._params.seed,
            input_keys=self.input_keys,
            example_keys=self.example_keys,
            selection=self.selection,
            p=self._p,
            gamma=self._params.gamma,
            max_iter=self._params.max_iter,
        )
        ids = sorted(self._examples)
        if ids and self._projection is not None:
            vectors = np.stack([self._vectors[i] for i in ids])
            fresh._load_fitted(
                ids, [self._examples[i] for i in ids], vectors, self._projection.matrix
            )
        return fresh

    def _load_fitted(
        self,
        ids: list[str],
        examples: list[dict[str, str]],
        vectors: npt.NDArray[np.float32],
        projection_matrix: npt.NDArray[np.float64] | None = None,
    ) -> None:
        """Fill an empty selector from stored (already normalized) vectors; no embedding."""
        self._projection = FixedPointProjection(
            self._params.seed, vectors.shape[1], self._p, matrix=projection_matrix
        )
        for example_id, example, vector in zip(ids, examples, vectors, strict=True):
            self._examples[example_id] = example
            self._vectors[example_id] = np.array(vector, dtype=np.float32)
            self._tags[example_id] = self._member_tag(
                example_id, example, self._vectors[example_id]
            )
        coords = self._projection.project(vectors)
        self._kmeans.fit(ids, coords, id_hash64(self._params.seed, ids))
        self._rebuild()

    # ------------------------------------------------------------ persistence
    @classmethod
    def open(cls, path: str | Path, embeddings: Embeddings, **kwargs: Any) -> ERASEExampleSelector:
        """Create or reopen a SQLite store; every add and delete is durable when it returns.

        See `langchain_erase.store.open_selector` (parameters must match a reopened store).
        """
        from langchain_erase.store import open_selector

        return open_selector(path, embeddings, **kwargs)

    @property
    def store(self) -> SelectorStore | None:
        """The SQLite store behind an `open`ed selector (its deletion log), else None."""
        return self._store

    def close(self) -> None:
        """Release the store (later changes raise StateFileError); no-op without one."""
        with self._lock:
            if self._store is not None:
                self._store.close()

    @contextmanager
    def _durable(self) -> Iterator[SelectorStore | None]:
        """Make the block's in-memory change and its store write one atomic step.

        Held under the lock. The store commits the change with the new digest; on any error
        it rolls back and memory is rebuilt from it, so both stay as before. Nested blocks
        (a batch) join the outer transaction.
        """
        store = self._store
        if store is None or store.in_transaction:
            yield store
            return
        try:
            with store.transaction():
                yield store
                store.set_digest(self.state_digest())
        except BaseException:
            self._restore_from(store)
            raise

    def _restore_from(self, store: SelectorStore) -> None:
        """Rebuild memory from the store's rows and check the digest recorded with them."""
        rows = store.rows()
        self._clear_state()
        try:
            if rows.ids:
                self._load_fitted(rows.ids, rows.examples, rows.vectors, rows.projection)
        except ValueError as err:
            raise StateFileError(f"{store.path} has invalid contents: {err}") from None
        if self.state_digest() != rows.digest:
            raise StateFileError(f"{store.path} failed its integrity check (state digest mismatch)")

    def save(self, path: str | Path) -> None:
        """Write a snapshot (no pickle) that `load` restores and verifies."""
        from langchain_erase.persistence import save_selector

        with self._lock:
            save_selector(self, Path(path))

    @classmethod
    def load(cls, path: str | Path, embeddings: Embeddings) -> ERASEExampleSelector:
        """Restore a snapshot; raises StateFileError if it is corrupted or foreign."""
        from langchain_erase.persistence import load_selector

        return load_selector(Path(path), embeddings)

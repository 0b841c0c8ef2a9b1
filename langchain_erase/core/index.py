"""`ERASEIndex`: all ERASE state of one example set, rows in and rows out.

The index owns the parameters, the projection, the quantized k-means record, the per-cluster
bucket indexes, the stored vectors, the examples' canonical JSON texts and the membership
digest. It takes and returns plain rows (ids, texts, float32 unit vectors), applies one change
at a time with the exact in-place operations, picks demonstrations, and checks itself against
a fresh fit of its own rows (`verify`): the one place where "refit from rows, compare digests"
lives. No LangChain and no storage import.

Shapes: `n` examples, embedding dimension `D`, projected dimension `p` (`min(p, D)`).
Vectors are float32 `(n, D)` rows of unit length; the projection matrix is float64 `(D, p)`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from langchain_erase.core.buckets import BucketIndex
from langchain_erase.core.buckets import SelectionMode as BucketMode
from langchain_erase.core.hashing import id_hash64, mix64
from langchain_erase.core.neighbors import NeighborIndex
from langchain_erase.core.projection import MAX_DIMENSION, FixedPointProjection
from langchain_erase.core.qkmeans import (
    MAX_POINTS,
    ChangeOutcome,
    QKMeansParams,
    QuantizedKMeans,
    RefitReason,
    squared_distances,
)

__all__ = [
    "BATCH_FIT",
    "DEFAULT_FETCH_K",
    "DEFAULT_LAMBDA_MULT",
    "SELECTION_MODES",
    "ERASEIndex",
    "IndexRows",
    "SelectionMode",
]

#: "random", "centroid" and "similar" pick one example per cluster (the bucket modes);
#: "knn" and "mmr" pick k examples among all members (exact, see `core.neighbors`).
SelectionMode = Literal["random", "centroid", "similar", "fixed", "knn", "mmr"]
SELECTION_MODES: tuple[SelectionMode, ...] = (
    "random",
    "centroid",
    "similar",
    "fixed",
    "knn",
    "mmr",
)
#: LangChain's defaults (`MaxMarginalRelevanceExampleSelector`, `max_marginal_relevance_search`).
DEFAULT_FETCH_K = 20
DEFAULT_LAMBDA_MULT = 0.5

_MASK64 = (1 << 64) - 1
_LABEL_SALT = 0x9E3779B97F4A7C15
#: Largest projection entry a `FixedPointProjection` produces for dimension D is
#: sqrt(D) * 2**15 (entries of an orthonormal matrix are at most 1 in magnitude).
_MATRIX_SCALE = float(1 << 15)
#: Outcome reported for examples added by one batch fit (a batch is fitted at once).
BATCH_FIT = ChangeOutcome(True, RefitReason.NONE)

IndexRows = tuple[list[str], list[str], npt.NDArray[np.float32]]


class ERASEIndex:
    """All ERASE state of one example set, with exact single-change operations.

    After any sequence of `add` and `delete`, `state_digest()` equals the digest of an index
    built by `load` from the surviving rows (bit for bit), and `pick` selects the same
    examples. Not thread-safe: the caller serializes access.
    """

    def __init__(
        self,
        params: QKMeansParams,
        p: int,
        selection: SelectionMode,
        context: Mapping[str, Any] | None = None,
        *,
        fetch_k: int = DEFAULT_FETCH_K,
        lambda_mult: float = DEFAULT_LAMBDA_MULT,
    ) -> None:
        """Create an empty index.

        Args:
            params: Clustering parameters (k, epsilon, seed, gamma, max_iter).
            p: Projected dimension (at most `MAX_P`).
            selection: Selection mode, one of `SELECTION_MODES`.
            context: Extra JSON-able settings that are part of the state's identity
                (the adapter's input and example keys); included in `state_digest`.
            fetch_k: "mmr": how many nearest members are candidates (at least k are).
            lambda_mult: "mmr": weight of similarity to the query (1) versus diversity (0).
        """
        self.params = params
        self.p = p
        self.selection: SelectionMode = selection
        self.fetch_k = fetch_k
        self.lambda_mult = lambda_mult
        self._context = dict(context or {})
        if selection == "mmr":  # part of the state's identity only where they act
            self._context.update(fetch_k=fetch_k, lambda_mult=lambda_mult)
        # knn and mmr keep the clustering (receipts, digest and verify are the same in
        # every mode) and its plain member sets; the bucket modes pick from the buckets.
        self._bucket_mode: BucketMode = "random"
        if selection in ("centroid", "similar", "fixed"):
            self._bucket_mode = selection
        #: Incremented by every change (before it starts): callers tell from it whether a
        #: failed operation may have left a partial change.
        self.revision = 0
        self.clear()

    # ---------------------------------------------------------------- state
    def clear(self) -> None:
        """Empty every structure that holds examples (the state of a fresh index)."""
        self.revision += 1
        self._projection: FixedPointProjection | None = None
        self._static: tuple[bool, bytes] | None = None
        self._kmeans = QuantizedKMeans(self.params, self.p)
        self._texts: dict[str, str] = {}
        self._vectors: dict[str, npt.NDArray[np.float32]] = {}
        self._tags: dict[str, npt.NDArray[np.uint64]] = {}
        self._members_acc = np.zeros(4, dtype=np.uint64)
        self._buckets = BucketIndex(0, self._bucket_mode, 0, seed=self.params.seed)
        self._neighbors: NeighborIndex | None = None

    def __len__(self) -> int:
        return len(self._texts)

    def __contains__(self, example_id: object) -> bool:
        return example_id in self._texts

    @property
    def dimension(self) -> int | None:
        """Embedding dimension D, fixed by the first example; None while empty."""
        return None if self._projection is None else self._projection.dimension

    @property
    def projection_matrix(self) -> npt.NDArray[np.float64] | None:
        """The float64 (D, p) projection matrix, or None while empty."""
        return None if self._projection is None else self._projection.matrix

    @property
    def iterations(self) -> int:
        """Lloyd iterations T of the current clustering record."""
        return self._kmeans.iterations

    @property
    def needs_query_vector(self) -> bool:
        """True if `pick` needs the query's embedding (similarity-based selection)."""
        return self.selection in ("similar", "knn", "mmr")

    def ids(self) -> list[str]:
        """Returns:
        Every example id, sorted."""
        return sorted(self._texts)

    def text(self, example_id: str) -> str:
        """Args:
            example_id: A present id (KeyError otherwise).

        Returns:
            The example's canonical JSON text."""
        return self._texts[example_id]

    def vector(self, example_id: str) -> npt.NDArray[np.float32]:
        """Args:
            example_id: A present id (KeyError otherwise).

        Returns:
            A copy of the stored float32 (D,) unit vector."""
        return self._vectors[example_id].copy()

    def rows(self) -> IndexRows:
        """Rows out.

        Returns:
            (ids sorted, canonical texts, float32 (n, D) vectors); (0, 0) vectors if empty.
        """
        ids = self.ids()
        if not ids:
            return [], [], np.zeros((0, 0), dtype=np.float32)
        return ids, [self._texts[i] for i in ids], np.stack([self._vectors[i] for i in ids])

    def buckets(self) -> list[list[str]]:
        """Returns:
        Example ids of each cluster (in cluster order, ids sorted)."""
        out: list[list[str]] = [[] for _ in range(self._kmeans.n_clusters)]
        for example_id, label in self._kmeans.members():
            out[label].append(example_id)
        return [sorted(b) for b in out]

    def state_digest(self) -> str:
        """sha256 of the canonical clustering state and membership (layout-independent).

        Returns:
            64 hex digits; two indexes with equal digests pick the same examples for every
            query.
        """
        h = hashlib.sha256(self._static_digest())
        h.update(self._kmeans.record_digest())
        h.update(self._members_acc.astype("<u8").tobytes())
        return h.hexdigest()

    def _static_digest(self) -> bytes:
        """Digest of what never changes after the first example: settings and projection."""
        if self._static is None or (self._projection is not None) != self._static[0]:
            h = hashlib.sha256()
            settings = {"format": "erase-state-1", "selection": self.selection, **self._context}
            h.update(json.dumps(settings, sort_keys=True).encode())
            if self._projection is not None:
                h.update(self._projection.matrix.astype("<f8").tobytes())
            self._static = (self._projection is not None, h.digest())
        return self._static[1]

    # ------------------------------------------------------------ rows in
    def check_rows(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        unit_vectors: npt.NDArray[np.float32],
        projection: npt.NDArray[np.float64] | None = None,
    ) -> None:
        """Raise ValueError unless `add(ids, texts, unit_vectors, projection)` would succeed.

        Args:
            ids: New ids (unique, absent, non-empty strings).
            texts: Their canonical JSON texts.
            unit_vectors: float32 (len(ids), D) unit rows; D must equal `dimension` if set.
            projection: Optional float64 (D, p) matrix used when the index is empty.
        """
        n = len(ids)
        if len(texts) != n or unit_vectors.ndim != 2 or unit_vectors.shape[0] != n:
            raise ValueError("ids, texts and vectors disagree in length")
        if n == 0:
            return
        if unit_vectors.dtype != np.float32 or not np.isfinite(unit_vectors).all():
            raise ValueError("vectors must be finite float32 rows")
        if len(set(ids)) != n or any(i in self._texts for i in ids):
            raise ValueError("duplicate example id")
        if len(self._texts) + n > MAX_POINTS:
            raise ValueError(f"an index holds at most {MAX_POINTS} examples")
        dimension = unit_vectors.shape[1]
        if self.dimension is not None and dimension != self.dimension:
            raise ValueError(f"dimension {dimension} differs from the index's {self.dimension}")
        if not 1 <= dimension <= MAX_DIMENSION:
            raise ValueError(f"dimension must be in [1, {MAX_DIMENSION}]")
        if projection is not None and self._projection is None:
            self._check_projection(projection, dimension)

    def _check_projection(self, matrix: npt.NDArray[np.float64], dimension: int) -> None:
        bound = math.sqrt(dimension) * _MATRIX_SCALE + 1.0
        if (
            matrix.shape != (dimension, min(self.p, dimension))
            or not np.isfinite(matrix).all()
            or float(np.max(np.abs(matrix), initial=0.0)) > bound
        ):
            raise ValueError("projection matrix has the wrong shape or out-of-range values")

    def load(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        unit_vectors: npt.NDArray[np.float32],
        projection: npt.NDArray[np.float64] | None = None,
    ) -> None:
        """Replace the whole state by a fresh fit of these rows (one fit, no checks per row).

        Args:
            ids: Example ids (unique).
            texts: Canonical JSON texts, one per id.
            unit_vectors: float32 (n, D) unit rows, one per id.
            projection: The stored float64 (D, p) projection (else derived from the seed).

        Raises:
            ValueError: The rows are inconsistent (the index is then empty).
        """
        self.clear()
        try:
            self.add(ids, texts, unit_vectors, projection, batch=True)
        except BaseException:
            self.clear()
            raise

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        unit_vectors: npt.NDArray[np.float32],
        projection: npt.NDArray[np.float64] | None = None,
        *,
        batch: bool | None = None,
    ) -> list[ChangeOutcome]:
        """Add examples exactly: the result equals a fresh fit of the enlarged set.

        Args:
            ids: New ids (unique, absent).
            texts: Their canonical JSON texts.
            unit_vectors: float32 (len(ids), D) unit rows.
            projection: float64 (D, p) matrix to use if the index is empty (a stored one).
            batch: Fit the batch at once (True), insert one by one with the exact check
                (False), or choose by size (None: at once when the batch is at least an
                eighth of the result).

        Returns:
            One outcome per id; `BATCH_FIT` for examples of a batch fitted at once.

        Raises:
            ValueError: Before any change, if the rows are invalid (see `check_rows`).
        """
        unit_vectors = np.asarray(unit_vectors)
        self.check_rows(ids, texts, unit_vectors, projection)
        ids = list(ids)
        if not ids:
            return []
        try:  # every failure before the first change: an add is all-or-nothing
            tags = {
                i: self._member_tag(i, t, np.asarray(v, dtype=np.float32))
                for i, t, v in zip(ids, texts, unit_vectors, strict=True)
            }
        except UnicodeEncodeError as err:
            raise ValueError(f"ids and texts must be valid Unicode: {err.reason}") from None
        self.revision += 1
        if self._projection is None:
            dimension = unit_vectors.shape[1]
            self._projection = FixedPointProjection(
                self.params.seed, dimension, self.p, matrix=projection
            )
        coords = self._projection.project(unit_vectors)
        hashes = id_hash64(self.params.seed, ids)
        if self.selection in ("knn", "mmr") and self._neighbors is None:
            self._neighbors = NeighborIndex(unit_vectors.shape[1])
        for example_id, text, vector in zip(ids, texts, unit_vectors, strict=True):
            self._texts[example_id] = text
            self._vectors[example_id] = np.array(vector, dtype=np.float32)
            self._tags[example_id] = tags[example_id]
            if self._neighbors is not None:
                self._neighbors.add(example_id, self._vectors[example_id])
        if batch is None:
            batch = len(ids) * 8 >= len(self._texts)
        if batch:
            self._kmeans.insert_many(ids, coords, hashes)
            self._rebuild()
            return [BATCH_FIT] * len(ids)
        outcomes = []
        for example_id, xv, xh in zip(ids, coords, hashes.tolist(), strict=True):
            outcome = self._kmeans.insert(example_id, xv, xh)
            self._after_insert(example_id, outcome)
            outcomes.append(outcome)
        return outcomes

    # ------------------------------------------------------------ deletion
    def delete(self, example_id: str) -> ChangeOutcome:
        """Exactly unlearn one example and zero its stored vector bytes.

        Args:
            example_id: A present id.

        Returns:
            What the deletion did to the clustering (refit or constant-time path).

        Raises:
            KeyError: Before any change, if the id is not present.
        """
        if example_id not in self._texts:
            raise KeyError(example_id)
        self.revision += 1
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
        if self._neighbors is not None:
            self._neighbors.remove(example_id)  # zeroes the row it vacates
        del self._texts[example_id]
        del self._tags[example_id]
        if not self._texts:  # a fresh fit of no examples has no projection
            self._projection = None
            self._neighbors = None
        return outcome

    # ------------------------------------------------------------ selection
    def pick(
        self,
        query_hash: int,
        query_vector: npt.NDArray[np.float32] | None,
        limit: int | None = None,
    ) -> list[tuple[int | None, str]]:
        """The one selection dispatch; every answer is a function of the member set.

        Args:
            query_hash: Keyed 64-bit hash of the query text (random mode).
            query_vector: float32 (D,) unit query embedding; required when
                `needs_query_vector` and the index is not empty.
            limit: How many examples: knn and mmr select this many instead of k (mmr then
                takes at least `limit` candidates); the bucket modes return their first
                `limit` picks. None: the mode's own k.

        Returns:
            (cluster, example id) pairs: one per non-empty cluster in cluster (seeding)
            order in the bucket modes; for knn the k most similar members, most similar
            first, and for mmr the MMR picks in pick order, both with cluster None.
        """
        if self.selection not in ("knn", "mmr"):
            return [(b, i) for b, i in self._buckets.pick(query_hash, query_vector)[:limit]]
        if self._neighbors is None:
            return []
        if query_vector is None:
            raise ValueError(f"{self.selection} selection needs a query vector")
        k = self.params.k if limit is None else limit
        if self.selection == "knn":
            chosen = self._neighbors.knn(query_vector, k)
        else:
            chosen = self._neighbors.mmr(query_vector, k, max(k, self.fetch_k), self.lambda_mult)
        return [(None, example_id) for example_id, _ in chosen]

    # --------------------------------------------------------- verification
    def refitted(self) -> ERASEIndex:
        """Returns:
        A new index fitted from scratch on this index's rows and projection."""
        fresh = ERASEIndex(
            self.params,
            self.p,
            self.selection,
            self._context,
            fetch_k=self.fetch_k,
            lambda_mult=self.lambda_mult,
        )
        ids, texts, vectors = self.rows()
        if ids:
            fresh.load(ids, texts, vectors, self.projection_matrix)
        return fresh

    def verify(self) -> bool:
        """Refit from this index's own rows and compare state digests.

        Returns:
            True if the incrementally maintained state equals a fresh fit, bit for bit.
        """
        return self.refitted().state_digest() == self.state_digest()

    # ----------------------------------------------------------- internals
    def _member_tag(
        self, example_id: str, text: str, vector: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.uint64]:
        """256-bit hash of (id, content, stored vector): what the membership digest sums."""
        parts = (example_id.encode(), text.encode(), vector.tobytes())
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
            self._bucket_mode,
            self.dimension or 0,
            ids,
            labels,
            distances,
            [self._vectors[i] for i in ids],
            seed=self.params.seed,
        )

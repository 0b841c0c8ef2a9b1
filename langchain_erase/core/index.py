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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from langchain_erase.core.buckets import BucketIndex
from langchain_erase.core.buckets import SelectionMode as BucketMode
from langchain_erase.core.cells import VectorBlock
from langchain_erase.core.hashing import id_hash64, mix64
from langchain_erase.core.neighbors import CellNeighbors, CellSearch, NeighborIndex
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

#: `add` refits a batch at once when it is at least 1/_BATCH_SHARE of the result. A checked
#: insertion costs ~100-250 µs (a replay of T iterations in Python), a refit ~2-4 µs per
#: member at 1M: refitting wins from about one new member in 50-100 on. Both are exact.
_BATCH_SHARE = 64

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
        similar_screen: bool = True,
        search: CellSearch | None = None,
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
            similar_screen: "similar": scan large buckets' cells through the float16 FAISS
                screen (`core/screen.py`; 776 more bytes per example at D = 384, about half
                the query time). It never changes an answer, so it is no part of the state.
            search: "knn" and "mmr": search through keyed-sample cells from
                `search.exact_below` members on (None: always an exact scan). The cells
                hold the only copy of the vectors; their settings are part of the state.
        """
        self.params = params
        self.p = p
        self.selection: SelectionMode = selection
        self.fetch_k = fetch_k
        self.lambda_mult = lambda_mult
        self.similar_screen = similar_screen
        self.search = search if selection in ("knn", "mmr") else None
        self._context = dict(context or {})
        if self.search is not None:
            self._context.update(search=self.search.identity())
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
        #: (revision, state digest) of the last digest computed: selections read it often.
        self._digest: tuple[int, str] | None = None
        self._store: VectorBlock | CellNeighbors | None = None
        self._buckets = BucketIndex(0, self._bucket_mode, 0)
        self.clear()

    # ---------------------------------------------------------------- state
    def clear(self) -> None:
        """Empty every structure that holds examples (the state of a fresh index), zeroing
        the vectors it held."""
        self.revision += 1
        if isinstance(self._store, CellNeighbors):
            self._store.wipe()
        for block in self._vector_blocks():
            block.matrix[:] = 0.0
        self._projection: FixedPointProjection | None = None
        self._static: tuple[bool, bytes] | None = None
        self._kmeans = QuantizedKMeans(self.params, self.p)
        self._texts: dict[str, str] = {}
        #: 256-bit member tag of each id (see `_member_tags`), what the membership digest sums.
        self._tags: dict[str, bytes] = {}
        self._members_acc = np.zeros(4, dtype=np.uint64)
        self._buckets = BucketIndex(
            0, self._bucket_mode, 0, seed=self.params.seed, screen=self.similar_screen
        )
        # The one copy of each vector: the `similar` buckets' blocks in that mode, else
        # this block (which `knn` and `mmr` search in place).
        self._store = None
        self._neighbors: NeighborIndex | CellNeighbors | None = None

    def __len__(self) -> int:
        return len(self._texts)

    def __contains__(self, example_id: object) -> bool:
        return example_id in self._texts

    def none_present(self, ids: Iterable[str]) -> bool:
        """Args:
            ids: Example ids.

        Returns:
            True if none of them is present (one set operation, not a lookup per id)."""
        return self._texts.keys().isdisjoint(ids)

    @property
    def dimension(self) -> int | None:
        """Embedding dimension D, fixed by the first example; None while empty."""
        return None if self._projection is None else self._projection.dimension

    @property
    def projection_matrix(self) -> npt.NDArray[np.float64] | None:
        """The float64 (D, p) projection matrix, or None while empty."""
        return None if self._projection is None else self._projection.matrix

    @property
    def neighbors(self) -> NeighborIndex | CellNeighbors | None:
        """knn and mmr: the similarity index over every member (None while empty, and in
        the bucket modes), for searches with per-query k, fetch_k and lambda_mult."""
        return self._neighbors

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
        if example_id not in self._texts:
            raise KeyError(example_id)
        if self._store is not None:
            return self._store.vector(example_id).copy()
        return self._buckets.vector(example_id, self._kmeans.label(example_id)).copy()

    def rows(self) -> IndexRows:
        """Rows out.

        Returns:
            (ids sorted, canonical texts, float32 (n, D) vectors); (0, 0) vectors if empty.
        """
        ids = self.ids()
        if not ids:
            return [], [], np.zeros((0, 0), dtype=np.float32)
        if self._store is not None:
            stored_ids, matrix = self._store.ids, self._store.rows
        else:
            stored_ids, matrix = self._buckets.stored()
        return ids, [self._texts[i] for i in ids], matrix[_positions(stored_ids, ids)]

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
        if self._digest is not None and self._digest[0] == self.revision:
            return self._digest[1]  # every change bumps `revision` first
        h = hashlib.sha256(self._static_digest())
        h.update(self._kmeans.record_digest())
        h.update(self._members_acc.astype("<u8").tobytes())
        self._digest = (self.revision, h.hexdigest())
        return self._digest[1]

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
        # A float64 sum of float32 values cannot overflow (n * D * 2**128 < 2**1024), so it is
        # finite exactly when every entry is: one pass, no n x D boolean temporary.
        if unit_vectors.dtype != np.float32 or not np.isfinite(unit_vectors.sum(dtype=np.float64)):
            raise ValueError("vectors must be finite float32 rows")
        if len(set(ids)) != n or not self.none_present(ids):
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
                (False), or choose by size (None: at once when the batch is at least
                1/`_BATCH_SHARE` of the result).

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
            tags = _member_tags(ids, texts, unit_vectors)
        except UnicodeEncodeError as err:
            raise ValueError(f"ids and texts must be valid Unicode: {err.reason}") from None
        self.revision += 1
        if self._projection is None:
            dimension = unit_vectors.shape[1]
            self._projection = FixedPointProjection(
                self.params.seed, dimension, self.p, matrix=projection
            )
            if self._kmeans.p != self._projection.p:  # p > D clusters in D dimensions
                self._kmeans = QuantizedKMeans(self.params, self._projection.p)
        coords = self._projection.project(unit_vectors)
        hashes = id_hash64(self.params.seed, ids)
        self._texts.update(zip(ids, texts, strict=True))
        self._tags.update(zip(ids, tags, strict=True))
        if self._bucket_mode != "similar":
            store = self._store or self._new_store(unit_vectors.shape[1])
            store.extend(ids, unit_vectors)
        if batch is None:
            batch = len(ids) * _BATCH_SHARE >= len(self._texts)
        if batch:
            self._kmeans.insert_many(ids, coords, hashes)
            self._rebuild(ids, unit_vectors)
            return [BATCH_FIT] * len(ids)
        outcomes = []
        for row, (example_id, xv, xh) in enumerate(zip(ids, coords, hashes.tolist(), strict=True)):
            outcome = self._kmeans.insert(example_id, xv, xh)
            self._after_insert(example_id, outcome, unit_vectors[row : row + 1])
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
            self._buckets.remove(example_id, label, distance)  # zeroes a `similar` row
        if self._store is not None:
            self._store.remove(example_id)  # zeroes the row it vacates
        del self._texts[example_id]
        del self._tags[example_id]
        if not self._texts:  # a fresh fit of no examples has no projection
            self._projection = None
            self._store = None
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
            similar_screen=self.similar_screen,
            search=self.search,
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

    # ------------------------------------------------------------ inspection
    def screen_nbytes(self) -> int:
        """Returns:
        Bytes of the "similar" mode's float16 FAISS screens (C++ memory; 0 without)."""
        return self._buckets.screen_nbytes()

    def vector_memory(self) -> bytes:
        """Returns:
        A copy of every in-memory block that holds vectors (to check that a deleted
        vector's bytes were zeroed)."""
        return b"".join(block.matrix.tobytes() for block in self._vector_blocks())

    def remembers(self, example_id: str) -> bool:
        """Args:
            example_id: An id.

        Returns:
            True if any per-example structure (texts, member tags) still holds it."""
        return example_id in self._texts or example_id in self._tags

    # ----------------------------------------------------------- internals
    def _new_store(self, dimension: int) -> VectorBlock | CellNeighbors:
        """The one holder of the vectors outside `similar` mode (the search index in
        knn and mmr)."""
        if self.search is not None:
            cells = CellNeighbors(dimension, self.search, self.params.seed)
            self._store = self._neighbors = cells
            return cells
        block = self._store = VectorBlock(dimension)
        if self.selection in ("knn", "mmr"):
            self._neighbors = NeighborIndex.over(block)
        return block

    def _vector_blocks(self) -> list[VectorBlock]:
        """Every block holding vectors: one row per member, plus the cell centers of the
        `similar` buckets or of the cell search (a bounded sample)."""
        if isinstance(self._store, VectorBlock):
            return [self._store]
        if isinstance(self._store, CellNeighbors):
            return self._store.blocks()
        return self._buckets.vector_blocks()

    def _labelled_tag(self, example_id: str, label: int) -> npt.NDArray[np.uint64]:
        """The member's contribution to the membership digest (a sum mod 2**64 per lane)."""
        tag = np.frombuffer(self._tags[example_id], dtype=np.uint64)
        return mix64(tag, (label * _LABEL_SALT) & _MASK64)

    def _center_distance(self, example_id: str, label: int) -> int:
        center = self._kmeans.final_centers()[label]
        return int(squared_distances(self._kmeans.coords(example_id)[None, :], center)[0])

    def _after_insert(
        self, example_id: str, outcome: ChangeOutcome, vector: npt.NDArray[np.float32]
    ) -> None:
        """Bring buckets and the membership digest in line with the clustering.

        `vector` is the new member's (1, D) row (the buckets store it in `similar` mode).
        """
        if outcome.refit:
            self._rebuild([example_id], vector)
            return
        label = self._kmeans.label(example_id)
        self._members_acc += self._labelled_tag(example_id, label)
        self._buckets.add(example_id, label, self._center_distance(example_id, label), vector[0])

    def _rebuild(
        self, new_ids: list[str] | None = None, new_rows: npt.NDArray[np.float32] | None = None
    ) -> None:
        """Rebuild buckets and the membership digest after a (re)fit: O(n), vectorized.

        Args:
            new_ids: Members the clustering has and the buckets do not hold yet.
            new_rows: Their float32 (len(new_ids), D) vectors.
        """
        ids, labels, coords = self._kmeans.alive()
        centers = self._kmeans.final_centers()
        if ids:
            tags = np.frombuffer(b"".join([self._tags[i] for i in ids]), dtype=np.uint64)
            tags = tags.reshape(len(ids), 4)
            salts = (labels.astype(np.uint64) * np.uint64(_LABEL_SALT))[:, None]
            self._members_acc = mix64(tags, salts).sum(axis=0, dtype=np.uint64)
            diff = coords - centers[labels]
            distances = np.einsum("ij,ij->i", diff, diff)
        else:
            self._members_acc = np.zeros(4, dtype=np.uint64)
            distances = np.zeros(0, dtype=np.int64)
        vectors: npt.NDArray[np.float32] | list[npt.NDArray[np.float32]] = []
        if self._bucket_mode == "similar":  # the buckets hold the only copy: gather it
            stored_ids, matrix = self._buckets.stored()
            if new_ids and new_rows is not None:
                stored_ids = stored_ids + new_ids
                width = new_rows.shape[1]  # an empty index's buckets have no dimension yet
                matrix = np.concatenate([matrix.reshape(-1, width), new_rows])
            vectors = matrix
            if stored_ids != ids:  # a fresh fit keeps the insertion order: no reordering
                vectors = matrix[_positions(stored_ids, ids)]
                matrix[:] = 0.0
        old = self._buckets
        self._buckets = BucketIndex.build(
            self._kmeans.n_clusters,
            self._bucket_mode,
            self.dimension or 0,
            ids,
            labels,
            distances,
            vectors,
            seed=self.params.seed,
            screen=self.similar_screen,
        )
        old.wipe()  # members deleted by this change leave no bytes behind
        if isinstance(vectors, np.ndarray):
            vectors[:] = 0.0


def _positions(stored_ids: list[str], wanted: list[str]) -> npt.NDArray[np.intp]:
    """Row of each wanted id in `stored_ids` (every wanted id is stored)."""
    row = dict(zip(stored_ids, range(len(stored_ids)), strict=True))
    return np.fromiter((row[i] for i in wanted), dtype=np.intp, count=len(wanted))


def _member_tags(
    ids: list[str], texts: Sequence[str], vectors: npt.NDArray[np.float32]
) -> list[bytes]:
    """256-bit hash of each (id, content, stored vector): what the membership digest sums.

    One blake2b per member over the length-prefixed id, text and float32 vector bytes,
    hashing the vector straight from the matrix (no per-row array).

    Raises:
        UnicodeEncodeError: An id or text is not encodable (nothing was changed).
    """
    rows = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1).data.cast("B")
    width = vectors.shape[1] * 4
    width_prefix = width.to_bytes(8, "little")
    blake2b = hashlib.blake2b
    out = []
    for r, (example_id, text) in enumerate(zip(ids, texts, strict=True)):
        id_bytes, text_bytes = example_id.encode(), text.encode()
        parts = (
            len(id_bytes).to_bytes(8, "little"),
            id_bytes,
            len(text_bytes).to_bytes(8, "little"),
            text_bytes,
            width_prefix,
            rows[r * width : (r + 1) * width],
        )
        out.append(blake2b(b"".join(parts), digest_size=32).digest())
    return out

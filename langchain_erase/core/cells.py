"""Sublinear `similar` search whose answer is a function of the member set and the query.

A bucket's members are grouped into cells around *keyed-sample centers*: the `cells` members
with the smallest keyed hash of (seed, "cells", id), a bottom-m sample of the set that
follows the data's density and does not depend on insertion order. Every member belongs to
the cell of its most similar center (exact cosine, ties to the smaller center id). A query
scores the centers, takes the `nprobe` most similar ones (exact order, ties by id) and
returns the most similar member of those cells (exact, ties by id). Each step is a function
of the set and the query, so a deletion or insertion applied in place gives the index a
fresh build of the new set would give, and every query the same answer.

Floats only screen: a float32 dot product of unit vectors is within `similarity_slack(D)`
of the exact one, so candidates within twice that of a threshold are rescored exactly
(`exact_dot`, a correctly rounded sum of exact products), and the decision is made on the
exact values.

Deleting a non-center member only removes it from its cell; deleting a center (probability
m / n) promotes the next member in hash order, which takes over the members now closest to it,
and the deleted center's members move to their nearest remaining center.

In cell mode a query reads the probed cells through a float16 FAISS screen by default
(`core/screen.py`): half the bytes of the float32 rows, and a proven bound that keeps the exact
answer among the screened candidates, so the answer is the one the float32 scan gives.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from sortedcontainers import SortedList

from langchain_erase.core.hashing import mix64
from langchain_erase.core.screen import Fp16Screen

__all__ = ["CellIndex", "VectorBlock", "exact_dot", "similarity_slack", "top_of"]

#: Unit-roundoff of float32. A float32 dot product of two unit vectors of dimension D is
#: within D * 2**-24 of the exact value in any summation order (Higham's bound, with
#: sum |a_i b_i| <= 1), so every candidate whose float32 score is within twice that of a
#: threshold is rescored exactly: the exact decision is always among them.
FLOAT32_UNIT_ROUNDOFF = 2.0**-24
_ASSIGN_CHUNK = 4096


def similarity_slack(dimension: int) -> float:
    """Twice the float32 error bound of a unit-vector dot product in `dimension` dims.

    Args:
        dimension: the vectors' dimension.

    Returns:
        The screening slack.
    """
    return 2.0 * (dimension + 1) * FLOAT32_UNIT_ROUNDOFF


def exact_dot(a: npt.NDArray[np.float32], b: npt.NDArray[np.float64]) -> float:
    """Correctly rounded dot product (math.fsum of exact float64 products of float32s).

    Args:
        a: a float32 vector.
        b: a float32 vector widened to float64.

    Returns:
        The dot product, correctly rounded (the same on every platform).
    """
    return math.fsum((a.astype(np.float64) * b).tolist())


class VectorBlock:
    """Contiguous float32 rows with their ids; O(D) swap-remove that zeroes the freed row."""

    def __init__(self, dimension: int) -> None:
        self.matrix = np.zeros((0, dimension), dtype=np.float32)
        self.ids: list[str] = []
        self.row: dict[str, int] = {}

    @classmethod
    def of(cls, ids: list[str], rows: npt.NDArray[np.float32]) -> VectorBlock:
        """A block holding `rows` (copied) under `ids`.

        Args:
            ids: one id per row.
            rows: float32 matrix (len(ids), D).

        Returns:
            The block.
        """
        block = cls(rows.shape[1])
        block.matrix = np.array(rows, dtype=np.float32)
        block.ids = list(ids)
        block.row = {example_id: i for i, example_id in enumerate(ids)}
        return block

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def rows(self) -> npt.NDArray[np.float32]:
        """The live rows (a view)."""
        return self.matrix[: len(self.ids)]

    def add(self, example_id: str, vector: npt.NDArray[np.float32]) -> None:
        """Append one row.

        Args:
            example_id: its id.
            vector: its float32 vector.
        """
        size = len(self.ids)
        self._reserve(size + 1)
        self.matrix[size] = vector
        self.ids.append(example_id)
        self.row[example_id] = size

    def extend(self, ids: list[str], rows: npt.NDArray[np.float32]) -> None:
        """Append rows in bulk (one copy; an empty block is sized exactly).

        Args:
            ids: their ids (absent from the block).
            rows: float32 matrix (len(ids), D).
        """
        size = len(self.ids)
        self._reserve(size + len(ids))
        self.matrix[size : size + len(ids)] = rows
        self.row.update(zip(ids, range(size, size + len(ids)), strict=True))
        self.ids.extend(ids)

    def _reserve(self, needed: int) -> None:
        """Grow the matrix to hold `needed` rows (by at least a quarter: amortized O(D))."""
        size = len(self.ids)
        if needed <= self.matrix.shape[0]:
            return
        capacity = needed if size == 0 else max(needed, size + size // 4, 8)
        grown = np.zeros((capacity, self.matrix.shape[1]), dtype=np.float32)
        grown[:size] = self.matrix[:size]
        self.matrix[:size] = 0.0  # no stale copy of any vector stays behind
        self.matrix = grown

    def remove(self, example_id: str) -> None:
        """Remove one row (the last row moves into its place; the freed row is zeroed).

        Args:
            example_id: its id.
        """
        row = self.row.pop(example_id)
        last = len(self.ids) - 1
        if row != last:
            moved = self.ids[last]
            self.matrix[row] = self.matrix[last]
            self.ids[row] = moved
            self.row[moved] = row
        self.matrix[last] = 0.0  # the deleted vector's bytes do not linger here
        self.ids.pop()

    def vector(self, example_id: str) -> npt.NDArray[np.float32]:
        """The stored row of `example_id` (a view).

        Args:
            example_id: its id.

        Returns:
            The float32 vector.
        """
        out: npt.NDArray[np.float32] = self.matrix[self.row[example_id]]
        return out

    def best(self, query32: npt.NDArray[np.float32], query64: npt.NDArray[np.float64]) -> str:
        """Member with the highest exact cosine to the query; ties by smallest id.

        Args:
            query32: the query (float32).
            query64: the same query widened to float64.

        Returns:
            The id of the best member.
        """
        return best_of([self], query32, query64)


def best_of(
    blocks: list[VectorBlock], query32: npt.NDArray[np.float32], query64: npt.NDArray[np.float64]
) -> str:
    """The most similar member of several non-empty blocks (exact, ties by smallest id)."""
    return top_of(blocks, query32, query64, 1)[0][0]


def top_of(
    blocks: list[VectorBlock],
    query32: npt.NDArray[np.float32],
    query64: npt.NDArray[np.float64],
    k: int,
) -> list[tuple[str, float]]:
    """The `k` members of several blocks most similar to the query, best first.

    Float32 scores only screen: every member within the slack of the k-th float32 score is
    rescored with `exact_dot`, and the exact scores decide (ties by smallest id).

    Args:
        blocks: Blocks to search (empty ones are allowed).
        query32: The query (float32 unit vector).
        query64: The same query widened to float64.
        k: How many members (fewer when the blocks hold fewer).

    Returns:
        (id, exact similarity) pairs in decreasing similarity, then increasing id.
    """
    blocks = [block for block in blocks if len(block)]
    if k <= 0 or not blocks:
        return []
    scores = [block.rows @ query32 for block in blocks]
    every = np.concatenate(scores) if len(scores) > 1 else scores[0]
    if k >= len(every):
        threshold = -math.inf
    else:
        kth = float(np.partition(every, len(every) - k)[len(every) - k])
        threshold = kth - similarity_slack(query32.shape[0])
    exact = []
    for block, block_scores in zip(blocks, scores, strict=True):
        for r in np.flatnonzero(block_scores >= threshold).tolist():
            exact.append((-exact_dot(block.matrix[r], query64), block.ids[r]))
    exact.sort()
    return [(example_id, -negated) for negated, example_id in exact[:k]]


def _top_exact(
    scores: npt.NDArray[np.float32],
    count: int,
    block: VectorBlock,
    query64: npt.NDArray[np.float64],
) -> list[int]:
    """Rows of the `count` highest exact scores (ties by smaller id), screened by floats."""
    if count >= len(scores):
        return list(range(len(scores)))
    slack = similarity_slack(query64.shape[0])
    kth = float(np.partition(scores, len(scores) - count)[len(scores) - count])
    sure = np.flatnonzero(scores > kth + slack).tolist()
    near = np.flatnonzero(np.abs(scores - kth) <= slack).tolist()
    ranked = sorted((-exact_dot(block.matrix[r], query64), block.ids[r], r) for r in near)
    return sure + [r for _, _, r in ranked[: count - len(sure)]]


class CellIndex:
    """Most-similar-member search over one bucket: an exact scan below `exact_below`
    members, keyed-sample cells at and above it (see the module docstring).

    In cell mode there are always exactly `cells` centers (exact_below > cells). With
    `screen` (the default) each cell also has a slot in a float16 FAISS screen that queries
    scan; without it the float32 cell blocks are scanned with numpy. Both give the same answer.
    """

    def __init__(
        self,
        dimension: int,
        *,
        cells: int,
        nprobe: int,
        exact_below: int,
        salt: int,
        screen: bool = True,
    ) -> None:
        if not 1 <= nprobe <= cells < exact_below:
            raise ValueError("need 1 <= nprobe <= cells < exact_below")
        self.dimension = dimension
        self.n_cells = cells
        self.nprobe = nprobe
        self.exact_below = exact_below
        self._salt = salt
        self._use_screen = screen
        self._screen: Fp16Screen | None = None  # cell mode with `screen` only
        self._slot: dict[str, int] = {}  # center id -> its cell's screen list
        # one list per cell, plus a spare: an insert adds a center before it demotes one
        self._slot_center: list[str] = [""] * (cells + 1)  # screen list -> center id
        self._free_slots: list[int] = []
        self._order: SortedList = SortedList()  # (cell hash, id) of every member
        self._flat: VectorBlock | None = VectorBlock(dimension)  # below exact_below
        self._centers = VectorBlock(dimension)
        self._cells: dict[str, VectorBlock] = {}  # center id -> members of its cell
        self._cell_of: dict[str, str] = {}  # member id -> center id

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, example_id: object) -> bool:
        if self._flat is not None:
            return example_id in self._flat.row
        return example_id in self._cell_of

    def _key(self, example_id: str, id_hash: int) -> tuple[int, str]:
        return (int(mix64(np.array([id_hash], dtype=np.uint64), self._salt)[0]), example_id)

    # ----------------------------------------------------------------- build
    def build(
        self, ids: list[str], hashes: npt.NDArray[np.uint64], rows: npt.NDArray[np.float32]
    ) -> None:
        """Fill an empty index with members (bulk: one assignment pass).

        Args:
            ids: member ids.
            hashes: their 64-bit id hashes.
            rows: their float32 unit vectors, one row each.
        """
        keys = mix64(np.asarray(hashes, dtype=np.uint64), self._salt).tolist()
        self._order = SortedList(zip(keys, ids, strict=True))
        if len(ids) < self.exact_below:
            self._flat = VectorBlock.of(ids, rows)
            return
        self._build_cells(ids, rows)

    def _build_cells(self, ids: list[str], rows: npt.NDArray[np.float32]) -> None:
        self._flat = None
        position = {example_id: i for i, example_id in enumerate(ids)}
        center_ids = [example_id for _, example_id in self._order[: self.n_cells]]
        self._centers = VectorBlock.of(center_ids, rows[[position[c] for c in center_ids]])
        nearest = self._nearest_centers(rows)
        order = np.argsort(nearest, kind="stable")
        bounds = np.searchsorted(nearest[order], np.arange(len(center_ids) + 1))
        self._cells = {}
        self._cell_of = {}
        lists = self.n_cells + 1
        self._screen = Fp16Screen(self.dimension, lists) if self._use_screen else None
        self._slot, self._free_slots = {}, list(range(lists - 1, -1, -1))
        for c, center in enumerate(center_ids):
            members = order[bounds[c] : bounds[c + 1]]
            self._new_cell(center)
            self._cell_extend(center, [ids[r] for r in members.tolist()], rows[members])

    def _nearest_centers(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.intp]:
        """Row of the most similar center for each row (exact, ties by smaller center id)."""
        centers = self._centers
        slack = similarity_slack(self.dimension)
        out = np.empty(rows.shape[0], dtype=np.intp)
        for start in range(0, rows.shape[0], _ASSIGN_CHUNK):
            scores = rows[start : start + _ASSIGN_CHUNK] @ centers.rows.T
            best = scores.argmax(axis=1)
            top = scores[np.arange(len(best)), best] - slack
            ambiguous = np.flatnonzero((scores >= top[:, None]).sum(axis=1) > 1)
            for i in ambiguous.tolist():
                out_row = rows[start + i]
                out[start + i] = self._exact_nearest(out_row, scores[i] >= top[i])
            best[ambiguous] = out[start + ambiguous]
            out[start : start + _ASSIGN_CHUNK] = best
        return out

    def _exact_nearest(self, vector: npt.NDArray[np.float32], near: npt.NDArray[np.bool_]) -> int:
        candidates = np.flatnonzero(near).tolist()
        if len(candidates) == 1:
            return int(candidates[0])
        v64 = vector.astype(np.float64)
        ranked = min(
            (-exact_dot(self._centers.matrix[c], v64), self._centers.ids[c], c) for c in candidates
        )
        return ranked[2]

    # ------------------------------------------------------------ membership
    def add(self, example_id: str, id_hash: int, vector: npt.NDArray[np.float32]) -> None:
        """Insert a member; the result equals a fresh build of the new set.

        Args:
            example_id: its id.
            id_hash: its 64-bit id hash.
            vector: its float32 unit vector.
        """
        key = self._key(example_id, id_hash)
        self._order.add(key)
        if self._flat is not None:
            self._flat.add(example_id, vector)
            if len(self._order) >= self.exact_below:
                flat = self._flat
                self._build_cells(list(flat.ids), flat.rows.copy())
                flat.matrix[:] = 0.0
            return
        self._place(example_id, vector)
        if self._order.index(key) < self.n_cells:  # a new center takes over; one is demoted
            self._add_center(example_id, vector)
            self._remove_center(self._order[self.n_cells][1])

    def remove(self, example_id: str, id_hash: int) -> None:
        """Delete a member; the result equals a fresh build of the remaining set.

        Args:
            example_id: its id.
            id_hash: its 64-bit id hash (as given to `add`).
        """
        key = self._key(example_id, id_hash)
        position = self._order.index(key)
        self._order.remove(key)
        if self._flat is not None:
            self._flat.remove(example_id)
            return
        self._cell_remove(self._cell_of.pop(example_id), example_id)
        if len(self._order) < self.exact_below:
            self._to_flat()
            return
        if position < self.n_cells:  # a center left: the next member in hash order is one
            self._remove_center(example_id)
            promoted = self._order[self.n_cells - 1][1]
            self._add_center(promoted, self.vector(promoted).copy())

    def _to_flat(self) -> None:
        flat = VectorBlock(self.dimension)
        for cell in self._cells.values():
            for example_id, row in zip(cell.ids, cell.rows, strict=True):
                flat.add(example_id, row)
            cell.matrix[:] = 0.0
        if self._screen is not None:
            self._screen.wipe()
        self._screen, self._slot, self._free_slots = None, {}, []
        self._flat, self._cells, self._cell_of = flat, {}, {}
        self._centers.matrix[:] = 0.0
        self._centers = VectorBlock(self.dimension)

    def _place(self, example_id: str, vector: npt.NDArray[np.float32]) -> None:
        """Put a member into the cell of its nearest center."""
        scores = self._centers.rows @ vector
        top = float(scores.max()) - similarity_slack(self.dimension)
        center = self._centers.ids[self._exact_nearest(vector, scores >= top)]
        self._cell_extend(center, [example_id], vector[None, :])

    def _add_center(self, center: str, vector: npt.NDArray[np.float32]) -> None:
        """Make `center` a center: it takes every member now more similar to it."""
        self._centers.add(center, vector)
        self._new_cell(center)
        v64 = vector.astype(np.float64)
        slack = similarity_slack(self.dimension)
        for old, cell in list(self._cells.items()):
            if old == center or not len(cell):
                continue
            new_scores = cell.rows @ vector
            old_scores = cell.rows @ self._centers.vector(old)
            maybe = np.flatnonzero(new_scores >= old_scores - 2 * slack).tolist()
            old64 = self._centers.vector(old).astype(np.float64)
            moving = []
            for r in maybe:
                row = cell.matrix[r]
                new_key = (-exact_dot(row, v64), center)
                if new_key < (-exact_dot(row, old64), old):
                    moving.append(cell.ids[r])
            for member in moving:
                row_vector = cell.vector(member).copy()
                self._cell_remove(old, member)
                self._cell_extend(center, [member], row_vector[None, :])

    def _remove_center(self, center: str) -> None:
        """Stop `center` being a center: its cell's members move to their nearest center."""
        self._centers.remove(center)
        cell = self._cells.pop(center)
        members = list(cell.ids)
        rows = cell.rows.copy()
        cell.matrix[:] = 0.0
        slot = self._slot.pop(center, None)
        if self._screen is not None and slot is not None:
            self._screen.clear(slot)
            self._free_slots.append(slot)
        if not members:
            return
        nearest = self._nearest_centers(rows)
        for member, c, row in zip(members, nearest.tolist(), rows, strict=True):
            self._cell_extend(self._centers.ids[c], [member], row[None, :])

    def _new_cell(self, center: str) -> None:
        """An empty cell for a new center (and a free screen list for it)."""
        self._cells[center] = VectorBlock(self.dimension)
        if self._screen is not None:
            slot = self._free_slots.pop()
            self._slot[center] = slot
            self._slot_center[slot] = center

    def _cell_extend(self, center: str, ids: list[str], rows: npt.NDArray[np.float32]) -> None:
        """Append members to a cell's block and, row for row, to its screen list."""
        self._cells[center].extend(ids, rows)
        self._cell_of.update(dict.fromkeys(ids, center))
        if self._screen is not None:
            self._screen.extend(self._slot[center], rows)

    def _cell_remove(self, center: str, example_id: str) -> None:
        """Swap-remove a member from a cell's block and the same row from its screen list
        (the caller updates `_cell_of`)."""
        cell = self._cells[center]
        row = cell.row[example_id]
        cell.remove(example_id)
        if self._screen is not None:
            self._screen.swap_remove(self._slot[center], row)

    # ----------------------------------------------------------------- query
    def vector(self, example_id: str) -> npt.NDArray[np.float32]:
        """The stored vector of a member (the index holds the only copy).

        Args:
            example_id: a member id.

        Returns:
            Its float32 row (a view: copy it before the member is removed).
        """
        if self._flat is not None:
            return self._flat.vector(example_id)
        return self._cells[self._cell_of[example_id]].vector(example_id)

    def member_blocks(self) -> list[VectorBlock]:
        """The blocks that hold each member's vector once (the centers' block excluded).

        Returns:
            The blocks.
        """
        if self._flat is not None:
            return [self._flat]
        return list(self._cells.values())

    def blocks(self) -> list[VectorBlock]:
        """Every block that holds member vectors (for erasure checks).

        Returns:
            The blocks.
        """
        if self._flat is not None:
            return [self._flat]
        return [self._centers, *self._cells.values()]

    def best(self, query32: npt.NDArray[np.float32], query64: npt.NDArray[np.float64]) -> str:
        """The most similar member among the probed cells (exact, ties by smallest id).

        Args:
            query32: the query (float32 unit vector).
            query64: the same query widened to float64.

        Returns:
            The id of the best member.
        """
        return self.top(query32, query64, 1)[0][0]

    def top(
        self, query32: npt.NDArray[np.float32], query64: npt.NDArray[np.float64], k: int
    ) -> list[tuple[str, float]]:
        """The `k` most similar members among the probed cells (all members below
        `exact_below`): exact scores, best first, ties by smallest id.

        Args:
            query32: the query (float32 unit vector).
            query64: the same query widened to float64.
            k: how many members.

        Returns:
            (id, exact similarity) pairs, best first.
        """
        if self._flat is not None:
            return top_of([self._flat], query32, query64, k)
        scores = self._centers.rows @ query32
        probed = _top_exact(scores, self.nprobe, self._centers, query64)
        centers = [self._centers.ids[c] for c in probed]
        if self._screen is None:
            return top_of([self._cells[center] for center in centers], query32, query64, k)
        lists, total = [], 0
        for center in centers:
            size = len(self._cells[center].ids)
            if size:
                lists.append(self._slot[center])
                total += size
        if not total:
            return []
        pairs = self._screen.candidates(query32, lists, total, k)
        return top_of(
            [VectorBlock.of(*self._screened(slot, rows)) for slot, rows in _by_slot(pairs)],
            query32,
            query64,
            k,
        )

    def _screened(self, slot: int, rows: list[int]) -> tuple[list[str], npt.NDArray[np.float32]]:
        """Ids and float32 rows of screened candidates of one cell."""
        cell = self._cells[self._slot_center[slot]]
        return [cell.ids[r] for r in rows], cell.matrix[rows]

    def screen_codes(self) -> list[bytes]:
        """The float16 screen's live codes (empty without a screen), to check erasure.

        Returns:
            One bytes object per screen list.
        """
        return [] if self._screen is None else self._screen.code_bytes()

    def screen_nbytes(self) -> int:
        """Bytes of the float16 screen (C++ memory, invisible to tracemalloc).

        Returns:
            The byte count (0 without a screen).
        """
        return 0 if self._screen is None else self._screen.nbytes()

    def wipe(self) -> None:
        """Zero every vector and code this index holds (before it is dropped)."""
        for block in self.blocks():
            block.matrix[:] = 0.0
        if self._screen is not None:
            self._screen.wipe()


def _by_slot(pairs: list[tuple[int, int]]) -> list[tuple[int, list[int]]]:
    """(slot, rows) groups of (slot, row) pairs."""
    groups: dict[int, list[int]] = {}
    for slot, row in pairs:
        groups.setdefault(slot, []).append(row)
    return list(groups.items())

"""A float16 screen of a bucket's cells, scanned by FAISS, that never decides an answer.

`CellIndex` keeps each member's float32 unit vector once, in the block of its cell. Reading
those rows is what a `similar` query costs at scale (memory bandwidth: docs/benchmarks.md),
so cell mode also keeps a float16 code of every member in a FAISS IVF list per cell
(`IndexIVFScalarQuantizer`, `QT_fp16`; the coarse quantizer is never used: the probed lists
are chosen exactly by `CellIndex` and passed to `search_preassigned`). A query scans half the
bytes with FAISS's SIMD kernels and returns every member whose screened score is within
`2 * screen_slack(D)` of the best screened score; the caller rescores those exactly.

Why the true best is always among them. Codes are `numpy`'s round-to-nearest float16 of the
float32 row, so each coordinate moves by at most 2**-11 of its size (or 2**-25 absolute in
float16's subnormal range); FAISS then sums in float32. For unit vectors q and x the screened
score therefore differs from the exact one by at most
    2**-11 * sum|q_i x_i| + 2**-25 * sum|q_i| + (D + 1) * 2**-24 * sum|q_i x'_i|
  <= 2**-11 + 2**-25 * sqrt(D) + (D + 1) * 2**-24 * (1 + 2**-11)   =: e,
and `screen_slack` rounds e up. If s* is the best exact score, every screened score is at
most s* + e and the best member's is at least s* - e: it is within 2e of the top.

The lists mirror the cells' float32 blocks row for row (append, swap-remove), so a member's
row in its cell block is its offset in its list, and a code's FAISS label is just its
position, (list << 32) | row: no per-member map is kept. Freed code bytes are zeroed before a list
shrinks or moves to a larger buffer, as `VectorBlock` does for float32 rows.
"""

from __future__ import annotations

import math
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

__all__ = ["Fp16Screen", "screen_slack"]

_FIRST_K = 16


def screen_slack(dimension: int) -> float:
    """An upper bound on |screened score - exact score| for unit vectors (module docstring).

    Args:
        dimension: the vectors' dimension.

    Returns:
        The bound e, rounded up.
    """
    return 2.0**-11 + 2.0**-25 * math.sqrt(dimension) + (dimension + 1) * 2.0**-23


def fp16_codes(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Little-endian float16 codes of float32 rows (round to nearest), FAISS's `QT_fp16` layout.

    Args:
        rows: float32 matrix (n, D).

    Returns:
        uint8 matrix (n, 2 D).
    """
    half = np.ascontiguousarray(rows, dtype=np.float32).astype("<f2")
    return half.view(np.uint8).reshape(rows.shape[0], 2 * rows.shape[1])


class Fp16Screen:
    """FAISS float16 lists, one per cell slot, mirroring the cells' float32 blocks."""

    def __init__(self, dimension: int, lists: int) -> None:
        """Empty lists.

        Args:
            dimension: the vectors' dimension.
            lists: number of list slots (one per cell).
        """
        self.dimension = dimension
        self._coarse = faiss.IndexFlatIP(dimension)  # required by IndexIVF; never searched
        # typed Any: faiss's stubs describe the C++ signatures, not its Python wrappers
        self._index: Any = faiss.IndexIVFScalarQuantizer(
            self._coarse,
            dimension,
            lists,
            faiss.ScalarQuantizer.QT_fp16,
            faiss.METRIC_INNER_PRODUCT,
        )
        self._index.is_trained = True  # float16 codes need no training
        self._index.by_residual = False  # codes are the vectors themselves
        self._lists: Any = self._index.invlists
        self._code_size = 2 * dimension
        self._capacity = [0] * lists
        self._slack = screen_slack(dimension)

    def _codes(self, list_no: int, rows: int) -> npt.NDArray[np.uint8]:
        """A writable view of the first `rows` codes of a list (C++ memory)."""
        if rows == 0:
            return np.zeros((0, self._code_size), dtype=np.uint8)
        view = faiss.rev_swig_ptr(self._lists.get_codes(list_no), rows * self._code_size)
        return np.asarray(view).reshape(rows, self._code_size)

    def _ids(self, list_no: int, rows: int) -> npt.NDArray[np.int64]:
        """A writable view of the first `rows` labels of a list."""
        if rows == 0:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(faiss.rev_swig_ptr(self._lists.get_ids(list_no), rows))

    def _resize(self, list_no: int, size: int) -> None:
        """Set a list's length, growing its buffer by at least a quarter when full; the old
        buffer is zeroed before C++ frees it, so no stale code is left in freed memory."""
        old = self._lists.list_size(list_no)
        if size > self._capacity[list_no]:
            capacity = max(size, old + old // 4, 8)
            codes = self._codes(list_no, old).copy()
            ids = self._ids(list_no, old).copy()
            self._codes(list_no, old)[:] = 0
            self._lists.resize(list_no, capacity)  # a new buffer; the zeroed one is freed
            self._codes(list_no, old)[:] = codes
            self._ids(list_no, old)[:] = ids
            codes[:] = 0
            self._capacity[list_no] = capacity
        elif size < old:
            self._codes(list_no, old)[size:] = 0
        self._lists.resize(list_no, size)  # shrinking keeps the buffer (and its capacity)
        self._index.ntotal += size - old

    def extend(self, list_no: int, rows: npt.NDArray[np.float32]) -> None:
        """Append rows to a list (in the order their float32 block holds them).

        Args:
            list_no: the list slot.
            rows: float32 matrix (m, D).
        """
        start = self._lists.list_size(list_no)
        end = start + rows.shape[0]
        self._resize(list_no, end)
        self._codes(list_no, end)[start:] = fp16_codes(rows)
        self._ids(list_no, end)[start:] = (list_no << 32) + np.arange(start, end, dtype=np.int64)

    def swap_remove(self, list_no: int, row: int) -> None:
        """Remove one row the way `VectorBlock.remove` does: the last row moves into it.

        Args:
            list_no: the list slot.
            row: the row to remove.
        """
        size = self._lists.list_size(list_no)
        codes = self._codes(list_no, size)
        codes[row] = codes[size - 1]  # labels are positions: they stay as they are
        self._resize(list_no, size - 1)

    def clear(self, list_no: int) -> None:
        """Empty a list, zeroing its codes.

        Args:
            list_no: the list slot.
        """
        self._resize(list_no, 0)

    def wipe(self) -> None:
        """Zero and empty every list."""
        for list_no in range(len(self._capacity)):
            self.clear(list_no)

    def nbytes(self) -> int:
        """Bytes the lists hold in C++ memory (codes and labels, at capacity), which
        tracemalloc does not see.

        Returns:
            The byte count.
        """
        return sum(self._capacity) * (self._code_size + 8)

    def code_bytes(self) -> list[bytes]:
        """The live codes of every list (to check erasure).

        Returns:
            One bytes object per list.
        """
        return [
            self._codes(list_no, self._lists.list_size(list_no)).tobytes()
            for list_no in range(len(self._capacity))
        ]

    def candidates(
        self, query: npt.NDArray[np.float32], lists: list[int], total: int, k: int = 1
    ) -> list[tuple[int, int]]:
        """(list, row) of every code in `lists` whose screened score is within
        2 * screen_slack of the k-th best screened score.

        Every member of the exact top k is among them: if s is the k-th best exact score,
        fewer than k members score above s + e screened, so the k-th best screened score is
        at most s + e, and each exact top-k member screens at least s - e.

        Args:
            query: the float32 unit query (D,).
            lists: the list slots to scan (at least one non-empty).
            total: the number of codes in those lists.
            k: how many best members the caller wants.

        Returns:
            The (list, row) pairs; the exact top k members' are among them.
        """
        self._index.nprobe = len(lists)
        assign = np.asarray(lists, dtype=np.int64)[None, :]
        zero = np.zeros((1, len(lists)), dtype=np.float32)
        k = max(1, min(k, total))
        fetch = min(max(_FIRST_K, 2 * k), total)
        while True:
            scores, labels = self._index.search_preassigned(query[None, :], fetch, assign, zero)
            threshold = float(scores[0, k - 1]) - 2.0 * self._slack
            if fetch == total or float(scores[0, fetch - 1]) < threshold:
                kept = labels[0][(labels[0] >= 0) & (scores[0] >= threshold)].tolist()
                return [(label >> 32, label & 0xFFFFFFFF) for label in kept]
            fetch = min(4 * fetch, total)

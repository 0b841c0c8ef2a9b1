"""Data-independent projection of embeddings to exact fixed-point coordinates.

Deletion must never change how the remaining points are represented, so nothing here looks at
the data set: a seeded random orthonormal matrix projects each L2-normalized embedding to p
dimensions, scaled by sqrt(D) so coordinates are O(1), then coordinates are rounded to
integers in units of 2**-COORD_BITS. Every step is exact or a correctly rounded IEEE operation
on one row, so a row's coordinates never depend on which other rows share its batch: the
embedding is first quantized relative to its own max-abs entry (an exact integer vector), its
squared norm and its product with the integer-valued projection matrix are sums of integers
far below 2**53 (exact in float64 in any summation order, BLAS included), and only then is
the result divided by the norm and rounded.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["COORD_BITS", "FixedPointProjection", "normalize_rows"]

#: Coordinates are integers in units of 2**-COORD_BITS.
COORD_BITS = 20
#: Input quantization: each embedding entry becomes an integer in [-2**15, 2**15].
_INPUT_BITS = 15
#: Projection matrix entries are integers in units of 2**-_MATRIX_BITS.
_MATRIX_BITS = 15
#: Largest embedding dimension: coordinates stay below sqrt(D) * 2**20 <= 2**26.5, so with
#: p <= 64 every squared distance and dot product of the clustering fits in int64.
MAX_DIMENSION = 8192
#: Rows per chunk in the per-row pipelines (bounds temporary memory, keeps caches warm).
_CHUNK_ROWS = 8192


def normalize_rows(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """L2-normalize float32-rounded rows (the canonical stored form of an embedding).

    Raises ValueError for non-finite or all-zero rows; callers turn it into a typed error.
    Works in row chunks: every operation is per row, so chunking changes no bit.
    """
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of embeddings, got shape {x.shape}")
    out = np.empty(x.shape, dtype=np.float32)
    for start in range(0, x.shape[0], _CHUNK_ROWS):
        x64 = x[start : start + _CHUNK_ROWS].astype(np.float64)
        if not np.isfinite(x64).all():
            raise ValueError("embedding contains NaN or infinity")
        norms = np.sqrt(np.sum(x64 * x64, axis=1))
        if (norms == 0).any():
            raise ValueError("embedding is the zero vector")
        out[start : start + _CHUNK_ROWS] = x64 / norms[:, None]
    return out


class FixedPointProjection:
    """Seeded D -> p projection to integer coordinates; identical for every fit with the
    same (seed, D, p), so refits, deletions and insertions all see the same points."""

    def __init__(
        self,
        seed: int,
        dimension: int,
        p: int,
        matrix: npt.NDArray[np.float64] | None = None,
    ) -> None:
        if not 1 <= dimension <= MAX_DIMENSION:
            raise ValueError(f"embedding dimension must be in [1, {MAX_DIMENSION}]")
        if p < 1:
            raise ValueError("p must be >= 1")
        self.seed = seed
        self.dimension = dimension
        self.p = min(p, dimension)
        if matrix is not None:  # restored from a snapshot: exactly the saved projection
            if matrix.shape != (dimension, self.p) or not np.array_equal(matrix, np.rint(matrix)):
                raise ValueError("projection matrix has the wrong shape or is not integral")
            self.matrix: npt.NDArray[np.float64] = np.array(matrix, dtype=np.float64)
            return
        rng = np.random.default_rng([seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, dimension, p])
        q, r = np.linalg.qr(rng.standard_normal((dimension, self.p)))
        q = q * np.sign(np.diag(r))  # unique QR: fixes column signs
        scaled = q * np.sqrt(dimension) * float(1 << _MATRIX_BITS)
        self.matrix = np.rint(scaled)

    def project(self, unit_vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
        """Integer coordinates (n, p) of already-normalized float32 rows (n, D)."""
        if unit_vectors.ndim != 2 or unit_vectors.shape[1] != self.dimension:
            raise ValueError(
                f"expected embeddings of dimension {self.dimension}, got shape {unit_vectors.shape}"
            )
        out = np.empty((unit_vectors.shape[0], self.p), dtype=np.int64)
        for start in range(0, unit_vectors.shape[0], _CHUNK_ROWS):
            x = unit_vectors[start : start + _CHUNK_ROWS].astype(np.float64)
            max_abs = np.max(np.abs(x), axis=1)
            xq = np.rint(x / max_abs[:, None] * float(1 << _INPUT_BITS))
            norm = np.sqrt(np.sum(xq * xq, axis=1))
            exact = xq @ self.matrix  # integer-valued, exact
            # exact / norm = coordinate * 2**_MATRIX_BITS; rescaling by a power of two is exact
            scale = float(1 << (COORD_BITS - _MATRIX_BITS))
            out[start : start + _CHUNK_ROWS] = np.rint(exact / norm[:, None] * scale)
        return out

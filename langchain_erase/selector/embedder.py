"""Embedding with the user's LangChain model, and the checks every vector passes.

`embed_documents` embeds in batches (with an optional progress bar), `embed_query` one
query; both, and vectors given by the caller (`validated`), come out as L2-normalized
float32 rows, or raise `EmbeddingError` unless they are finite, non-zero, real and of the
selector's dimension. A model's own typed refusal (`InputTooLongError`) passes unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt
from tqdm.auto import tqdm

from langchain_erase.core.projection import MAX_DIMENSION, normalize_rows
from langchain_erase.errors import EmbeddingError, ERASEError

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

__all__ = ["EMBED_BATCH", "embed_documents", "embed_query", "validated"]

T = TypeVar("T")
R = TypeVar("R")

#: Texts per `embed_documents` call of the model.
EMBED_BATCH = 256


def validated(
    raw: npt.ArrayLike, count: int, p: int, dimension: int | None
) -> npt.NDArray[np.float32]:
    """Check and normalize embeddings.

    Args:
        raw: The embeddings (a list of lists or an array).
        count: How many there must be.
        p: The projected dimension (the embedding dimension must be at least p).
        dimension: The required dimension, or None for any allowed one.

    Returns:
        L2-normalized float32 (count, D) rows.

    Raises:
        EmbeddingError: Not `count` finite, non-zero, real vectors of the dimension.
    """
    try:
        if np.iscomplexobj(raw):
            raise ValueError("embeddings must be real numbers")
        with np.errstate(over="raise"):  # a value beyond float32 is refused, not warned
            matrix = np.asarray(raw, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != count:
            raise ValueError(f"expected {count} embeddings, got an array of shape {matrix.shape}")
        if not p <= matrix.shape[1] <= MAX_DIMENSION:
            raise ValueError(f"embedding dimension must be in [p={p}, {MAX_DIMENSION}]")
        if dimension is not None and matrix.shape[1] != dimension:
            raise ValueError(
                f"embedding dimension {matrix.shape[1]} differs from the selector's {dimension}"
            )
        return normalize_rows(matrix)
    except (ValueError, TypeError, FloatingPointError) as err:
        raise EmbeddingError(f"invalid embeddings: {err}") from err


def embed_documents(
    embeddings: Embeddings,
    texts: list[str],
    *,
    p: int,
    dimension: int | None,
    show_progress: bool = False,
) -> npt.NDArray[np.float32]:
    """Embed texts as documents, in batches of `EMBED_BATCH`.

    Args:
        embeddings: The model.
        texts: The texts.
        p: The projected dimension.
        dimension: The required dimension (None: any allowed).
        show_progress: Show a tqdm progress bar.

    Returns:
        Checked, normalized float32 rows (see `validated`).
    """
    raw: list[list[float]] = []
    # No tqdm object at all unless asked: even a disabled one takes tqdm's global lock,
    # which deadlocks a process forked while tqdm's monitor thread held it.
    bar = tqdm(total=len(texts), desc="embedding examples", unit="ex") if show_progress else None
    try:
        for start in range(0, len(texts), EMBED_BATCH):
            chunk = texts[start : start + EMBED_BATCH]
            raw.extend(_call(embeddings.embed_documents, chunk))
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return validated(raw, len(texts), p, dimension)


def embed_query(embeddings: Embeddings, text: str, *, p: int) -> npt.NDArray[np.float32]:
    """Embed a query.

    Args:
        embeddings: The model.
        text: The query text.
        p: The projected dimension.

    Returns:
        The checked, normalized float32 (D,) vector.
    """
    return validated([_call(embeddings.embed_query, text)], 1, p, None).reshape(-1)


def _call(method: Callable[[T], R], argument: T) -> R:
    """`method(argument)`, the model's failures as EmbeddingError (typed refusals kept)."""
    try:
        return method(argument)
    except ERASEError:  # the model's own typed refusal (InputTooLongError) stays as is
        raise
    except Exception as err:
        raise EmbeddingError(f"the embedding model failed: {err}") from err

"""Exact changes to an `ERASEIndex`, checked before they start, with what each one did.

`apply_add` and `apply_delete` are the only code that changes an index on a write; both
write sessions (`replication.session`) call them, the store one then records what they did
in the store's transaction. Each checks everything first and raises a typed error before
any change, so a refused call leaves the index as it was.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from langchain_erase.core.canonical import redact_id
from langchain_erase.core.index import ERASEIndex
from langchain_erase.core.qkmeans import MAX_POINTS, ChangeOutcome
from langchain_erase.errors import (
    DuplicateExampleError,
    EmbeddingError,
    InvalidExampleError,
    UnknownExampleError,
)

__all__ = ["Addition", "Deletion", "apply_add", "apply_delete", "check_absent"]


@dataclass(frozen=True)
class Addition:
    """What one add of a batch did.

    Attributes:
        ids: The added ids, in the caller's order.
        outcomes: The index's outcome per id (`BATCH_FIT` for a batch fitted at once).
        seconds: Wall time of the in-memory change.
        positions: Change-log position per id; None without a store.
    """

    ids: list[str]
    outcomes: list[ChangeOutcome]
    seconds: float
    positions: list[int | None]


@dataclass(frozen=True)
class Deletion:
    """What one deletion did.

    Attributes:
        example_id: The deleted id.
        text: The deleted example's canonical JSON text (for deletion listeners).
        outcome: What the deletion did to the clustering (refit or constant-time path).
        digest_before: `state_digest()` before this deletion.
        digest_after: `state_digest()` after it.
        seconds: Wall time of this deletion in memory.
        position: Change-log position of the deletion; None without a store.
    """

    example_id: str
    text: str
    outcome: ChangeOutcome
    digest_before: str
    digest_after: str
    seconds: float
    position: int | None = None


def check_absent(index: ERASEIndex, ids: Sequence[str]) -> None:
    """Raise DuplicateExampleError for the first id repeated in `ids` or present in `index`.

    Args:
        index: The index the ids would be added to.
        ids: New ids.
    """
    if len(set(ids)) == len(ids) and index.none_present(ids):
        return
    seen: set[str] = set()  # find the first repeated or present id
    for example_id in ids:
        if example_id in seen or example_id in index:
            raise DuplicateExampleError(
                f"an example with {redact_id(example_id)} is already present"
            )
        seen.add(example_id)


def apply_add(
    index: ERASEIndex,
    ids: Sequence[str],
    texts: Sequence[str],
    vectors: npt.NDArray[np.float32],
) -> Addition:
    """Add rows to `index` exactly, or raise before any change.

    Args:
        index: The index to change.
        ids: New ids (DuplicateExampleError if repeated or present).
        texts: Their canonical JSON texts.
        vectors: Their float32 (n, D) unit rows (EmbeddingError if unfit).

    Returns:
        What the add did (positions None: a store session fills them in).
    """
    ids = list(ids)
    check_absent(index, ids)
    try:
        index.check_rows(ids, texts, vectors)
    except ValueError as err:
        if len(index) + len(ids) > MAX_POINTS:
            raise InvalidExampleError(
                f"an example set holds at most {MAX_POINTS} examples"
            ) from None
        raise EmbeddingError(f"invalid embeddings: {err}") from None
    start = time.perf_counter()
    outcomes = index.add(ids, texts, vectors)
    return Addition(ids, outcomes, time.perf_counter() - start, [None] * len(ids))


def apply_delete(index: ERASEIndex, ids: Sequence[str]) -> list[Deletion]:
    """Delete ids from `index` exactly, one after another, or raise before any change.

    Args:
        index: The index to change.
        ids: Present ids, each at most once (UnknownExampleError / DuplicateExampleError).

    Returns:
        One record per id, in order (positions None: a store session fills them in).
    """
    for example_id in ids:
        if not isinstance(example_id, str) or example_id not in index:
            raise UnknownExampleError(f"no example with {redact_id(example_id)}")
    if len(set(ids)) != len(ids):
        raise DuplicateExampleError("the same id is listed twice")
    done = []
    for example_id in ids:
        start = time.perf_counter()
        before = index.state_digest()
        text = index.text(example_id)
        outcome = index.delete(example_id)
        done.append(
            Deletion(
                example_id,
                text,
                outcome,
                before,
                index.state_digest(),
                time.perf_counter() - start,
            )
        )
    return done

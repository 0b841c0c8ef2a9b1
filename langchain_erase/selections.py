"""`SelectedExample`: one selected demonstration with its id, for apps that act on feedback."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from langchain_erase.errors import InvalidParameterError
from langchain_erase.inputs import Example

__all__ = ["SelectedExample", "SelectsWithIds", "checked_limit"]


def checked_limit(k: object) -> int | None:
    """A per-call number of examples: a positive integer, or None for the selector's own.

    Args:
        k: What the caller passed.

    Returns:
        `k` unchanged.

    Raises:
        InvalidParameterError: `k` is not None and not a positive integer (bools refused).
    """
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise InvalidParameterError(f"k must be a positive integer or None, got {k!r}")
    return k


@dataclass(frozen=True, slots=True)
class SelectedExample:
    """One example a selection returned, with what an app needs to trace or delete it.

    `select_examples` keeps LangChain's contract (a list of dicts); `select_with_ids` returns
    these records in the same order, so ``selector.delete_example(record.id)`` removes a
    demonstration that users flagged as bad.

    Attributes:
        id: The example's id (what `delete_example` takes).
        example: The example as `select_examples` returns it (a copy).
        text: The text that was embedded for it (its input keys' values).
        bucket: Its cluster in the bucket modes; None for knn and mmr.
        state_digest: `state_digest()` of the state that made the selection.
    """

    id: str
    example: Example
    text: str
    bucket: int | None
    state_digest: str


@runtime_checkable
class SelectsWithIds(Protocol):
    """What a retriever needs from a selector (`ERASEExampleSelector` provides it)."""

    @property
    def input_keys(self) -> Sequence[str] | None:
        """The variables whose values are embedded (None: all)."""

    @property
    def embeddings(self) -> Any:
        """The LangChain `Embeddings` the selector embeds with."""

    def select_with_ids(
        self, input_variables: dict[str, Any], *, k: int | None = None
    ) -> list[SelectedExample]:
        """Select for `input_variables`; see `ERASEExampleSelector.select_with_ids`."""

    async def aselect_with_ids(
        self, input_variables: dict[str, Any], *, k: int | None = None
    ) -> list[SelectedExample]:
        """Async `select_with_ids`."""

"""`AsyncMethods`: the async twins of a selector's methods, each run in an executor thread
(embedding and fitting are CPU- or model-bound; the selector's lock keeps them safe)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Protocol

from langchain_core.runnables.config import run_in_executor

from langchain_erase.receipts import DeletionReceipt
from langchain_erase.selections import SelectedExample

__all__ = ["AsyncMethods"]


class _Sync(Protocol):
    def select_with_ids(
        self, input_variables: dict[str, Any], *, k: int | None = None
    ) -> list[SelectedExample]: ...

    def add_example(self, example: dict[str, Any]) -> str: ...

    def add_examples(
        self, examples: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None
    ) -> list[str]: ...

    def delete_example(self, example_id: str) -> DeletionReceipt: ...

    def delete_examples(self, ids: Sequence[str]) -> list[DeletionReceipt]: ...


class AsyncMethods:
    """Mixin: ``a``-prefixed twins of `select_with_ids`, `add_example(s)` and
    `delete_example(s)`."""

    async def aselect_with_ids(
        self: _Sync, input_variables: dict[str, Any], *, k: int | None = None
    ) -> list[SelectedExample]:
        """Async `select_with_ids` (the query is embedded in an executor thread).

        Args:
            input_variables: The prompt's variables (see `select_examples`).
            k: How many (see `select_with_ids`).

        Returns:
            One record per selected example.
        """
        return await run_in_executor(None, partial(self.select_with_ids, k=k), input_variables)

    async def aadd_example(self: _Sync, example: dict[str, Any]) -> str:
        """Async `add_example` (runs in an executor).

        Args:
            example: A dict with string keys and JSON values.

        Returns:
            Its id.
        """
        return await run_in_executor(None, self.add_example, example)

    async def aadd_examples(
        self: _Sync, examples: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None
    ) -> list[str]:
        """Async `add_examples` (runs in an executor).

        Args:
            examples: Dicts with string keys and JSON values.
            ids: One id per example.

        Returns:
            The new ids.
        """
        return await run_in_executor(None, self.add_examples, examples, ids)

    async def adelete_example(self: _Sync, example_id: str) -> DeletionReceipt:
        """Async `delete_example` (runs in an executor).

        Args:
            example_id: A present id.

        Returns:
            The receipt.
        """
        return await run_in_executor(None, self.delete_example, example_id)

    async def adelete_examples(self: _Sync, ids: Sequence[str]) -> list[DeletionReceipt]:
        """Async `delete_examples` (runs in an executor).

        Args:
            ids: Present ids.

        Returns:
            The receipts.
        """
        return await run_in_executor(None, self.delete_examples, ids)

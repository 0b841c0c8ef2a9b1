"""`ERASEVectorStoreRetriever`: LangChain's `VectorStoreRetriever` that refuses what it
cannot honour.

LangChain's retriever passes `search_kwargs` on to the store's search method; a misspelt
key is then silently ignored by many stores. This one checks, at construction and on every
call, that each key is one the chosen `search_type` reads, and that the query is a string:

- ``"similarity"``: ``k``, ``filter``;
- ``"similarity_score_threshold"``: ``k``, ``filter``, ``score_threshold`` (required);
- ``"mmr"``: ``k``, ``fetch_k``, ``lambda_mult``, ``filter``.

Anything else raises `InvalidParameterError` (a ValueError) with the allowed keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStoreRetriever
from pydantic import model_validator

from langchain_erase.errors import InvalidParameterError

__all__ = ["SEARCH_KWARGS", "ERASEVectorStoreRetriever", "check_query"]

#: The `search_kwargs` keys each search type reads.
SEARCH_KWARGS: dict[str, frozenset[str]] = {
    "similarity": frozenset({"k", "filter"}),
    "similarity_score_threshold": frozenset({"k", "filter", "score_threshold"}),
    "mmr": frozenset({"k", "fetch_k", "lambda_mult", "filter"}),
}


def check_query(query: object) -> str:
    """Args:
        query: What a caller passed as a query.

    Returns:
        The query.

    Raises:
        InvalidParameterError: It is not a string.
    """
    if not isinstance(query, str):
        raise InvalidParameterError(f"the query must be a string, got {type(query).__name__}")
    return query


def _check_keys(search_type: str, kwargs: Mapping[str, Any]) -> None:
    allowed = SEARCH_KWARGS[search_type]
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise InvalidParameterError(
            f"search_kwargs {unknown} are not read by search_type={search_type!r}; "
            f"it takes {sorted(allowed)}"
        )


class ERASEVectorStoreRetriever(VectorStoreRetriever):
    """A `VectorStoreRetriever` over an `ERASEVectorStore` that refuses unknown
    `search_kwargs` and non-string queries (see the module docstring)."""

    @model_validator(mode="after")
    def _known_kwargs(self) -> ERASEVectorStoreRetriever:
        _check_keys(self.search_type, self.search_kwargs)
        return self

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        _check_keys(self.search_type, kwargs)
        return super()._get_relevant_documents(
            check_query(query), run_manager=run_manager, **kwargs
        )

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        _check_keys(self.search_type, kwargs)
        return await super()._aget_relevant_documents(
            check_query(query), run_manager=run_manager, **kwargs
        )

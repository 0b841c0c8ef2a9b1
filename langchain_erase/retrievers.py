"""`ERASERetriever`: an ERASE selector as a LangChain retriever (like `VectorStoreRetriever`).

`invoke(query)` runs a selection and returns one `Document` per selected example: ``id`` is
the example id (what `delete_example` takes), ``page_content`` the text that was embedded
for it, and ``metadata`` the example's other fields plus ``erase_bucket`` (its cluster in
the bucket modes, None for knn and mmr) and ``erase_state_digest`` (the digest of the state
that made the selection, so a trace records exactly which selector answered). Invoked with
callbacks, the selection appears as a retriever run whose outputs carry these documents.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever, LangSmithRetrieverParams
from pydantic import ConfigDict, Field

from langchain_erase.errors import InvalidParameterError
from langchain_erase.selections import SelectedExample, SelectsWithIds, checked_limit

__all__ = ["SEARCH_TYPES", "ERASERetriever", "ModeSelector", "selection_to_document"]

#: Metadata keys the retriever adds to each document's example fields.
BUCKET_KEY = "erase_bucket"
DIGEST_KEY = "erase_state_digest"


def selection_to_document(selected: SelectedExample, input_keys: Sequence[str] | None) -> Document:
    """The `Document` for one selected example.

    Args:
        selected: A record from `ERASEExampleSelector.select_with_ids`.
        input_keys: The selector's input keys (their values make up ``page_content``).

    Returns:
        A Document with the example id, its embedded text and its other fields.
    """
    embedded = set(input_keys) if input_keys else set(selected.example)
    metadata: dict[str, Any] = {
        key: value for key, value in selected.example.items() if key not in embedded
    }
    metadata[BUCKET_KEY] = selected.bucket
    metadata[DIGEST_KEY] = selected.state_digest
    return Document(id=selected.id, page_content=selected.text, metadata=metadata)


@runtime_checkable
class ModeSelector(SelectsWithIds, Protocol):
    """A `SelectsWithIds` that also tells its selection mode (`ERASEExampleSelector` does)."""

    @property
    def selection(self) -> str:
        """The selection mode ("random", "similar", "knn", "mmr", ...)."""


#: `search_type` -> the selector selection that performs it.
SEARCH_TYPES: dict[str, str] = {"similarity": "knn", "mmr": "mmr"}
_STORE_ONLY = "use ERASEVectorStore, whose retriever has search_type='similarity_score_threshold'"
_MMR_KNOBS = (
    "a selector's MMR settings are fixed at construction: ERASEExampleSelector(..., "
    "selection='mmr', fetch_k=..., lambda_mult=...), or per query with ERASEVectorStore"
)
#: `search_kwargs` keys a selector cannot honour, each with what to do instead.
_REFUSED_SEARCH_KWARGS: dict[str, str] = {
    "filter": "a selector has no metadata filter; ERASEVectorStore's retriever takes "
    "search_kwargs={'filter': ...}",
    "score_threshold": f"a selector does not score what it selects; {_STORE_ONLY}",
    "fetch_k": _MMR_KNOBS,
    "lambda_mult": _MMR_KNOBS,
}
#: Selection modes whose picks do not depend on what the query means.
_QUERY_INDEPENDENT = frozenset({"random", "centroid", "fixed"})

logger = logging.getLogger("langchain_erase")


def _check_search_type(search_type: str | None, selection: str) -> None:
    """Refuse a `search_type` the selector does not perform.

    Args:
        search_type: The retriever's `search_type` (None: the selector's own selection).
        selection: The selector's selection mode.

    Raises:
        InvalidParameterError: The search type is unknown, needs scores, or needs another
            selection mode than the selector's.
    """
    if search_type is None:
        return
    if search_type == "similarity_score_threshold":
        raise InvalidParameterError(
            f"search_type={search_type!r}: a selector does not score what it selects; {_STORE_ONLY}"
        )
    needed = SEARCH_TYPES.get(search_type) if isinstance(search_type, str) else None
    if needed is None:
        raise InvalidParameterError(
            f"search_type must be one of {sorted(SEARCH_TYPES)} or None (the selector's own "
            f"selection), got {search_type!r}"
        )
    if needed != selection:
        raise InvalidParameterError(
            f"search_type={search_type!r} needs a selector built with selection={needed!r} (or "
            f"ERASEVectorStore); this selector's selection is {selection!r}: leave search_type "
            "unset to retrieve with it"
        )


def _search_k(search_kwargs: Mapping[str, Any]) -> int | None:
    """The `k` of `search_kwargs`, whose other keys are refused.

    Args:
        search_kwargs: `k` is the only key a selector honours.

    Returns:
        `k`, or None when absent.

    Raises:
        InvalidParameterError: Another key is present (the message says what to use
            instead), or `k` is not a positive integer.
    """
    if not isinstance(search_kwargs, Mapping):
        raise InvalidParameterError(f"search_kwargs must be a dict, got {search_kwargs!r}")
    for key in search_kwargs:
        if key != "k":
            reason = _REFUSED_SEARCH_KWARGS.get(key, "a selector's retriever takes only 'k'")
            raise InvalidParameterError(f"search_kwargs[{key!r}] is not supported: {reason}")
    return checked_limit(search_kwargs.get("k"))


class ERASERetriever(BaseRetriever):
    """Retrieve few-shot demonstrations from an `ERASEExampleSelector` as Documents.

    The query string becomes the selector's single input key (a selector without input keys
    embeds it as it is). Deleting an example from the selector removes it from every later
    retrieval, exactly as a fresh fit without it would answer.

    Like `VectorStoreRetriever`, it takes `search_type` and `search_kwargs`, and refuses with
    `InvalidParameterError` what a selector cannot honour instead of ignoring it: the only
    search kwarg is `k`; `search_type` "similarity" needs a selector in "knn" mode and "mmr"
    one in "mmr" mode (None, the default, retrieves with the selector's own selection);
    scores, thresholds, filters and per-query MMR settings belong to `ERASEVectorStore`.
    In the "random", "centroid" and "fixed" modes the documents do not depend on what the
    query means; building such a retriever logs a warning.

    Example:
        .. code-block:: python

            retriever = selector.as_retriever(search_kwargs={"k": 2})
            docs = retriever.invoke("I loved this film")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    selector: ModeSelector
    """The selector that answers (an `ERASEExampleSelector`)."""
    k: int | None = None
    """How many documents at most: knn and mmr select this many; the bucket modes return the
    first `k` of their one-per-bucket picks. None returns the selector's own selection."""
    search_type: str | None = None
    """"similarity" (a selector in "knn" mode), "mmr" (in "mmr" mode), or None: whatever
    the selector's selection mode does."""
    search_kwargs: dict[str, Any] = Field(default_factory=dict)
    """`VectorStoreRetriever`'s search kwargs; only ``{"k": ...}`` is honoured (the same as
    the `k` field), every other key is refused."""

    def __init__(self, **kwargs: Any) -> None:
        """Check the arguments with typed errors, then let pydantic build the retriever.

        Args:
            **kwargs: The fields (`selector`, `k`, `search_type`, `search_kwargs`) and
                `BaseRetriever`'s (tags, metadata).

        Raises:
            InvalidParameterError: `k` is not a positive integer or None, `search_kwargs`
                has another key than `k` or a `k` different from the `k` field, the
                `search_type` is not what the selector does, or the selector has more than
                one input key (a query is one string).
        """
        k = checked_limit(kwargs.get("k"))
        searched = _search_k(kwargs.get("search_kwargs") or {})
        if searched is not None:
            if k is not None and k != searched:
                raise InvalidParameterError(
                    f"k={k} and search_kwargs['k']={searched} disagree: give one of them"
                )
            kwargs["k"] = searched
        selector = kwargs.get("selector")
        keys = getattr(selector, "input_keys", None)
        if keys and len(keys) > 1:
            raise InvalidParameterError(
                "a retriever query is one string, so the selector needs at most one input key, "
                f"got {keys}"
            )
        selection = str(getattr(selector, "selection", ""))
        _check_search_type(kwargs.get("search_type"), selection)
        super().__init__(**kwargs)
        if selection in _QUERY_INDEPENDENT:
            logger.warning(
                "ERASERetriever: selection=%r picks documents that do not depend on what the "
                "query means; for relevant documents use selection='similar' or 'knn' (or "
                "ERASEVectorStore)",
                selection,
            )

    def _request(
        self, query: object, overrides: Mapping[str, Any]
    ) -> tuple[dict[str, str], int | None]:
        """The selector's input variables for `query` and the number of examples to select
        (the call's `k`, else the search kwargs', else the retriever's; the selector checks
        it)."""
        if not isinstance(query, str):
            raise InvalidParameterError(
                f"a retriever query is a string, got {type(query).__name__}; to select for "
                "several prompt variables call selector.select_with_ids(input_variables)"
            )
        _check_search_type(self.search_type, self.selector.selection)
        k = _search_k({**self.search_kwargs, **overrides})
        key = self.selector.input_keys[0] if self.selector.input_keys else "query"
        return {key: query}, self.k if k is None else k

    def _documents(self, selected: Sequence[SelectedExample]) -> list[Document]:
        """The selected examples as Documents, in selection order."""
        return [selection_to_document(s, self.selector.input_keys) for s in selected]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        """Select for `query` and convert each selected example to a Document.

        Args:
            query: The text to select demonstrations for.
            run_manager: The retriever run (LangChain passes it).
            **kwargs: Search kwargs for this call: `k` overrides the retriever's.

        Returns:
            One Document per selected example, in selection order.

        Raises:
            InvalidParameterError: `query` is not a string, or a search kwarg is refused.
        """
        variables, limit = self._request(query, kwargs)
        return self._documents(self.selector.select_with_ids(variables, k=limit))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        """`_get_relevant_documents` with the embedding run in an executor thread (same
        arguments and result)."""
        variables, limit = self._request(query, kwargs)
        return self._documents(await self.selector.aselect_with_ids(variables, k=limit))

    def _get_ls_params(self, **kwargs: Any) -> LangSmithRetrieverParams:
        params = super()._get_ls_params(**kwargs)
        params["ls_vector_store_provider"] = "ERASE"
        params["ls_embedding_provider"] = type(self.selector.embeddings).__name__
        return params

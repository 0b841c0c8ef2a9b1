"""`ERASERetriever`: an ERASE selector as a LangChain retriever (like `VectorStoreRetriever`).

`invoke(query)` runs a selection and returns one `Document` per selected example: ``id`` is
the example id (what `delete_example` takes), ``page_content`` the text that was embedded
for it, and ``metadata`` the example's other fields plus ``erase_bucket`` (its cluster in
the bucket modes, None for knn and mmr) and ``erase_state_digest`` (the digest of the state
that made the selection, so a trace records exactly which selector answered). Invoked with
callbacks, the selection appears as a retriever run whose outputs carry these documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever, LangSmithRetrieverParams
from pydantic import ConfigDict

from langchain_erase.errors import InvalidParameterError
from langchain_erase.selections import SelectedExample, SelectsWithIds, checked_limit

__all__ = ["ERASERetriever", "selection_to_document"]

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


class ERASERetriever(BaseRetriever):
    """Retrieve few-shot demonstrations from an `ERASEExampleSelector` as Documents.

    The query string becomes the selector's single input key (a selector without input keys
    embeds it as it is). Deleting an example from the selector removes it from every later
    retrieval, exactly as a fresh fit without it would answer.

    Example:
        .. code-block:: python

            retriever = selector.as_retriever(k=2)
            docs = retriever.invoke("I loved this film")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    selector: SelectsWithIds
    """The selector that answers (an `ERASEExampleSelector`)."""
    k: int | None = None
    """How many documents at most: knn and mmr select this many; the bucket modes return the
    first `k` of their one-per-bucket picks. None returns the selector's own selection."""

    def __init__(self, **kwargs: Any) -> None:
        """Check the arguments with typed errors, then let pydantic build the retriever.

        Args:
            **kwargs: The fields (`selector`, `k`) and `BaseRetriever`'s (tags, metadata).

        Raises:
            InvalidParameterError: `k` is not a positive integer or None, or the selector
                has more than one input key (a query is one string).
        """
        checked_limit(kwargs.get("k"))
        selector = kwargs.get("selector")
        keys = getattr(selector, "input_keys", None)
        if keys and len(keys) > 1:
            raise InvalidParameterError(
                "a retriever query is one string, so the selector needs at most one input key, "
                f"got {keys}"
            )
        super().__init__(**kwargs)

    def _request(self, query: str, k: int | None) -> tuple[dict[str, str], int | None]:
        """The selector's input variables for `query` and the number of examples to select
        (`k` if given, else the retriever's; the selector checks it)."""
        key = self.selector.input_keys[0] if self.selector.input_keys else "query"
        return {key: query}, self.k if k is None else k

    def _documents(self, selected: Sequence[SelectedExample]) -> list[Document]:
        """The selected examples as Documents, in selection order."""
        return [selection_to_document(s, self.selector.input_keys) for s in selected]

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        """Select for `query` and convert each selected example to a Document.

        Args:
            query: The text to select demonstrations for.
            run_manager: The retriever run (LangChain passes it).
            k: Overrides the retriever's `k` for this call.

        Returns:
            One Document per selected example, in selection order.
        """
        variables, limit = self._request(query, k)
        return self._documents(self.selector.select_with_ids(variables, k=limit))

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        """`_get_relevant_documents` with the embedding run in an executor thread (same
        arguments and result)."""
        variables, limit = self._request(query, k)
        return self._documents(await self.selector.aselect_with_ids(variables, k=limit))

    def _get_ls_params(self, **kwargs: Any) -> LangSmithRetrieverParams:
        params = super()._get_ls_params(**kwargs)
        params["ls_vector_store_provider"] = "ERASE"
        params["ls_embedding_provider"] = type(self.selector.embeddings).__name__
        return params

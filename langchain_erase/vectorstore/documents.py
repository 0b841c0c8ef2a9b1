"""Documents as stored rows, and the metadata filter.

A document is stored as the canonical JSON of ``{"metadata": ..., "page_content": ...}``
(`langchain_erase.core.canonical`): its id is the row id, its vector the row vector, so the
state is a function of the set of (id, text, metadata, vector) rows. Metadata values must
have a JSON form (strings, finite numbers, booleans, None, lists and string-keyed dicts of
those); anything else is refused with `InvalidExampleError` before anything is stored.

**Filter semantics.** ``filter`` is either

- a dict: a document matches when, for every key, its metadata has that key with an equal
  value, compared as canonical JSON (so ``1`` matches ``1`` but not ``1.0`` or ``True``;
  a list matches only the same list). An empty dict matches every document. Keys are
  top-level metadata keys; nested values are compared whole;
- or a callable taking a `Document` and returning True to keep it.

A filtered search is exact over the matching documents (a pre-filter: the k best matching
documents, not the matches among the k best of all). It reads every stored text once
(O(n)); a dict filter first tests each text for the canonical fragment ``"key":value``
before parsing it, so non-matching documents cost a substring search.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langchain_core.documents import Document

from langchain_erase.core.canonical import canonical_json
from langchain_erase.errors import InvalidExampleError, InvalidParameterError
from langchain_erase.inputs import check_unicode, validate_example

__all__ = [
    "MetadataFilter",
    "document_of",
    "document_rows",
    "document_text",
    "parse_document",
]


def document_text(page_content: object, metadata: object) -> str:
    """The stored text of a document.

    Args:
        page_content: The document's text (a string).
        metadata: Its metadata (a dict with string keys and JSON values, or None).

    Returns:
        Canonical JSON of ``{"metadata": ..., "page_content": ...}``.

    Raises:
        InvalidExampleError: Not a string, or metadata without a JSON form.
    """
    if not isinstance(page_content, str):
        raise InvalidExampleError(
            f"page_content must be a string, got {type(page_content).__name__}"
        )
    check_unicode(page_content, "page_content")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise InvalidExampleError(f"metadata must be a dict, got {type(metadata).__name__}")
    clean = validate_example({"metadata": dict(metadata), "page_content": page_content}, ())
    return canonical_json(clean)


def document_rows(
    texts: Sequence[str],
    metadatas: Sequence[Mapping[str, Any]] | None,
    ids: Sequence[str | None] | None,
) -> tuple[list[str], list[str]]:
    """Ids and stored texts of new documents, checked before anything is embedded.

    Args:
        texts: Page contents.
        metadatas: One metadata dict per text, or None.
        ids: One id per text (None entries, or None: a random UUID each), or None.

    Returns:
        (ids, stored texts).

    Raises:
        InvalidExampleError: Lengths disagree, an id is not a non-empty string of valid
            Unicode or is given twice, or a text or metadata value is refused.
    """
    if metadatas is not None and len(metadatas) != len(texts):
        raise InvalidExampleError("metadatas must hold one dict per text")
    if ids is not None and len(ids) != len(texts):
        raise InvalidExampleError("ids must hold one id per text")
    given = list(ids) if ids is not None else [None] * len(texts)
    new_ids: list[Any] = [uuid.uuid4().hex if i is None else i for i in given]
    for doc_id in new_ids:
        if not isinstance(doc_id, str) or not doc_id:
            raise InvalidExampleError("ids must be non-empty strings")
        check_unicode(doc_id, "an id")
    if len(set(new_ids)) != len(new_ids):
        raise InvalidExampleError("an id is given twice in one call")
    rows = [
        document_text(text, None if metadatas is None else metadatas[n])
        for n, text in enumerate(texts)
    ]
    return new_ids, rows


def parse_document(text: str) -> tuple[str, dict[str, Any]]:
    """Parse a stored text.

    Args:
        text: A stored document text.

    Returns:
        (page_content, metadata).

    Raises:
        ValueError: The text is not a stored document.
    """
    value = json.loads(text)
    if (
        not isinstance(value, dict)
        or set(value) != {"metadata", "page_content"}
        or not isinstance(value["page_content"], str)
        or not isinstance(value["metadata"], dict)
    ):
        raise ValueError("a stored row is not a document")
    return value["page_content"], value["metadata"]


def document_of(doc_id: str, text: str) -> Document:
    """Args:
        doc_id: The row id.
        text: The stored text.

    Returns:
        A new `Document` (the caller may change it freely)."""
    page_content, metadata = parse_document(text)
    return Document(id=doc_id, page_content=page_content, metadata=metadata)


class MetadataFilter:
    """A checked ``filter`` argument (see the module docstring for its semantics)."""

    def __init__(self, spec: Mapping[str, Any] | Callable[[Document], bool]) -> None:
        """Args:
            spec: A dict of required metadata values, or a predicate on documents.

        Raises:
            InvalidParameterError: Neither, or a dict value without a JSON form.
        """
        self._predicate: Callable[[Document], bool] | None = None
        self._required: dict[str, str] = {}
        if isinstance(spec, Mapping):
            try:
                clean = validate_example({"filter": dict(spec)}, (), "filter")["filter"]
            except InvalidExampleError as err:
                raise InvalidParameterError(str(err)) from None
            assert isinstance(clean, dict)
            self._required = {key: canonical_json(value) for key, value in clean.items()}
        elif callable(spec):
            self._predicate = spec
        else:
            raise InvalidParameterError(
                f"filter must be a dict or a callable, got {type(spec).__name__}"
            )
        # what a matching stored text must contain (it is canonical JSON)
        self._fragments = [f"{canonical_json(k)}:{v}" for k, v in self._required.items()]

    def matching(self, rows: Iterable[tuple[str, str]]) -> list[str]:
        """Args:
            rows: (id, stored text) pairs.

        Returns:
            The ids of the matching documents, in the given order."""
        out = []
        for doc_id, text in rows:
            if any(fragment not in text for fragment in self._fragments):
                continue
            if self._predicate is not None:
                if self._predicate(document_of(doc_id, text)):
                    out.append(doc_id)
                continue
            metadata = parse_document(text)[1]
            if all(
                key in metadata and canonical_json(metadata[key]) == value
                for key, value in self._required.items()
            ):
                out.append(doc_id)
        return out

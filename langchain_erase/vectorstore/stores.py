"""Opening an `ERASEVectorStore` on a SQLite file or a PostgreSQL database.

The storage backends and the write session are the example selector's
(`langchain_erase.storage`, `langchain_erase.replication.session`): rows are (id, canonical
document JSON, vector), the header keeps `VectorStoreParams.stored()` (marked with
`STORE_KIND`, so a selector's set is never opened as a vector store or back) and the
embedding model's fingerprint, which a reopen checks.
"""

from __future__ import annotations

import os
from typing import Any

from langchain_core.embeddings import Embeddings

from langchain_erase.errors import (
    InvalidParameterError,
    StateFileError,
)
from langchain_erase.inputs import encodable
from langchain_erase.replication.session import Consistency, StoreSession
from langchain_erase.selector.fingerprint import ModelFingerprint
from langchain_erase.storage import open_backend
from langchain_erase.storage.base import StorageBackend, StoreHeader
from langchain_erase.vectorstore.documents import parse_document
from langchain_erase.vectorstore.params import STORE_KIND, VectorStoreParams

__all__ = ["open_session"]

_CONSISTENCY = ("strong", "eventual")


def _check_text(text: str) -> None:
    parse_document(text)


def _stored_params(backend: StorageBackend, params: dict[str, Any]) -> VectorStoreParams:
    """The set's parameters: created from `params` if new, else the stored ones, which
    `params` must not contradict."""
    given = VectorStoreParams.of(**params)
    header = backend.read_header()
    if header is None:
        header = backend.create(StoreHeader(given.stored(), None, None, None))
    stored = dict(header.params)
    if stored.pop("kind", None) != STORE_KIND:
        raise StateFileError(f"{backend.describe()} is not an ERASEVectorStore's document set")
    try:
        kept = VectorStoreParams.of(**stored)
    except InvalidParameterError as err:
        raise StateFileError(f"{backend.describe()} has invalid parameters: {err}") from None
    differ = sorted(k for k in params if params[k] != stored.get(k))
    if differ:
        raise InvalidParameterError(
            f"{backend.describe()} was created with other parameters: "
            + ", ".join(f"{k}={stored.get(k)!r} (given {params[k]!r})" for k in differ)
        )
    return kept


def open_session(
    target: str | os.PathLike[str],
    embedding: Embeddings,
    name: str,
    consistency: Consistency,
    log_key: str | bytes | None,
    params: dict[str, Any],
) -> tuple[StoreSession, dict[str, Any]]:
    """Open (or create) the document set `name` at `target` as a write session.

    Args:
        target: A SQLite path or a ``postgresql://`` URL.
        embedding: The embedding model (checked against the stored fingerprint).
        name: The document set.
        consistency: "strong" or "eventual".
        log_key: The change-log key (str or bytes), else the environment / key file.
        params: Given `VectorStoreParams` fields.

    Returns:
        (the session, the store's parameters as keyword arguments).
    """
    if consistency not in _CONSISTENCY:
        raise InvalidParameterError(f"consistency must be one of {_CONSISTENCY}")
    if not isinstance(name, str) or not name or "\0" in name or not encodable(name):
        raise InvalidParameterError("name must be a non-empty string of valid Unicode")
    if isinstance(log_key, str):
        log_key = log_key.encode("utf-8", "surrogatepass")
    VectorStoreParams.of(**params)  # refused before anything is created
    backend, key = open_backend(target, name, log_key)
    try:
        stored = _stored_params(backend, params)
        if (header := backend.read_header()) is not None and header.fingerprint is not None:
            ModelFingerprint(embedding).check(header.fingerprint, backend.describe())
        session = StoreSession(stored.new_index(), backend, key, _check_text, consistency)
    except BaseException:
        backend.close()
        raise
    return session, stored.model_dump()

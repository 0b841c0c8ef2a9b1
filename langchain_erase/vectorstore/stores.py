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

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_erase.errors import (
    EmbeddingModelMismatchError,
    InvalidParameterError,
    StateFileError,
)
from langchain_erase.inputs import encodable
from langchain_erase.replication.session import Consistency, StoreSession
from langchain_erase.storage import open_backend
from langchain_erase.storage.base import StorageBackend, StoreHeader
from langchain_erase.vectorstore.documents import parse_document
from langchain_erase.vectorstore.params import STORE_KIND, VectorStoreParams

__all__ = ["model_fingerprint", "open_session"]

#: Fixed texts whose embeddings identify an embedding model.
_PROBES = (
    "langchain-erase vector store fingerprint: the quick brown fox jumps over the lazy dog.",
    "Quel temps fait-il à Paris ? 3.14159 — ¿qué tal?",
)
#: Two models agree when every probe embedding has at least this cosine similarity.
_MIN_COSINE = 0.9999
_CONSISTENCY = ("strong", "eventual")


def model_fingerprint(embedding: Embeddings) -> dict[str, Any]:
    """Args:
        embedding: An embedding model.

    Returns:
        Its dimension and its embeddings of fixed probe texts (JSON-able)."""
    probes = np.asarray(embedding.embed_documents(list(_PROBES)), dtype=np.float64)
    return {"dimension": int(probes.shape[1]), "probes": probes.tolist()}


def _check_fingerprint(stored: dict[str, Any], embedding: Embeddings, where: str) -> None:
    mine = model_fingerprint(embedding)
    try:
        theirs = np.asarray(stored["probes"], dtype=np.float64)
        ours = np.asarray(mine["probes"], dtype=np.float64)
        same = theirs.shape == ours.shape and bool(
            np.all(
                np.sum(theirs * ours, axis=1)
                >= _MIN_COSINE * np.linalg.norm(theirs, axis=1) * np.linalg.norm(ours, axis=1)
            )
        )
    except (KeyError, TypeError, ValueError):
        raise StateFileError(f"{where} has an invalid model fingerprint") from None
    if not same:
        raise EmbeddingModelMismatchError(
            f"{where} was built with another embedding model (dimension "
            f"{stored.get('dimension')!r}, this one {mine['dimension']}, or other probe "
            "embeddings): open it with that model, or use another name"
        )


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
            _check_fingerprint(header.fingerprint, embedding, backend.describe())
        session = StoreSession(stored.new_index(), backend, key, _check_text, consistency)
    except BaseException:
        backend.close()
        raise
    return session, stored.model_dump()

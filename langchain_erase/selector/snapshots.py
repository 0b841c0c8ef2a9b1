"""Snapshots of a selector: `save_snapshot` writes one, `load_snapshot` restores and checks it.

The file format is `langchain_erase.storage.snapshot` (no pickle, mode 0600). The header
keeps the parameters (`SelectorParams` JSON), the state digest, for a store-backed
selector the set name and log position, and the embedding model's fingerprint
(``"fingerprint"``), so a snapshot loaded with another model of the same dimension is
refused with `EmbeddingModelMismatchError`. Snapshots written before the fingerprint was
recorded carry none: they load after a check of the model's dimension only (a warning is
logged; save them again to record one).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from langchain_erase.core.index import ERASEIndex
from langchain_erase.errors import EmbeddingModelMismatchError, StaleSnapshotError, StateFileError
from langchain_erase.inputs import parse_example
from langchain_erase.replication import MemorySession, Session
from langchain_erase.selector.fingerprint import ModelFingerprint
from langchain_erase.selector.params import SelectorParams
from langchain_erase.selector.stores import MemoryHandle, checked_path
from langchain_erase.storage.snapshot import Snapshot, read_snapshot, write_snapshot

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

__all__ = ["SnapshotMethods", "load_snapshot", "save_snapshot"]

logger = logging.getLogger("langchain_erase")


def save_snapshot(
    path: str | os.PathLike[str],
    params: SelectorParams,
    session: Session,
    fingerprint: ModelFingerprint,
) -> None:
    """Write the session's rows and header (call under the session's lock).

    Args:
        path: Destination file.
        params: The selector's parameters.
        session: Its session (read for rows, digest, set name and log position).
        fingerprint: The embedding model's fingerprint (recorded unless the set is empty).
    """
    index = session.index
    ids, texts, vectors = index.rows()
    matrix = index.projection_matrix
    store = session.store
    header = {
        "params": params.to_json(),
        "count": len(ids),
        "dimension": index.dimension,
        "state_digest": index.state_digest(),
        "store": None if store is None else {"set": store.name, "position": session.position},
        "fingerprint": fingerprint() if ids else None,
    }
    write_snapshot(
        Path(checked_path(path, "path")),
        Snapshot(
            header,
            ids,
            texts,
            vectors.reshape(len(ids), index.dimension or 0),
            matrix if matrix is not None else np.zeros((0, 0)),
        ),
    )


def load_snapshot(
    path: str | os.PathLike[str],
    fingerprint: ModelFingerprint,
    store: Session | None,
    similar_screen: bool = True,
) -> tuple[SelectorParams, ERASEIndex]:
    """Read, check and refit a snapshot.

    Args:
        path: The snapshot file.
        fingerprint: The fingerprint of the model it is loaded with.
        store: For a snapshot of a store-backed selector: the session of that store, open
            again (StaleSnapshotError without it, or if its log moved past the snapshot).
        similar_screen: The index's "similar" screen option.

    Returns:
        The parameters and the refitted index.

    Raises:
        StateFileError: Corrupted, truncated or foreign.
        EmbeddingModelMismatchError: Saved with another embedding model.
    """
    path = Path(checked_path(path, "path"))
    snapshot = read_snapshot(path)
    header = snapshot.header
    _check_origin(path, header.get("store"), store)
    try:
        params = SelectorParams.from_json(header["params"], str(path))
        index = params.new_index(similar_screen=similar_screen)
        if snapshot.ids:
            _check_model(path, header, fingerprint)
            index.load(snapshot.ids, snapshot.texts, snapshot.vectors, snapshot.projection)
            for text in snapshot.texts:
                parse_example(text)
    except (StateFileError, EmbeddingModelMismatchError):
        raise
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise StateFileError(f"{path} has invalid contents: {err}") from None
    if index.state_digest() != header.get("state_digest"):
        raise StateFileError(f"{path} failed its integrity check (state digest mismatch)")
    return params, index


def _check_origin(path: Path, origin: object, store: Session | None) -> None:
    """Refuse a store snapshot unless `store` is that store, at the snapshot's position."""
    if origin is None:
        return
    backend = None if store is None else store.store
    if store is None or backend is None:
        raise StaleSnapshotError(
            f"{path} was saved from a store; pass store= (the store opened again) "
            "so deletions made after the snapshot cannot come back"
        )
    with store.lock:
        position = store.sync()
    if not isinstance(origin, dict) or origin.get("set") != backend.name:
        raise StaleSnapshotError(f"{path} was saved from another example set")
    if origin.get("position") != position:
        raise StaleSnapshotError(
            f"{path} was saved at log position {origin.get('position')!r}; the store "
            f"is at {position}: its later changes (deletions) are not in the snapshot"
        )


def _check_model(path: Path, header: dict[str, Any], fingerprint: ModelFingerprint) -> None:
    """Refuse a snapshot saved with another embedding model."""
    recorded = header.get("fingerprint")
    if recorded is not None:
        if not isinstance(recorded, dict):
            raise StateFileError(f"{path} has an invalid model fingerprint")
        fingerprint.check(recorded, str(path))
        return
    logger.warning(
        "%s records no embedding-model fingerprint (saved by an older version): only the "
        "dimension is checked; save it again to record one",
        path,
    )
    mine = fingerprint()["dimension"]
    if header.get("dimension") != mine:
        raise EmbeddingModelMismatchError(
            f"{path} was saved with an embedding model of dimension "
            f"{header.get('dimension')!r}, this one has {mine}"
        )


class SnapshotMethods:
    """Mixin: a selector's `save` and `load`."""

    _params: SelectorParams
    _session: Session
    _fingerprint: ModelFingerprint
    #: The selector's `_setup` (sets every attribute; see `ERASEExampleSelector`).
    _setup: Callable[..., Any]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a snapshot (no pickle, mode 0600) that `load` restores and verifies.

        The snapshot records the embedding model's fingerprint; a store-backed selector's
        also records its set name and log position (see `load`).

        Args:
            path: Destination file.
        """
        with self._session.lock:
            self._session.read()
            save_snapshot(path, self._params, self._session, self._fingerprint)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        embeddings: Embeddings,
        *,
        store: SnapshotMethods | None = None,
    ) -> Self:
        """Restore a snapshot into an in-memory selector; StateFileError if it is corrupted
        or foreign, EmbeddingModelMismatchError if it was saved with another model.

        A snapshot saved from a store-backed selector knows the store's log position at
        that time. Deletions committed to the store later must not come back, so loading
        it needs `store=` (a selector `open`ed on that store and set): it is refused with
        `StaleSnapshotError` if the store's log has moved past the snapshot's position.
        A snapshot from before fingerprints were recorded is checked by dimension only.

        Args:
            path: The snapshot file.
            embeddings: The embedding model.
            store: The open store-backed selector to check a store snapshot against.

        Returns:
            The restored selector.
        """
        probe = ModelFingerprint(embeddings)
        params, index = load_snapshot(path, probe, None if store is None else store._session)
        selector = cls.__new__(cls)
        selector._setup(embeddings, params, MemoryHandle(), MemorySession(index), fingerprint=probe)
        return selector

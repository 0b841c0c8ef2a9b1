"""`IndexView`: a read-only look at a selector's state, for tests, benchmarks and audits.

``selector.view()`` returns one; every property reads the state under the selector's lock
at the time it is read (catching up with the store first under strong consistency). It
never changes anything, and it never shows an example's content beyond what the selector
itself returns (`stored_vector` is the example's own stored embedding).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt

from langchain_erase.core.index import ERASEIndex, IndexRows
from langchain_erase.replication import Consistency, Session
from langchain_erase.storage.base import StorageBackend

__all__ = ["IndexView", "SessionViews"]


class IndexView:
    """Read-only views of one selector's state (see the module docstring)."""

    def __init__(self, session: Session) -> None:
        """Args:
        session: The selector's session."""
        self._session = session

    def _index(self) -> ERASEIndex:
        self._session.read()
        return self._session.index

    @property
    def iterations(self) -> int:
        """Lloyd iterations T of the current clustering."""
        with self._session.lock:
            return self._index().iterations

    @property
    def seed(self) -> int:
        """The seed of every random choice."""
        return self._session.index.params.seed

    @property
    def buckets(self) -> list[list[str]]:
        """Member ids of each cluster (cluster order, ids sorted)."""
        with self._session.lock:
            return self._index().buckets()

    @property
    def log_position(self) -> int | None:
        """The last change-log position applied (None without a store)."""
        return self._session.position

    @property
    def similar_screen(self) -> bool:
        """Whether the "similar" mode's float16 screen is on (a process option)."""
        return self._session.index.similar_screen

    @property
    def screen_nbytes(self) -> int:
        """Bytes of the "similar" screens (C++ memory that tracemalloc does not see)."""
        with self._session.lock:
            return self._index().screen_nbytes()

    def stored_vector(self, example_id: str) -> npt.NDArray[np.float32]:
        """Args:
            example_id: A present id (KeyError otherwise).

        Returns:
            A copy of its stored, L2-normalized float32 vector."""
        with self._session.lock:
            return self._index().vector(example_id)

    def rows(self) -> IndexRows:
        """Returns:
        (ids sorted, canonical JSON texts, float32 (n, D) stored vectors)."""
        with self._session.lock:
            return self._index().rows()

    def vector_memory(self) -> bytes:
        """Returns:
        A copy of the in-memory vector blocks (a deleted vector's bytes must be gone)."""
        with self._session.lock:
            return self._index().vector_memory()

    def log_id(self, example_id: str) -> str:
        """Args:
            example_id: An id.

        Returns:
            How log lines name it: 16 hex digits of its keyed hash (the change log's
            HMAC with a store, a per-selector random key without)."""
        return self._session.key_of(example_id)[:16]

    def remembers(self, example_id: str) -> bool:
        """Args:
            example_id: An id.

        Returns:
            True if any in-memory structure still holds the id."""
        with self._session.lock:
            return self._index().remembers(example_id)


class SessionViews:
    """Mixin: a selector's store, log and state views, read from its `_session`."""

    _session: Session

    @property
    def store(self) -> StorageBackend | None:
        """The storage backend behind an `open`ed selector, else None."""
        return self._session.store

    @property
    def consistency(self) -> Consistency:
        """ "strong" or "eventual" (see `open`)."""
        return self._session.consistency

    @property
    def log_position(self) -> int | None:
        """The last change-log position applied to memory (None without a store)."""
        return self._session.position

    @property
    def consistency_repairs(self) -> int:
        """How often catching up found a digest mismatch and refitted from the rows."""
        return self._session.repairs

    def deletion_log(self) -> list[dict[str, Any]]:
        """The store's audit log of deletions, oldest first; never example content.

        Returns:
            One dict per deletion with the change-record fields (position, op, id_key: the
            keyed HMAC of the id, digest_after, time, refit, reason, iteration, seconds);
            an empty list without a store.
        """
        with self._session.lock:
            return [dataclasses.asdict(change) for change in self._session.changes()]

    def sync(self) -> int | None:
        """Catch up with the store now.

        Returns:
            The log position after catching up (None without a store).
        """
        with self._session.lock:
            return self._session.sync()

    def close(self) -> None:
        """Release the store; later reads and changes raise StateFileError (no-op without
        one)."""
        self._session.close()

    def view(self) -> IndexView:
        """A read-only view of the state, for tests, benchmarks and audits.

        Returns:
            The view (clustering iterations, seed, memberships, stored vectors, memory).
        """
        with self._session.lock:
            self._session.read()
            return IndexView(self._session)

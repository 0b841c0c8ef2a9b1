"""Write sessions: the one path by which an example set's index (and its store) change.

A `Session` owns one `ERASEIndex` and the lock that serializes it; adapters (the example
selector, the vector store) hold a session and never change the index themselves. Two
twins with one interface, so an adapter never asks whether a store is attached:

- `MemorySession(index)`: the index alone (a null store: no log, nothing to follow).
- `StoreSession(index, backend, log_key, check_text, consistency)`: the index kept equal to
  a storage backend's committed rows through a `Replica`; every write is one transaction.

API (every call under ``with session.lock`` where several must be atomic together):

- ``session.lock``: the re-entrant lock that serializes the index (the follower takes it).
- ``session.index``: the index, for reads only (`pick`, `text`, `state_digest`, ...).
- ``session.read()``: call before every read: "strong" catches up with the store's committed
  log; "eventual" only checks for a fork; a closed store session raises StateFileError.
- ``with session.write() as writer:``: ``writer.add(ids, texts, vectors, fingerprint)`` and
  ``writer.delete(ids)`` change the index and record the change in the store's transaction,
  which commits when the block exits (on an exception, nothing is committed and the index is
  restored from the store). They return `Addition` / `Deletion` records (with log positions
  in a store) and refuse bad input with typed errors before any change.
- ``session.erasure()``: after a committed deletion, whether the store erased the deleted
  bytes; never raises (a failing status query is reported in `ErasureStatus.error`).
- ``session.position`` / ``session.repairs``: last applied log position (None in memory) and
  how often catching up refitted after a digest mismatch.
- ``session.store`` / ``session.describe()``: the backend and its path or URL (None in memory).
- ``session.changes()``: the store's deletion records, oldest first (empty in memory).
- ``session.sync()``: catch up now, whatever the consistency; the position after it.
- ``session.key_of(id)``: how logs name an id (keyed hash; a per-session random key in memory).
- ``session.close()``: stops the follower and releases the store; later reads and writes
  raise StateFileError (a memory session stays usable: it holds nothing to release).
"""

from __future__ import annotations

import logging
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from langchain_erase.core.index import ERASEIndex
from langchain_erase.errors import StateFileError
from langchain_erase.replication.changes import Addition, Deletion, apply_add, apply_delete
from langchain_erase.replication.follower import FOLLOW_INTERVAL_S, Follower
from langchain_erase.replication.replica import Replica
from langchain_erase.storage.base import ChangeRecord, ErasureStatus, StorageBackend, id_key

__all__ = [
    "Addition",
    "Consistency",
    "Deletion",
    "ErasureStatus",
    "Fingerprint",
    "MemorySession",
    "Session",
    "StoreSession",
    "Writer",
]

logger = logging.getLogger("langchain_erase")

Consistency = Literal["strong", "eventual"]
#: Returns the embedding-model fingerprint (JSON-able), computed on first use.
Fingerprint = Callable[[], dict[str, Any]]


class Writer:
    """Applies changes inside one `Session.write()` block (made by the session)."""

    def __init__(
        self,
        index: ERASEIndex,
        add: Callable[
            [Sequence[str], Sequence[str], npt.NDArray[np.float32], Fingerprint | None], Addition
        ],
        delete: Callable[[Sequence[str]], list[Deletion]],
    ) -> None:
        """Args:
        index: The session's index.
        add: Applies (and, in a store, records) an add.
        delete: Applies (and, in a store, records) deletions."""
        self._index = index
        self._add = add
        self._delete = delete

    @property
    def index(self) -> ERASEIndex:
        """The session's index, caught up with the store (read it, never change it)."""
        return self._index

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        vectors: npt.NDArray[np.float32],
        fingerprint: Fingerprint | None = None,
    ) -> Addition:
        """Add rows exactly (DuplicateExampleError / EmbeddingError before any change).

        Args:
            ids: New ids.
            texts: Their canonical JSON texts.
            vectors: Their float32 (n, D) unit rows.
            fingerprint: The embedding model's fingerprint, recorded by a store with the
                first add to an empty set (called only then).

        Returns:
            What the add did.
        """
        return self._add(ids, texts, vectors, fingerprint)

    def delete(self, ids: Sequence[str]) -> list[Deletion]:
        """Delete ids exactly (UnknownExampleError / DuplicateExampleError before any change).

        Args:
            ids: Present ids, each at most once.

        Returns:
            One record per id, in order.
        """
        return self._delete(ids)


class Session(ABC):
    """One owner of an example set's index: reads, writes, the store behind it."""

    def __init__(self, index: ERASEIndex) -> None:
        """Args:
        index: The index this session owns from now on."""
        self._index = index
        self._lock = threading.RLock()

    @property
    def index(self) -> ERASEIndex:
        """The index, for reads (call `read` first, under `lock`)."""
        return self._index

    @property
    def lock(self) -> threading.RLock:
        """The re-entrant lock serializing the index."""
        return self._lock

    @abstractmethod
    def read(self) -> None:
        """Prepare a read: catch up (strong) or check for a fork (eventual)."""

    @abstractmethod
    def write(self) -> AbstractContextManager[Writer]:
        """A context manager yielding a `Writer`; committed when the block exits."""

    @abstractmethod
    def erasure(self) -> ErasureStatus:
        """Returns:
        The erasure status after a committed deletion (never raises)."""

    @abstractmethod
    def key_of(self, example_id: str) -> str:
        """Args:
            example_id: An id.

        Returns:
            The keyed hash by which logs name it."""

    @property
    @abstractmethod
    def store(self) -> StorageBackend | None:
        """The storage backend, None in memory."""

    @property
    @abstractmethod
    def position(self) -> int | None:
        """The last change-log position applied (None in memory)."""

    @property
    @abstractmethod
    def repairs(self) -> int:
        """How often catching up refitted from the rows after a digest mismatch."""

    @property
    @abstractmethod
    def consistency(self) -> Consistency:
        """ "strong" or "eventual"."""

    @abstractmethod
    def describe(self) -> str | None:
        """Returns:
        The store's path or URL (never a password), None in memory."""

    @abstractmethod
    def changes(self) -> list[ChangeRecord]:
        """Returns:
        The store's deletion records, oldest first (empty in memory)."""

    @abstractmethod
    def sync(self) -> int | None:
        """Catch up with the store now, whatever the consistency.

        Returns:
            The log position after catching up (None in memory).
        """

    @abstractmethod
    def close(self) -> None:
        """Stop following and release the store; later reads and writes raise."""


class MemorySession(Session):
    """The index alone: no store, no log, no follower; `close` is a no-op."""

    def __init__(self, index: ERASEIndex) -> None:
        """Args:
        index: The index this session owns."""
        super().__init__(index)
        # Logs name ids by a keyed hash under a key of this session, so lines of one
        # process can be matched, but ids not guessed.
        self._log_key = secrets.token_bytes(32)

    def read(self) -> None:
        """Nothing to catch up with."""

    @contextmanager
    def write(self) -> Iterator[Writer]:
        """Yields a writer that changes the index (no transaction to commit)."""
        index = self._index
        yield Writer(
            index,
            lambda ids, texts, vectors, _: apply_add(index, ids, texts, vectors),
            partial(apply_delete, index),
        )

    def erasure(self) -> ErasureStatus:
        """Returns:
        Complete: memory holds nothing that outlives a deletion."""
        return ErasureStatus(pending=False)

    def key_of(self, example_id: str) -> str:
        """Args:
            example_id: An id.

        Returns:
            Its HMAC under this session's random key."""
        return id_key(self._log_key, example_id)

    @property
    def store(self) -> None:
        """None: no store."""
        return None

    @property
    def position(self) -> None:
        """None: no log."""
        return None

    @property
    def repairs(self) -> int:
        """0: nothing to repair."""
        return 0

    @property
    def consistency(self) -> Consistency:
        """ "strong": reads see every returned write."""
        return "strong"

    def describe(self) -> None:
        """Returns:
        None: no store."""
        return None

    def changes(self) -> list[ChangeRecord]:
        """Returns:
        An empty list: no log."""
        return []

    def sync(self) -> None:
        """Nothing to catch up with."""

    def close(self) -> None:
        """Nothing to release."""


class StoreSession(Session):
    """The index kept equal to a store's committed state (through a `Replica`)."""

    def __init__(
        self,
        index: ERASEIndex,
        backend: StorageBackend,
        log_key: bytes,
        check_text: Callable[[str], object],
        consistency: Consistency = "strong",
        follow_interval: float = FOLLOW_INTERVAL_S,
    ) -> None:
        """Load the set's rows into `index`; "eventual" also starts the follower thread.

        Args:
            index: An empty index with the set's parameters (this session owns it now).
            backend: The open backend (the set exists); closed by `close`.
            log_key: Key of the HMAC of ids in the change log.
            check_text: Raises ValueError for a stored text the adapter would not accept.
            consistency: "strong" (every read catches up) or "eventual" (a follower does).
            follow_interval: The follower's polling interval in seconds.
        """
        super().__init__(index)
        self._replica = Replica(index, backend, log_key, check_text)
        self._consistency: Consistency = consistency
        self._closed = False
        self._catch_up = self._replica.refresh if consistency == "strong" else self._checked
        self._follower = (
            Follower(backend, self._lock, self._follow, follow_interval)
            if consistency == "eventual"
            else None
        )

    def _checked(self) -> None:
        self._replica.check_process()

    def _follow(self) -> None:
        if not self._closed:
            self._replica.refresh()

    def _check_open(self) -> None:
        if self._closed:
            raise StateFileError(f"store {self.describe()} is closed")

    def read(self) -> None:
        """Catch up (strong) or check for a fork (eventual); StateFileError once closed."""
        self._check_open()
        self._catch_up()

    @contextmanager
    def write(self) -> Iterator[Writer]:
        """Yields a writer inside one store transaction (caught up on entry), committed
        when the block exits; StateFileError once closed."""
        self._check_open()
        with self._replica.write() as txn:
            yield Writer(
                self._replica.index,
                partial(self._replica.add, txn),
                partial(self._replica.delete, txn),
            )

    def erasure(self) -> ErasureStatus:
        """Returns:
        Whether the backend's erasure step is complete; a failing status query
        (StoreUnavailableError, ...) is reported, never raised."""
        try:
            return self._replica.backend.erasure_status()
        except Exception as err:  # the deletion is committed: report, never raise
            logger.warning("%s: erasure status unknown: %s", self.describe(), err)
            return ErasureStatus(pending=True, error=f"{type(err).__name__}: {err}")

    def key_of(self, example_id: str) -> str:
        """Args:
            example_id: An id.

        Returns:
            Its keyed hash as the change log keeps it."""
        return self._replica.key_of(example_id)

    @property
    def store(self) -> StorageBackend:
        """The backend."""
        return self._replica.backend

    @property
    def position(self) -> int:
        """The last change-log position applied to the index."""
        return self._replica.position

    @property
    def repairs(self) -> int:
        """How often catching up refitted after a digest mismatch."""
        return self._replica.repairs

    @property
    def consistency(self) -> Consistency:
        """ "strong" or "eventual"."""
        return self._consistency

    def describe(self) -> str:
        """Returns:
        The backend's path or URL (never a password)."""
        return self._replica.backend.describe()

    def changes(self) -> list[ChangeRecord]:
        """Returns:
        The store's deletion records, oldest first (StateFileError once closed)."""
        self._check_open()
        return [c for c in self._replica.backend.changes_after(0) if c.op == "delete"]

    def sync(self) -> int:
        """Catch up now, whatever the consistency.

        Returns:
            The log position after catching up.
        """
        self._check_open()
        self._replica.refresh()
        return self._replica.position

    def close(self) -> None:
        """Stop the follower, then release the backend (idempotent)."""
        if self._follower is not None:
            self._follower.stop()
        with self._lock:
            if not self._closed:
                self._closed = True
                self._replica.backend.close()

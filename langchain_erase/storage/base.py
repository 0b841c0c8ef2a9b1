"""Records and the backend protocol shared by every storage backend.

Storage takes and returns rows and change records; it knows nothing about clustering and
imports nothing above this package (only the standard library, numpy and `errors`). The
selector keeps the in-memory ERASE state and follows the store's append-only change log:
the store is the source of truth.

Record layout:

- `ExampleRow`: one example as stored: its id, canonical JSON text and its stored vector
  (little-endian float32, already L2-normalized).
- `StoreHeader`: what is written once when an example set is created or first populated:
  parameters, dimension, projection matrix and the embedding-model fingerprint.
- `ChangeRecord`: one row of the append-only change log. It never holds example content:
  the id appears only as a keyed HMAC (`id_key`), whose key is not stored in the database.
  A batch writes one record per example at consecutive positions; every record of a batch
  carries the `digest_after` of the state after the whole batch.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "ChangeNotifier",
    "ChangeRecord",
    "ErasureStatus",
    "ExampleRow",
    "LogReader",
    "StorageBackend",
    "StoreHeader",
    "WriteTxn",
    "id_key",
]

ChangeOp = Literal["add", "delete"]


def id_key(log_key: bytes, example_id: str) -> str:
    """What the change log keeps of an id: hex HMAC-SHA256 under a key the store never holds.

    Args:
        log_key: The secret log key (shared by every process of one store).
        example_id: The example id.

    Returns:
        64 hex digits. Without the key it cannot be reversed by hashing candidate ids.
    """
    return hmac.new(
        log_key, example_id.encode("utf-8", "surrogatepass"), hashlib.sha256
    ).hexdigest()


@dataclass(frozen=True)
class ExampleRow:
    """One stored example.

    Attributes:
        id: The example id.
        example: Canonical JSON text of the example (sorted keys, compact separators).
        vector: Little-endian float32 bytes of the L2-normalized stored vector.
    """

    id: str
    example: str
    vector: bytes


@dataclass(frozen=True)
class StoreHeader:
    """Static description of one example set.

    Attributes:
        params: JSON-able selector parameters (k, epsilon, seed, gamma, max_iter, p,
            selection, input_keys, example_keys).
        dimension: Embedding dimension; None until the first example.
        projection: Little-endian float64 (dimension x p) projection matrix; set with the
            first add, cleared when the set becomes empty.
        fingerprint: Embedding-model fingerprint (dimension and probe embeddings), JSON-able;
            None until the first add.
    """

    params: dict[str, Any]
    dimension: int | None
    projection: bytes | None
    fingerprint: dict[str, Any] | None


@dataclass(frozen=True)
class ChangeRecord:
    """One row of the append-only change log (never example content).

    Attributes:
        position: 1, 2, 3, ... per example set; strictly increasing without gaps.
        op: "add" or "delete".
        id_key: Hex HMAC-SHA256 of the example id under the log key (see `id_key`).
        digest_after: `state_digest()` after this change (after the whole batch for
            every record of a batch).
        time: Unix seconds of the commit.
        refit: Whether the change forced a refit.
        reason: "none", "init_seed", "center_moved" or "stop_rule".
        iteration: Lloyd iteration (or seeding round) that forced the refit, if any.
        seconds: Wall time of the in-memory change.
    """

    position: int
    op: ChangeOp
    id_key: str
    digest_after: str
    time: float
    refit: bool
    reason: str
    iteration: int | None
    seconds: float


@dataclass(frozen=True)
class ErasureStatus:
    """Where the erasure of committed deletions stands (never an exception: a deletion is
    done at COMMIT, and what happens afterwards is reported, not raised).

    Attributes:
        pending: True if some committed deletion (or rolled back insert) of the set is not
            erased from the store's files yet, or if the store could not be asked.
        error: Why the last attempt to erase or to ask failed (server unreachable, no
            privilege, ...), or None.
    """

    pending: bool
    error: str | None = None


class LogReader(Protocol):
    """Reads of the change log, alike on a backend and inside its write transaction."""

    def head(self) -> tuple[int, str]:
        """Returns:
        (committed head position, digest at head); (0, "") for an empty log."""
        ...

    def changes_after(self, position: int) -> list[ChangeRecord]:
        """Args:
            position: Last position the caller has applied.

        Returns:
            Change records with a larger position, oldest first."""
        ...

    def rows_added_after(self, position: int) -> list[ExampleRow]:
        """Args:
            position: Last position the caller has applied.

        Returns:
            Rows still present whose add record has a larger position, ordered by id."""
        ...

    def log_after(self, position: int) -> tuple[list[ChangeRecord], list[ExampleRow]]:
        """`changes_after` and `rows_added_after` read in one consistent snapshot.

        Two separate reads can straddle another process's commit (a row added in the range
        and deleted between them is then in neither view), so catching up reads both at once.

        Args:
            position: Last position the caller has applied.

        Returns:
            (change records after `position`, rows still present added after `position`).
        """
        ...


class WriteTxn(LogReader, Protocol):
    """One open write transaction holding the example set's write lock.

    Reads inside it see the latest committed state, so a writer first catches up with
    `changes_after` / `rows_added_after`, then applies its change in memory, then writes.
    """

    def set_static(
        self, dimension: int, projection: bytes, fingerprint: dict[str, Any] | None
    ) -> None:
        """Record dimension, projection and fingerprint with the first add.

        Args:
            dimension: Embedding dimension.
            projection: Little-endian float64 (dimension x p) matrix bytes.
            fingerprint: Embedding-model fingerprint, or None to keep the stored one.
        """
        ...

    def clear_static(self) -> None:
        """Forget dimension, projection and fingerprint (the set became empty).

        An emptied set accepts another embedding model, as a fresh set would.
        """
        ...

    def insert(self, rows: Sequence[ExampleRow], changes: Sequence[ChangeRecord]) -> None:
        """Insert rows and their add records (one record per row, same order).

        Args:
            rows: New rows.
            changes: Their change records; each row's `added_at` is its record's position.
        """
        ...

    def delete(self, ids: Sequence[str], changes: Sequence[ChangeRecord]) -> None:
        """Delete rows and append their delete records.

        Args:
            ids: Ids of present rows.
            changes: One delete record per id, same order.
        """
        ...


class StorageBackend(LogReader, Protocol):
    """A durable example set: rows, header and change log (structural protocol).

    Its `head` is cheap: a follower polls it.
    """

    name: str

    def describe(self) -> str:
        """Returns:
        The path or URL (without password), for messages."""
        ...

    def read_header(self) -> StoreHeader | None:
        """Returns:
        The stored header, or None if the set does not exist yet."""
        ...

    def create(self, header: StoreHeader) -> StoreHeader:
        """Create the set if absent (race-safe).

        Args:
            header: Header of the new set.

        Returns:
            The stored header: `header`, or the one another process created first (the
            caller compares parameters and refuses a mismatch).
        """
        ...

    def changed(self) -> bool:
        """Returns:
        True if anything may have been committed since the last call (a backend
        without a cheap check always returns True)."""
        ...

    def snapshot(self) -> tuple[list[ExampleRow], int, str]:
        """Returns:
        All rows ordered by id, head position and head digest, read in one
        consistent transaction."""
        ...

    def write(self) -> AbstractContextManager[WriteTxn]:
        """One write transaction holding the set's write lock.

        Commits on normal exit, rolls back on an exception (and erases what the rollback
        left where the backend can). After a commit with deletions, the erasure step runs
        (SQLite: in this call; PostgreSQL: in the store's eraser thread). Once COMMIT has
        returned, leaving the context never raises.

        Returns:
            A context manager yielding the `WriteTxn`.
        """
        ...

    def erasure_pending(self) -> bool:
        """Returns:
        True if a committed deletion's erasure step has not completed yet, or if the
        store cannot be asked (never raises for an unreachable store: see
        `erasure_status` for the reason)."""
        ...

    def erasure_status(self) -> ErasureStatus:
        """Returns:
        Whether an erasure is pending, and why the last attempt failed (never raises
        for an unreachable store)."""
        ...

    def complete_erasure(self, timeout: float) -> bool:
        """Run the erasure step now, in the calling thread, until nothing is pending or
        `timeout` seconds have passed.

        Args:
            timeout: Most seconds to spend.

        Returns:
            True if no erasure is pending afterwards.
        """
        ...

    def close(self) -> None:
        """Release connections; later calls raise StateFileError."""
        ...


@runtime_checkable
class ChangeNotifier(Protocol):
    """Optional capability of a backend: block until another process commits a change
    (PostgreSQL: LISTEN/NOTIFY). The eventual-consistency follower waits on it (outside the
    selector's lock, so it must use its own connection); backends without it are polled."""

    def wait_for_change(self, timeout: float) -> bool:
        """Args:
            timeout: Most seconds to wait.

        Returns:
            True if something may have been committed since the previous call (also on
            the first call, which subscribes)."""
        ...

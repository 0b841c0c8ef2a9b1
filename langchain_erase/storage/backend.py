"""The base every storage backend subclasses: the read protocol once, dialect hooks abstract.

`StorageBackend` (in `storage.base`) is the contract the replication layer types against;
`BackendBase` implements its reads once, so both backends read the change log the same way:
the hash chain is verified on every read, positions must be consecutive, and a missing set
raises `StateFileError` everywhere (never reads as empty). A backend supplies, as abstract
methods (a backend missing one cannot be instantiated):

- `_read_in(what, fn, consistent)`: run `fn(conn)` in one consistent read transaction (or one
  statement), mapping driver errors to langchain_erase errors;
- `_head_in(conn)`: (position, digest, chain) of the set's head, raising for a missing set;
- `_rows_added_in(conn, position)`: present rows added after `position`, ordered by id;
- the rest of `StorageBackend`: `describe`, `read_header`, `create`, `changed`, `write`,
  `erasure_status`, `complete_erasure`, `close`;

and its SQL text as a class attribute `dialect` (`storage.dialect.Dialect`). Backends know
nothing of the classes that use them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, ClassVar, TypeVar

from langchain_erase.storage.base import (
    ChangeRecord,
    ErasureStatus,
    ExampleRow,
    StoreHeader,
    WriteTxn,
)
from langchain_erase.storage.dialect import Dialect
from langchain_erase.storage.log import verified_changes

__all__ = ["BackendBase"]

T = TypeVar("T")


class BackendBase(ABC):
    """One example set in one database (implements `base.StorageBackend`).

    Attributes:
        name: The example set.
        dialect: The backend's SQL text for the shared statements.
    """

    name: str
    dialect: ClassVar[Dialect]

    # -- the read protocol, once --------------------------------------------------------

    def head(self) -> tuple[int, str]:
        """Returns:
        (committed head position, digest at head); (0, "") for an empty log.

        Raises:
            StateFileError: The set does not exist."""
        return self._read_in("head", lambda conn: self._head_in(conn)[:2], consistent=False)

    def changes_after(self, position: int) -> list[ChangeRecord]:
        """Args:
            position: Last applied position.

        Returns:
            Later change records, oldest first (the hash chain is checked)."""
        return self._read_in("changes_after", lambda conn: self._changes_in(conn, position))

    def rows_added_after(self, position: int) -> list[ExampleRow]:
        """Args:
            position: Last applied position.

        Returns:
            Present rows added after `position`, ordered by id."""
        return self._read_in("rows_added_after", lambda conn: self._rows_added_in(conn, position))

    def log_after(self, position: int) -> tuple[list[ChangeRecord], list[ExampleRow]]:
        """`LogReader.log_after`: both reads in one read transaction.

        Args:
            position: Last applied position.

        Returns:
            (`changes_after(position)`, `rows_added_after(position)`)."""
        return self._read_in(
            "log_after",
            lambda conn: (self._changes_in(conn, position), self._rows_added_in(conn, position)),
        )

    def snapshot(self) -> tuple[list[ExampleRow], int, str]:
        """Returns:
        All rows ordered by id, head position and digest, from one read transaction."""

        def query(conn: Any) -> tuple[list[ExampleRow], int, str]:
            position, digest, _ = self._head_in(conn)
            return self._rows_added_in(conn, -1), position, digest

        return self._read_in("snapshot", query)

    def erasure_pending(self) -> bool:
        """Returns:
        `erasure_status().pending`."""
        return self.erasure_status().pending

    def _changes_in(self, conn: Any, position: int) -> list[ChangeRecord]:
        """The verified records after `position`, read on `conn`."""
        raw = conn.execute(self.dialect.changes_after, (self.name, position)).fetchall()
        head, _, chain = self._head_in(conn)
        return verified_changes(self.describe(), position, raw, (head, chain))

    # -- the dialect's part -------------------------------------------------------------

    @abstractmethod
    def _read_in(self, what: str, fn: Callable[[Any], T], *, consistent: bool = True) -> T:
        """Run `fn` on a connection: in one consistent read-only transaction, or with
        `consistent=False` (a single statement) without one; `what` names the call in
        error messages."""

    @abstractmethod
    def _head_in(self, conn: Any) -> tuple[int, str, str]:
        """(head position, head digest, head chain) of the set, read on `conn`; raises
        StateFileError for a missing or damaged set."""

    @abstractmethod
    def _rows_added_in(self, conn: Any, position: int) -> list[ExampleRow]:
        """Present rows added after `position`, ordered by id, read on `conn`; raises
        StateFileError for a missing set."""

    @abstractmethod
    def describe(self) -> str:
        """Returns:
        The store and the set, for messages."""

    @abstractmethod
    def read_header(self) -> StoreHeader | None:
        """Returns:
        The set's header, or None if the set does not exist yet."""

    @abstractmethod
    def create(self, header: StoreHeader) -> StoreHeader:
        """Create the set unless another process did first.

        Args:
            header: Header of a new, empty set.

        Returns:
            The stored header."""

    @abstractmethod
    def changed(self) -> bool:
        """Returns:
        True if another connection may have committed since the last call."""

    @abstractmethod
    def write(self) -> AbstractContextManager[WriteTxn]:
        """Returns:
        A context manager around one write transaction (commit on normal exit)."""

    @abstractmethod
    def erasure_status(self) -> ErasureStatus:
        """Returns:
        Whether an erasure is pending, and why."""

    @abstractmethod
    def complete_erasure(self, timeout: float) -> bool:
        """Args:
            timeout: Most seconds to spend.

        Returns:
            True if no erasure is pending afterwards."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; later calls raise."""

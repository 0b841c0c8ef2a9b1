"""The write transaction every backend shares: consecutive positions, the hash chain, the head.

A backend opens its transaction (SQLite ``BEGIN IMMEDIATE``; PostgreSQL a ``FOR UPDATE`` lock
on the set's row), reads the head (position, digest, chain) and hands it to its subclass of
`ChainedWriteTxn`. The base checks that each batch of change records continues the head
without gaps, appends the records with their chain values (`log.chained_rows`), keeps the new
head in memory for reads inside the transaction, and writes it to the set's row in
`finish()`, just before COMMIT. A subclass stores and deletes rows, the part where the
dialects differ (SQLite keeps plain rows; PostgreSQL seals them and queues their erasure).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from langchain_erase.errors import UnknownExampleError
from langchain_erase.storage.base import ChangeRecord, ExampleRow
from langchain_erase.storage.dialect import Dialect
from langchain_erase.storage.log import chained_rows, check_continues, verified_changes

__all__ = ["ChainedWriteTxn", "canonical"]


def canonical(value: Any) -> str:
    """Args:
        value: A JSON-able value.

    Returns:
        Its canonical JSON text (sorted keys, compact), as headers are stored."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class ChainedWriteTxn(ABC):
    """One open write transaction of one set (implements `base.WriteTxn`).

    Attributes:
        name: The example set.
        wrote: True once anything was written (a refused commit may leave residue).
        deleted: True once rows were deleted (their erasure follows the commit).
        last_change: The last record appended, or None.
    """

    def __init__(
        self, conn: Any, name: str, where: str, dialect: Dialect, head: tuple[int, str, str]
    ) -> None:
        """Args:
        conn: The driver connection, inside the open transaction.
        name: The example set.
        where: The store's description, for messages.
        dialect: The backend's SQL text.
        head: (position, digest, chain) at the head, read inside this transaction."""
        self._conn = conn
        self.name = name
        self._where = where
        self._sql = dialect
        self._head_now = (head[0], head[1])
        self._chain = head[2]
        self.wrote = False
        self.deleted = False
        self.last_change: ChangeRecord | None = None

    # -- LogReader ----------------------------------------------------------------------

    def head(self) -> tuple[int, str]:
        """Returns:
        (head position, head digest) including this transaction's own writes."""
        return self._head_now

    def changes_after(self, position: int) -> list[ChangeRecord]:
        """`LogReader.changes_after` (same argument and result), inside this transaction."""
        raw = self._conn.execute(self._sql.changes_after, (self.name, position)).fetchall()
        return verified_changes(self._where, position, raw, (self._head_now[0], self._chain))

    @abstractmethod
    def rows_added_after(self, position: int) -> list[ExampleRow]:
        """`LogReader.rows_added_after` (same argument and result), inside this transaction."""

    def log_after(self, position: int) -> tuple[list[ChangeRecord], list[ExampleRow]]:
        """`LogReader.log_after` (same argument and result), inside this transaction."""
        return self.changes_after(position), self.rows_added_after(position)

    # -- WriteTxn -----------------------------------------------------------------------

    def set_static(
        self, dimension: int, projection: bytes, fingerprint: dict[str, Any] | None
    ) -> None:
        """`WriteTxn.set_static` (same arguments): a None fingerprint keeps the stored one."""
        self.wrote = True
        text = None if fingerprint is None else canonical(fingerprint)
        self._conn.execute(self._sql.set_static, (dimension, projection, text, self.name))

    def clear_static(self) -> None:
        """`WriteTxn.clear_static`: forget dimension, projection and fingerprint."""
        self.wrote = True
        self._conn.execute(self._sql.clear_static, (self.name,))

    def insert(self, rows: Sequence[ExampleRow], changes: Sequence[ChangeRecord]) -> None:
        """Insert rows and append their add records.

        Args:
            rows: New rows.
            changes: Their add records, continuing the log head without gaps.

        Raises:
            InvalidParameterError: The records do not continue the head, one per row.
            DuplicateExampleError: An id is present already (the message does not name it).
        """
        check_continues(self._head_now[0], changes, len(rows))
        self.wrote = True
        self._insert_rows(rows, changes)
        self._append(changes)

    def delete(self, ids: Sequence[str], changes: Sequence[ChangeRecord]) -> None:
        """Delete present rows and append their delete records.

        Args:
            ids: Ids of present rows, each once.
            changes: One delete record per id, continuing the log head without gaps.

        Raises:
            InvalidParameterError: The records do not continue the head, one per id.
            UnknownExampleError: An id is absent or repeated (the caller rolls back; the
                message does not name it).
        """
        check_continues(self._head_now[0], changes, len(ids))
        self.wrote = True
        if len(set(ids)) != len(ids) or self._delete_rows(ids) != len(ids):
            raise UnknownExampleError("an id to delete is not in the store")
        self.deleted = True
        self._append(changes)

    def finish(self) -> None:
        """Write the new head to the set's row (called just before COMMIT)."""
        if self.last_change is not None:
            position, digest = self._head_now
            self._conn.execute(self._sql.write_head, (position, digest, self._chain, self.name))

    # -- the dialect's part -------------------------------------------------------------

    @abstractmethod
    def _insert_rows(self, rows: Sequence[ExampleRow], changes: Sequence[ChangeRecord]) -> None:
        """Store `rows`, each added at its record's position (DuplicateExampleError if an id
        is present)."""

    @abstractmethod
    def _delete_rows(self, ids: Sequence[str]) -> int:
        """Delete the rows of `ids` (distinct); returns how many were present."""

    @abstractmethod
    def _execute_many(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        """Run `statement` once per parameter tuple of `rows`."""

    def _append(self, changes: Sequence[ChangeRecord]) -> None:
        rows, self._chain = chained_rows(self.name, self._chain, changes)
        self._execute_many(self._sql.insert_change, rows)
        if changes:
            self.last_change = changes[-1]
            self._head_now = (changes[-1].position, changes[-1].digest_after)

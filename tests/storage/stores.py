"""One handle per storage backend for the conformance suite.

A `StoreUnderTest` names an example set in a real database (a SQLite file, a PostgreSQL
database on the test server) and offers what the tests need beyond the `StorageBackend`
protocol, each written once per dialect in plain SQL: damaging rows and change records,
dropping the set, holding an old snapshot open in another session, and scanning the files
of the database for bytes that must have been erased. Tests reach the backends only through
the protocol (and `ERASEExampleSelector.open`), never through private attributes.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
from pg_helpers import key_salts
from store_helpers import PARAMS, fake

from langchain_erase.example_selectors import ERASEExampleSelector
from langchain_erase.storage import open_backend
from langchain_erase.storage.base import (
    ChangeRecord,
    ExampleRow,
    StorageBackend,
    StoreHeader,
    id_key,
)

__all__ = [
    "HEADER",
    "LOG_KEY",
    "Op",
    "PostgresStore",
    "SqliteStore",
    "StoreUnderTest",
    "add",
    "delete",
    "records",
    "wait_for_erasure",
]

#: The operation of a change record.
Op = Literal["add", "delete"]
#: Change-log key shared by every backend and selector of the suite.
LOG_KEY = b"conformance-log-key"
HEADER = StoreHeader(params={"k": 2, "seed": 0}, dimension=None, projection=None, fingerprint=None)


def records(head: int, op: Op, ids: Sequence[str]) -> list[ChangeRecord]:
    """Change records continuing the log `head` without gaps, one per id.

    Every field varies with the position, so a record read back can only equal the one
    written (and an edit of any field is visible)."""
    return [
        ChangeRecord(
            position=head + n,
            op=op,
            id_key=id_key(LOG_KEY, example_id),
            digest_after=f"digest-{head + len(ids)}",
            time=1_700_000_000.25 + head + n,
            refit=n % 2 == 0,
            reason=("none", "init_seed", "center_moved", "stop_rule")[n % 4],
            iteration=None if n % 3 == 0 else n,
            seconds=0.125 * n,
        )
        for n, example_id in enumerate(ids, start=1)
    ]


def add(backend: StorageBackend, rows: Sequence[ExampleRow]) -> list[ChangeRecord]:
    """Insert `rows` in one committed write; returns the records written."""
    with backend.write() as txn:
        changes = records(txn.head()[0], "add", [r.id for r in rows])
        txn.insert(rows, changes)
    return changes


def delete(backend: StorageBackend, ids: Sequence[str]) -> list[ChangeRecord]:
    """Delete `ids` in one committed write; returns the records written."""
    with backend.write() as txn:
        changes = records(txn.head()[0], "delete", ids)
        txn.delete(ids, changes)
    return changes


def wait_for_erasure(backend: StorageBackend, seconds: float = 15.0) -> bool:
    """Poll until `erasure_pending()` is False: a backend may erase after the call that
    deleted returns (its receipt then says so), within a bound it documents.

    Returns:
        False if the erasure is still pending after `seconds`."""
    deadline = time.monotonic() + seconds
    while backend.erasure_pending():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass(frozen=True)
class Dialect:
    """Where a backend keeps an example set, for damaging it with plain SQL.

    Attributes:
        sets: Table of set headers and log heads (key column ``name``).
        examples: Table of rows.
        changes: Table of change records.
        set_column: Column of `examples` and `changes` naming the set.
        mark: Parameter placeholder of the driver.
    """

    sets: str
    examples: str
    changes: str
    set_column: str
    mark: str


class StoreUnderTest(ABC):
    """One example set of one backend's database, with a fresh name per test."""

    kind: str
    dialect: Dialect

    def __init__(self, target: str) -> None:
        self.target = target
        self.name = self.fresh_name()

    @staticmethod
    def fresh_name() -> str:
        """A set name no other test uses."""
        return f"set-{uuid.uuid4().hex[:12]}"

    def open(self, name: str | None = None) -> StorageBackend:
        """A new backend on the set (another connection, as another process would hold).

        Args:
            name: Another set of the same database.

        Returns:
            The open backend (the set is not created)."""
        backend, _ = open_backend(self.target, name or self.name, LOG_KEY)
        return backend

    def selector(self, name: str | None = None, **params: Any) -> ERASEExampleSelector:
        """`ERASEExampleSelector.open` on the set with the suite's parameters.

        Args:
            name: Another set of the same database.
            **params: Overrides of `store_helpers.PARAMS`.

        Returns:
            The selector (closed by the caller)."""
        return ERASEExampleSelector.open(
            self.target, fake(), name=name or self.name, log_key=LOG_KEY, **{**PARAMS, **params}
        )

    # -- damage through plain SQL --------------------------------------------------------
    @abstractmethod
    def execute(self, statement: str, params: Sequence[Any]) -> int:
        """Run one statement in its own committed transaction (placeholders: `Dialect.mark`).

        Returns:
            The number of rows it changed."""

    def _run(self, template: str, params: Sequence[Any], *, required: bool = True) -> None:
        d = self.dialect
        statement = template.format(
            sets=d.sets, examples=d.examples, changes=d.changes, set=d.set_column, p=d.mark
        )
        changed = self.execute(statement, params)
        assert changed >= 1 or not required, f"the damage changed nothing: {statement}"

    def update_change(self, position: int, column: str, value: Any) -> None:
        """Overwrite one field of the change record at `position`."""
        self._run(
            f"UPDATE {{changes}} SET {column} = {{p}} WHERE {{set}} = {{p}} AND position = {{p}}",
            (value, self.name, position),
        )

    def delete_change(self, position: int) -> None:
        """Remove the change record at `position` from the log."""
        self._run(
            "DELETE FROM {changes} WHERE {set} = {p} AND position = {p}", (self.name, position)
        )

    def update_row(self, example_id: str, column: str, value: Any) -> None:
        """Overwrite one column (``example`` or ``vector``) of a stored row."""
        self._run(
            f"UPDATE {{examples}} SET {column} = {{p}} WHERE {{set}} = {{p}} AND id = {{p}}",
            (value, self.name, example_id),
        )

    def delete_row(self, example_id: str) -> None:
        """Remove a stored row without a change record."""
        self._run("DELETE FROM {examples} WHERE {set} = {p} AND id = {p}", (self.name, example_id))

    def drop_set(self) -> None:
        """Remove the set whole (rows, log and header), as an administrator could."""
        for table in ("{examples}", "{changes}"):
            self._run(f"DELETE FROM {table} WHERE {{set}} = {{p}}", (self.name,), required=False)
        self._run("DELETE FROM {sets} WHERE name = {p}", (self.name,))

    # -- other sessions and files --------------------------------------------------------
    def erasable(self, ids: Sequence[str], content: Sequence[bytes]) -> list[bytes]:
        """The bytes that let the content of `ids` be read back from the files: call it
        while the rows are present; erasure must remove every one of them.

        Args:
            ids: Present example ids.
            content: Their content markers (id, text, vector bytes).

        Returns:
            `content` itself where rows are stored in the clear (SQLite)."""
        del ids
        return list(content)

    @abstractmethod
    def hold_snapshot(self) -> AbstractContextManager[None]:
        """A read transaction in another session, open while the context lasts, whose
        snapshot still sees rows deleted meanwhile (it holds their erasure back)."""

    @abstractmethod
    def residue(self, wanted: Iterable[bytes]) -> list[bytes]:
        """Which of `wanted` are in any file of the database (after the backend's
        buffers reach the files), in the order given."""


class SqliteStore(StoreUnderTest):
    """A set in a SQLite file of its own directory (the directory holds only its files)."""

    kind = "sqlite"
    dialect = Dialect("sets", "examples", "changes", "set_name", "?")

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path

    def execute(self, statement: str, params: Sequence[Any]) -> int:
        with closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
            return conn.execute(statement, tuple(params)).rowcount

    @contextmanager
    def hold_snapshot(self) -> Iterator[None]:
        with closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM examples").fetchone()
            try:
                yield
            finally:
                conn.execute("COMMIT")

    def residue(self, wanted: Iterable[bytes]) -> list[bytes]:
        raw = b"".join(f.read_bytes() for f in sorted(self.path.parent.iterdir()) if f.is_file())
        return [m for m in wanted if m in raw]


class PostgresStore(StoreUnderTest):
    """A set in the suite's database on the private PostgreSQL server."""

    kind = "postgres"
    dialect = Dialect("erase_sets", "erase_rows", "erase_changes", "name", "%s")

    def __init__(self, url: str, data_dir: Path) -> None:
        super().__init__(url)
        self.data_dir = data_dir

    def execute(self, statement: str, params: Sequence[Any]) -> int:
        with psycopg.connect(self.target, autocommit=True) as conn:
            return conn.execute(statement, tuple(params)).rowcount

    # Rows are sealed (AES-GCM) and keyed by the id's HMAC: damage goes to the ciphertext.
    def update_row(self, example_id: str, column: str, value: Any) -> None:
        """Overwrite bytes of the sealed row where the backend keeps `column` (``example``
        or ``vector``) with `value`: what an edit of the stored row can do."""
        raw = value.encode() if isinstance(value, str) else bytes(value)
        start = 40 if column == "example" else 60
        self._run(
            "UPDATE {examples} SET sealed = overlay(sealed placing {p} from {p}) "
            "WHERE {set} = {p} AND idh = {p}",
            (raw, start, self.name, id_key(LOG_KEY, example_id)),
        )

    def delete_row(self, example_id: str) -> None:
        """Remove a stored row without a change record."""
        self._run(
            "DELETE FROM {examples} WHERE {set} = {p} AND idh = {p}",
            (self.name, id_key(LOG_KEY, example_id)),
        )

    def drop_set(self) -> None:
        """Remove the set whole (rows, keys' listing, queue, log and header)."""
        for table in ("{examples}", "{changes}", "erase_key_buckets", "erase_erasures"):
            self._run(f"DELETE FROM {table} WHERE {{set}} = {{p}}", (self.name,), required=False)
        self._run("DELETE FROM {sets} WHERE name = {p}", (self.name,))

    def erasable(self, ids: Sequence[str], content: Sequence[bytes]) -> list[bytes]:
        """The key rows' salts of `ids`: content is never stored in the clear (checked
        here), and without its salt a sealed row cannot be decrypted."""
        assert self.residue(content) == [], "content reached a file in the clear"
        return key_salts(self.target, self.name, LOG_KEY, ids)

    @contextmanager
    def hold_snapshot(self) -> Iterator[None]:
        with psycopg.connect(self.target) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.execute("SELECT count(*) FROM erase_sets").fetchone()
            try:
                yield
            finally:
                conn.rollback()

    def residue(self, wanted: Iterable[bytes]) -> list[bytes]:
        """Scans the heap, TOAST, index and free-space files of this database and the shared
        catalogs (WAL is out of scope: see docs/reliability.md)."""
        with psycopg.connect(self.target, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            row = conn.execute(
                "SELECT oid FROM pg_database WHERE datname = current_database()"
            ).fetchone()
        assert row is not None
        found: set[bytes] = set()
        wanted = list(wanted)
        for folder in (self.data_dir / "base" / str(row[0]), self.data_dir / "global"):
            for path in folder.rglob("*"):
                if path.is_file():
                    data = path.read_bytes()
                    found.update(m for m in wanted if m in data)
        return [m for m in wanted if m in found]

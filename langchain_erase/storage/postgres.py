"""PostgreSQL backend: one database holds many example sets, shared by any number of hosts.

Tables: see `storage.pg_schema`. Rows are stored sealed (AES-GCM under per-row keys,
`storage.sealing`), keyed by the id's HMAC under the log key: the database never holds an
id, a text or a vector in the clear, and a deletion is erased by rewriting one small key
table, off the request path (`storage.pg_erasure`).

A write is one transaction holding the set's head row lock (``SELECT ... FOR UPDATE``): a
deletion deletes its rows, appends its change records (hash-chained), queues its erasure and
commits. Nothing on that path waits for another session's snapshot or rewrites anything, so
its cost does not grow with the set. What PostgreSQL still holds after an erasure (WAL,
replicas, backups) is listed in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from langchain_erase.errors import ForkedProcessError, StateFileError, StoreUnavailableError
from langchain_erase.storage.backend import BackendBase
from langchain_erase.storage.base import ErasureStatus, ExampleRow, StoreHeader
from langchain_erase.storage.pg_connect import (
    CONNECT_TIMEOUT_S,
    describe_url,
    first_line,
    probe,
    unavailable,
)
from langchain_erase.storage.pg_erasure import Eraser
from langchain_erase.storage.pg_rows import PG_DIALECT, PostgresWriteTxn, SetReader, channel_name
from langchain_erase.storage.pg_schema import (
    KEY_BUCKETS,
    SCHEMA_LOCK,
    SCHEMA_VERSION,
    foreign_schema_error,
    migrate,
)
from langchain_erase.storage.txn import canonical

__all__ = [
    "SCHEMA_VERSION",
    "PostgresBackend",
    "channel_name",
    "describe_url",
    "open_postgres_backend",
]

T = TypeVar("T")

#: SQLSTATE of a write refused by a read-only session (hot standby, default_transaction_read_only).
_READ_ONLY = "25006"


class PostgresBackend(SetReader, BackendBase):
    """A `StorageBackend` on a PostgreSQL database (one example set of it).

    Every call checks that it runs in the process that opened the backend (a forked child
    gets `ForkedProcessError`) and maps a lost server to `StoreUnavailableError` at once
    (a direct connection probes the server before a new pool is opened); read-only calls
    are retried once on a fresh connection first (a server restart is transparent).
    """

    dialect = PG_DIALECT

    def __init__(
        self, url: str, name: str, log_key: bytes, *, pool_size: int = 4, timeout: float = 10.0
    ) -> None:
        """Connect, and create or migrate the schema.

        Args:
            url: ``postgresql://`` URL (libpq syntax, password allowed).
            name: The example set.
            log_key: The store's log key: keys the id HMACs and the rows' encryption.
            pool_size: Most connections this process keeps open.
            timeout: Seconds to wait for a pooled connection while the server is up.

        Raises:
            StoreUnavailableError: The server cannot be reached, or refuses the role,
                password or database (named in the message, within about 2 s).
            StateFileError: Foreign ``erase_*`` tables, or a schema from a newer version.
        """
        super().__init__(name, log_key, describe_url(url, name))
        self._url = url
        self._pid = os.getpid()
        self._closed = False
        self._listener: psycopg.Connection[Any] | None = None
        self._pool_size = max(1, pool_size)
        self._timeout = timeout
        self._pool_lock = threading.Lock()
        self._known_buckets: set[int] = set()
        self._pool: ConnectionPool | None = None
        self._eraser = Eraser(name, self._eraser_connection)
        with self._errors("open"), self._connection() as (_, conn):
            migrate(conn)
        self._eraser.kick()  # a process that died may have left erasures queued

    # -- plumbing -----------------------------------------------------------------------

    def _check(self) -> None:
        if os.getpid() != self._pid:
            raise ForkedProcessError(
                f"{self.describe()} was opened in process {self._pid}; this is a forked "
                f"child ({os.getpid()}). Open the selector again in each worker, after fork."
            )
        if self._closed:
            raise StateFileError(f"{self.describe()} is closed")

    def _new_pool(self) -> ConnectionPool:
        return ConnectionPool(
            self._url,
            min_size=1,
            max_size=self._pool_size,
            kwargs={
                "autocommit": True,
                "prepare_threshold": None,
                "connect_timeout": CONNECT_TIMEOUT_S,
            },
            open=False,
            timeout=self._timeout,
            name=f"langchain-erase:{self.name}",
        )

    @contextmanager
    def _connection(self) -> Iterator[tuple[ConnectionPool, psycopg.Connection[Any]]]:
        """A pooled connection. Without a pool (at open, after a failure) a direct
        connection first probes the server, failing at once with its reason while it is
        down, where a pool would wait and retry; then a fresh pool is opened."""
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                if self._closed:
                    raise StateFileError(f"{self.describe()} is closed")
                if self._pool is None:
                    probe(self._url)
                    fresh = self._new_pool()
                    try:
                        fresh.open(wait=True, timeout=self._timeout)
                    except BaseException:
                        fresh.close()
                        raise
                    self._pool = fresh
                pool = self._pool
        with pool.connection() as conn:
            yield pool, conn

    @contextmanager
    def _eraser_connection(self) -> Iterator[psycopg.Connection[Any]]:
        pool = self._pool
        try:
            with self._connection() as (pool, conn):
                yield conn
        except psycopg.OperationalError:
            self._drop_pool(pool)
            raise

    def _drop_pool(self, failed: ConnectionPool | None) -> None:
        """Forget a pool whose connection failed (after a server restart every pooled
        connection is dead); the next call probes the server and opens a new one."""
        with self._pool_lock:
            if failed is None or self._pool is not failed:
                return
            self._pool = None
        # Closing waits for the old pool's threads: do it aside, not in the caller's call.
        threading.Thread(target=failed.close, name="erase-pool-close", daemon=True).start()

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Typed errors for everything but lost connections (which the callers handle)."""
        try:
            yield
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StateFileError(
                f"{self.describe()}: the role lacks a privilege ({first_line(exc)}); see the "
                "grants in docs/deploy.md"
            ) from None
        except psycopg.ProgrammingError as exc:  # DuplicateTable, UndefinedColumn, ...
            raise foreign_schema_error(self.describe(), exc) from None
        except psycopg.OperationalError as exc:
            raise unavailable(exc, what) from None
        except psycopg.Error as exc:
            if exc.sqlstate == _READ_ONLY:
                raise StoreUnavailableError(
                    f"{self.describe()}: the PostgreSQL session is read-only (a standby, or "
                    "default_transaction_read_only): writes need a primary"
                ) from None
            raise StateFileError(
                f"could not {what} the store {self.describe()}: {type(exc).__name__} "
                f"(SQLSTATE {exc.sqlstate})"
            ) from None

    def _read_in(
        self, what: str, fn: Callable[[psycopg.Connection[Any]], T], *, consistent: bool = True
    ) -> T:
        """Run `fn` (retried once after a lost connection): in one repeatable-read, read-only
        transaction, or with `consistent=False` (one statement) without a transaction."""
        self._check()
        for attempt in range(2):
            pool = self._pool
            try:
                with self._errors(what):
                    try:
                        with self._connection() as (pool, conn):
                            if not consistent:
                                return fn(conn)
                            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                            try:
                                result = fn(conn)
                            finally:
                                conn.execute("COMMIT")
                            return result
                    except psycopg.OperationalError:
                        self._drop_pool(pool)
                        if attempt:
                            raise
            except StoreUnavailableError:
                if attempt:
                    raise
                self._drop_pool(pool)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- StorageBackend -----------------------------------------------------------------

    def describe(self) -> str:
        """Returns:
        The server and database (never the password) and the set name."""
        return self._where

    def read_header(self) -> StoreHeader | None:
        """Returns:
        The stored header, or None if the set does not exist yet."""

        def query(conn: psycopg.Connection[Any]) -> StoreHeader | None:
            row = conn.execute(
                "SELECT params, dimension, projection, fingerprint, key_check FROM erase_sets "
                "WHERE name = %s",
                (self.name,),
            ).fetchone()
            if row is None:
                return None
            if row[4] is not None and row[4] != self._key_check:
                raise StateFileError(
                    f"{self.describe()} was written under another log key: every process of a "
                    "store must use the same one (its rows are encrypted under it)"
                )
            try:
                return StoreHeader(
                    params=json.loads(row[0]),
                    dimension=None if row[1] is None else int(row[1]),
                    projection=None if row[2] is None else bytes(row[2]),
                    fingerprint=None if row[3] is None else json.loads(row[3]),
                )
            except ValueError as exc:
                raise StateFileError(f"{self.describe()}: damaged header ({exc})") from None

        return self._read_in("read_header", query, consistent=False)

    def create(self, header: StoreHeader) -> StoreHeader:
        """Create the set if absent; race-safe.

        Args:
            header: Header of the new set.

        Returns:
            The stored header (another process's, if it created the set first).
        """
        self._check()
        pool = self._pool
        try:
            with self._errors("create"), self._connection() as (pool, conn), conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                conn.execute(
                    "INSERT INTO erase_sets (name, params, dimension, projection, fingerprint, "
                    "created_at, head_chain, key_buckets, key_check) "
                    "VALUES (%s, %s, %s, %s, %s, %s, '', %s, %s) ON CONFLICT (name) DO NOTHING",
                    (
                        self.name,
                        canonical(header.params),
                        header.dimension,
                        header.projection,
                        None if header.fingerprint is None else canonical(header.fingerprint),
                        time.time(),
                        KEY_BUCKETS,
                        self._key_check,
                    ),
                )
        except StoreUnavailableError:
            self._drop_pool(pool)
            raise
        stored = self.read_header()
        if stored is None:  # pragma: no cover - the row was committed just above
            raise StateFileError(f"{self.describe()}: the set vanished after creation")
        return stored

    def _head_in(self, conn: psycopg.Connection[Any]) -> tuple[int, str, str]:
        position, digest, chain, _ = self._head_row(conn)
        return position, digest, chain

    def _rows_added_in(self, conn: psycopg.Connection[Any], position: int) -> list[ExampleRow]:
        return self._rows_added_after(conn, position)

    def changed(self) -> bool:
        """Returns:
        Always True: PostgreSQL has no free local check that is safe across hosts, so a
        strong read asks `head()`."""
        self._check()
        return True

    @contextmanager
    def write(self) -> Iterator[PostgresWriteTxn]:
        """One transaction holding the set's head row lock (``SELECT ... FOR UPDATE``).

        Commits on normal exit and announces the new head on the set's channel; rolls back
        on an exception. After the commit it only wakes the eraser thread: once COMMIT has
        returned, nothing here raises.

        Returns:
            A context manager yielding the `PostgresWriteTxn`.

        Raises:
            StoreUnavailableError: The server was lost; nothing was committed, or (said in
                the message) the outcome of the commit is unknown; or the session is
                read-only.
            StateFileError: The set does not exist, or the server refused the write.
        """
        self._check()
        txn: PostgresWriteTxn | None = None
        committing = False
        pool = self._pool
        try:
            with self._errors("write"):
                try:
                    with self._connection() as (pool, conn), conn.transaction():
                        txn = PostgresWriteTxn(conn, self, self._known_buckets)
                        yield txn
                        txn.finish()
                        committing = True
                except psycopg.OperationalError as exc:
                    self._drop_pool(pool)
                    outcome = self._committed(txn) if committing and txn is not None else False
                    if outcome is not True:
                        raise self._write_failure(exc, outcome) from None
        except BaseException:
            if txn is not None and not committing and txn.inserted_buckets:
                self._queue_rollback_residue(txn.inserted_buckets - txn.created_buckets)
            raise
        if txn is not None:
            self._known_buckets.update(txn.created_buckets)
        self._eraser.kick()

    def _committed(self, txn: PostgresWriteTxn) -> bool | None:
        """After a connection lost during COMMIT: did the commit happen?

        Returns:
            True if its last change record is in the log exactly as written, False if the
            log does not hold it, None if the server cannot be asked.
        """
        last = txn.last_change
        if last is None:
            return False
        try:
            found = self._read_in("write", lambda conn: self._changes_in(conn, last.position - 1))
        except StoreUnavailableError:
            return None
        return bool(found) and found[0] == last

    def _write_failure(self, exc: BaseException, outcome: bool | None) -> StoreUnavailableError:
        if outcome is None:
            return StoreUnavailableError(
                "PostgreSQL store unavailable during commit: the outcome of this write is "
                "unknown (the server could not be asked); call sync() when it is back"
            )
        return unavailable(exc, "write (nothing was committed)")

    def _queue_rollback_residue(self, buckets: set[int]) -> None:
        """A rolled back transaction had inserted key rows: their dead tuples hold salts
        until the key tables are rewritten. Queue those rewrites (best effort: with the
        server gone the residue is what docs/reliability.md describes)."""
        if not buckets:
            return
        try:
            with self._connection() as (_, conn):
                conn.execute(
                    "INSERT INTO erase_erasures (name, bucket, idh, xid, queued_at) "
                    "SELECT %s, b, NULL, pg_current_xact_id(), %s FROM unnest(%s::int[]) AS b",
                    (self.name, time.time(), sorted(buckets)),
                )
        except (psycopg.Error, StoreUnavailableError, StateFileError):
            return
        self._eraser.kick()

    # -- erasure ------------------------------------------------------------------------

    def erasure_status(self) -> ErasureStatus:
        """Returns:
        Whether a committed deletion (or rolled back insert) of the set is not erased
        yet (the queue is in the database, so any process's pending erasure shows), and
        the reason the last attempt failed. Never raises for an unreachable server
        (pending, with the reason)."""
        try:
            pending = self._read_in("erasure_status", self._eraser.pending, consistent=False)
        except StoreUnavailableError as exc:
            return ErasureStatus(pending=True, error=str(exc))
        return ErasureStatus(pending=pending, error=self._eraser.error if pending else None)

    @property
    def erasure_rewrites(self) -> int:
        """Key tables this process has rewritten to erase deletions (for monitoring)."""
        return self._eraser.rewrites

    def complete_erasure(self, timeout: float = 30.0) -> bool:
        """Erase what is queued now, in this thread, waiting at most `timeout` seconds.

        Args:
            timeout: Most seconds to spend (snapshots older than a deletion, readers of a
                key table or an unreachable server make it wait and retry).

        Returns:
            True if nothing is pending afterwards.
        """
        self._check()
        return self._eraser.complete(timeout)

    # -- notifications and closing ---------------------------------------------------------

    def wait_for_change(self, timeout: float) -> bool:
        """Block until a commit to this set is announced (LISTEN/NOTIFY), or `timeout`.

        The first call (and the first after a lost connection) subscribes and returns True
        at once: changes committed before the subscription are only seen by catching up.

        Args:
            timeout: Most seconds to wait.

        Returns:
            True if something may have been committed since the previous call.
        """
        self._check()
        if self._listener is None or self._listener.closed:
            try:
                self._listener = psycopg.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                )
                self._listener.execute(
                    sql.SQL("LISTEN {}").format(sql.Identifier(channel_name(self.name)))
                )
            except psycopg.OperationalError as exc:
                self._listener = None
                raise unavailable(exc, "wait_for_change") from None
            return True
        try:
            got = any(True for _ in self._listener.notifies(timeout=timeout, stop_after=1))
            while got and any(True for _ in self._listener.notifies(timeout=0, stop_after=1)):
                pass  # drain: one catch-up covers every queued announcement
            return got
        except psycopg.OperationalError:
            self._listener.close()
            self._listener = None
            return True

    def close(self) -> None:
        """Stop the eraser thread and release the connections (in a forked child only
        forget them: closing would end the parent's sessions). Later calls raise
        `StateFileError`. What is still queued is erased by the next process that opens
        the set (or writes to it)."""
        if self._closed:
            return
        if os.getpid() != self._pid:
            self._closed = True
            return
        self._eraser.close()
        self._closed = True
        if self._listener is not None:
            self._listener.close()
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def open_postgres_backend(url: str, name: str, log_key: bytes) -> PostgresBackend:
    """Open (creating the schema if needed) the example set `name` of a PostgreSQL database.

    Args:
        url: ``postgresql://`` URL.
        name: The example set.
        log_key: The store's log key.

    Returns:
        The backend.
    """
    return PostgresBackend(url, name, log_key)

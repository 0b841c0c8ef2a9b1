"""PostgreSQL backend: one database holds many example sets, shared by any number of hosts.

Layout (created on first open, versioned in ``erase_schema_version``):

- ``erase_sets``: one row per example set (``name``): parameters, dimension, projection,
  model fingerprint, the committed log head (position and digest) and two erasure
  counters. Its row is the set's write lock (``SELECT ... FOR UPDATE``).
- ``erase_examples``: rows (id, canonical JSON text, float32 vector bytes, ``added_at``),
  list-partitioned by ``name``: one partition per set, so the erasure step of one set
  rewrites only that set's rows.
- ``erase_changes``: the append-only change log (keyed HMAC of the id, never content).

Erasure: PostgreSQL never overwrites a row in place. A deleted (or rolled back) row stays
in its heap page, TOAST chunks and index entries until the relation is rewritten; a plain
``VACUUM`` only marks the space free and leaves the bytes (measured: 15 of 67 deleted
texts still on disk after ``VACUUM``, 0 after ``VACUUM FULL``). So the erasure step is
``VACUUM FULL`` of the set's partition after every commit that deleted rows and after every
rollback that had inserted rows. Column statistics are disabled on the content columns so
that ``ANALYZE`` never copies sampled values into ``pg_statistic``. What PostgreSQL still
holds afterwards (WAL, replicas, backups) is listed in docs/reliability.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from langchain_erase.errors import (
    DuplicateExampleError,
    ForkedProcessError,
    InvalidExampleError,
    InvalidParameterError,
    StateFileError,
    StoreUnavailableError,
    UnknownExampleError,
)
from langchain_erase.storage.base import ChangeRecord, ExampleRow, StoreHeader

__all__ = [
    "SCHEMA_VERSION",
    "PostgresBackend",
    "channel_name",
    "describe_url",
    "open_postgres_backend",
    "partition_name",
]

T = TypeVar("T")

#: Schema version this code writes; a database with a larger version is refused.
SCHEMA_VERSION = 1

# Key of the transaction-scoped advisory lock that serializes schema creation/migration.
_SCHEMA_LOCK = 0x45524153  # "ERAS"

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE erase_sets (
            name text PRIMARY KEY,
            params text NOT NULL,
            dimension integer,
            projection bytea,
            fingerprint text,
            head_position bigint NOT NULL DEFAULT 0,
            head_digest text NOT NULL DEFAULT '',
            erase_needed bigint NOT NULL DEFAULT 0,
            erased bigint NOT NULL DEFAULT 0,
            last_delete_xid xid8,
            created_at double precision NOT NULL)""",
        """CREATE TABLE erase_examples (
            name text NOT NULL,
            id text NOT NULL,
            example text NOT NULL,
            vector bytea NOT NULL,
            added_at bigint NOT NULL,
            PRIMARY KEY (name, id)) PARTITION BY LIST (name)""",
        "CREATE INDEX erase_examples_added_at ON erase_examples (name, added_at)",
        """CREATE TABLE erase_changes (
            name text NOT NULL REFERENCES erase_sets (name),
            position bigint NOT NULL,
            op text NOT NULL CHECK (op IN ('add', 'delete')),
            id_key text NOT NULL,
            digest_after text NOT NULL,
            time double precision NOT NULL,
            refit boolean NOT NULL,
            reason text NOT NULL,
            iteration integer,
            seconds double precision NOT NULL,
            PRIMARY KEY (name, position))""",
    ),
}

# Content columns whose values ANALYZE must never sample into pg_statistic.
_CONTENT_COLUMNS = ("id", "example", "vector")

# How long the erasure step waits for readers to release the partition before it gives up
# (the deletion is committed; erasure_pending() then says so and the next write retries).
_ERASE_LOCK_TIMEOUT_MS = 10_000

# How long the erasure step waits for transactions whose snapshot still sees the deleted rows
# (a long report, pg_dump) before it leaves the erasure pending for the next write.
_HORIZON_WAIT_S = 2.0

_CHANGE_COLUMNS = "position, op, id_key, digest_after, time, refit, reason, iteration, seconds"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _name_hash(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def partition_name(name: str) -> str:
    """Args:
        name: An example-set name.

    Returns:
        The name of the set's partition of ``erase_examples`` (a hash: any set name is
        safe, and identifiers stay under PostgreSQL's 63-byte limit)."""
    return "erase_examples_" + _name_hash(name)


def channel_name(name: str) -> str:
    """Args:
        name: An example-set name.

    Returns:
        The LISTEN/NOTIFY channel on which every commit to the set is announced."""
    return "erase_" + _name_hash(name)


def describe_url(url: str, name: str) -> str:
    """Args:
        url: A PostgreSQL URL (possibly with a password).
        name: The example set.

    Returns:
        ``postgresql://user@host:port/db (set 'name')``: never the password or other options."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return f"PostgreSQL store (set {name!r})"
    where = f"{info.get('user', '')}@{info.get('host', '')}"
    if info.get("port"):
        where += f":{info['port']}"
    return f"postgresql://{where}/{info.get('dbname', '')} (set {name!r})"


def _unavailable(exc: BaseException, what: str) -> StoreUnavailableError:
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return StoreUnavailableError(f"PostgreSQL store unavailable during {what}: {first_line}")


def _change(row: tuple[Any, ...]) -> ChangeRecord:
    position, op, key, digest, at, refit, reason, iteration, seconds = row
    return ChangeRecord(
        position=int(position),
        op=op,
        id_key=key,
        digest_after=digest,
        time=float(at),
        refit=bool(refit),
        reason=reason,
        iteration=None if iteration is None else int(iteration),
        seconds=float(seconds),
    )


def _check_consecutive(head: int, changes: Sequence[ChangeRecord], count: int) -> None:
    if len(changes) != count:
        raise InvalidParameterError("one change record per row is required")
    for offset, change in enumerate(changes, start=1):
        if change.position != head + offset:
            raise InvalidParameterError(
                f"change positions must continue the log head {head} without gaps"
            )


@contextmanager
def _content_errors() -> Iterator[None]:
    """Typed errors for statements carrying ids or texts: PostgreSQL's messages quote the
    offending values (an id may be an email address), so none of them is passed on."""
    try:
        yield
    except psycopg.IntegrityError:
        raise DuplicateExampleError("an example id is already in the store") from None
    except (psycopg.DataError, UnicodeEncodeError):
        raise InvalidExampleError(
            "an id or example cannot be stored in PostgreSQL (NUL character or invalid UTF-8)"
        ) from None


class _Reader:
    """Queries shared by the backend (fresh connection) and a write transaction."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _head(self, conn: psycopg.Connection[Any], lock: bool = False) -> tuple[int, str] | None:
        query = "SELECT head_position, head_digest FROM erase_sets WHERE name = %s"
        row = conn.execute(query + (" FOR UPDATE" if lock else ""), (self.name,)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def _changes_after(self, conn: psycopg.Connection[Any], position: int) -> list[ChangeRecord]:
        rows = conn.execute(
            f"SELECT {_CHANGE_COLUMNS} FROM erase_changes WHERE name = %s AND position > %s "
            "ORDER BY position",
            (self.name, position),
        ).fetchall()
        return [_change(row) for row in rows]

    def _rows_added_after(self, conn: psycopg.Connection[Any], position: int) -> list[ExampleRow]:
        with conn.cursor(binary=True) as cur:
            cur.execute(
                "SELECT id, example, vector FROM erase_examples WHERE name = %s "
                'AND added_at > %s ORDER BY id COLLATE "C"',
                (self.name, position),
            )
            return [ExampleRow(row[0], row[1], bytes(row[2])) for row in cur.fetchall()]


class PostgresWriteTxn(_Reader):
    """One open write transaction holding the set's head row lock (see `WriteTxn`)."""

    def __init__(self, conn: psycopg.Connection[Any], name: str, head: tuple[int, str]) -> None:
        super().__init__(name)
        self._conn = conn
        self._head_now = head
        self.inserted = False
        self.deleted = False
        self.last_change: ChangeRecord | None = None

    def head(self) -> tuple[int, str]:
        """Returns:
        (head position, head digest) including this transaction's own writes."""
        return self._head_now

    def changes_after(self, position: int) -> list[ChangeRecord]:
        """`LogReader.changes_after` (same argument and result)."""
        return self._changes_after(self._conn, position)

    def rows_added_after(self, position: int) -> list[ExampleRow]:
        """`LogReader.rows_added_after` (same argument and result)."""
        return self._rows_added_after(self._conn, position)

    def log_after(self, position: int) -> tuple[list[ChangeRecord], list[ExampleRow]]:
        """`LogReader.log_after` (same argument and result): inside this transaction."""
        return self.changes_after(position), self.rows_added_after(position)

    def set_static(
        self, dimension: int, projection: bytes, fingerprint: dict[str, Any] | None
    ) -> None:
        """`WriteTxn.set_static` (same arguments): the fingerprint column keeps its value
        where `fingerprint` is None."""
        self._conn.execute(
            "UPDATE erase_sets SET dimension = %s, projection = %s, "
            "fingerprint = COALESCE(%s, fingerprint) WHERE name = %s",
            (
                dimension,
                projection,
                None if fingerprint is None else _canonical(fingerprint),
                self.name,
            ),
        )

    def clear_static(self) -> None:
        """Forget dimension, projection and fingerprint (the set became empty): an emptied
        set accepts another embedding model, as a fresh one would."""
        self._conn.execute(
            "UPDATE erase_sets SET dimension = NULL, projection = NULL, fingerprint = NULL "
            "WHERE name = %s",
            (self.name,),
        )

    def insert(self, rows: Sequence[ExampleRow], changes: Sequence[ChangeRecord]) -> None:
        """Insert rows and their add records (one record per row, same order).

        Args:
            rows: New rows.
            changes: Their add records, continuing the log head without gaps.
        """
        _check_consecutive(self._head_now[0], changes, len(rows))
        self.inserted = True
        with _content_errors(), self._conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO erase_examples (name, id, example, vector, added_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                [
                    (self.name, row.id, row.example, row.vector, change.position)
                    for row, change in zip(rows, changes, strict=True)
                ],
            )
        self._append(changes)

    def delete(self, ids: Sequence[str], changes: Sequence[ChangeRecord]) -> None:
        """Delete present rows and append their delete records.

        Args:
            ids: Ids of present rows.
            changes: One delete record per id, continuing the log head without gaps.

        Raises:
            UnknownExampleError: An id is not present (nothing is deleted; the message
                does not name it).
        """
        _check_consecutive(self._head_now[0], changes, len(ids))
        with _content_errors():
            cur = self._conn.execute(
                "DELETE FROM erase_examples WHERE name = %s AND id = ANY(%s)",
                (self.name, list(ids)),
            )
        self.deleted = True
        if cur.rowcount != len(set(ids)) or len(set(ids)) != len(ids):
            raise UnknownExampleError("an id to delete is not in the store")
        self._append(changes)

    def _append(self, changes: Sequence[ChangeRecord]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO erase_changes (name, {_CHANGE_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        self.name,
                        c.position,
                        c.op,
                        c.id_key,
                        c.digest_after,
                        c.time,
                        c.refit,
                        c.reason,
                        c.iteration,
                        c.seconds,
                    )
                    for c in changes
                ],
            )
        if changes:
            self.last_change = changes[-1]
            self._head_now = (changes[-1].position, changes[-1].digest_after)

    def finish(self) -> None:
        """Move the head (and the erasure counter after deletions) and announce the commit."""
        self._conn.execute(
            "UPDATE erase_sets SET head_position = %s, head_digest = %s, "
            "erase_needed = erase_needed + %s, last_delete_xid = CASE WHEN %s "
            "THEN pg_current_xact_id() ELSE last_delete_xid END WHERE name = %s",
            (self._head_now[0], self._head_now[1], int(self.deleted), self.deleted, self.name),
        )
        self._conn.execute(
            "SELECT pg_notify(%s, %s)", (channel_name(self.name), str(self._head_now[0]))
        )


class PostgresBackend(_Reader):
    """A `StorageBackend` on a PostgreSQL database (one example set of it).

    Every call checks that it runs in the process that opened the backend (a forked child
    gets `ForkedProcessError`), and maps a lost server to `StoreUnavailableError`; read-only
    calls are retried once on a fresh connection first (a server restart is transparent).
    """

    def __init__(self, url: str, name: str, *, pool_size: int = 4, timeout: float = 10.0) -> None:
        """Connect, and create or migrate the schema.

        Args:
            url: ``postgresql://`` URL (libpq syntax, password allowed).
            name: The example set.
            pool_size: Most connections this process keeps open.
            timeout: Seconds to wait for a connection before `StoreUnavailableError`.

        Raises:
            StoreUnavailableError: The server cannot be reached.
            StateFileError: The schema is from a newer version of this package.
        """
        super().__init__(name)
        self._url = url
        self._pid = os.getpid()
        self._closed = False
        self._listener: psycopg.Connection[Any] | None = None
        self._pool_size = max(1, pool_size)
        self._timeout = timeout
        self._pool_lock = threading.Lock()
        pool = self._new_pool()
        self._pool: ConnectionPool | None = pool
        try:
            pool.open(wait=True, timeout=timeout)
            with pool.connection() as conn:
                _migrate(conn)
        except psycopg.OperationalError as exc:
            pool.close()
            raise _unavailable(exc, "open") from None
        except BaseException:
            pool.close()
            raise

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
            # No server-side prepared statements: a generic plan would lock every
            # partition, so one set's erasure step would block readers of all sets.
            kwargs={"autocommit": True, "prepare_threshold": None},
            open=False,
            timeout=self._timeout,
            name=f"langchain-erase:{self.name}",
        )

    @contextmanager
    def _connection(self) -> Iterator[tuple[ConnectionPool, psycopg.Connection[Any]]]:
        """A pooled connection. After a failure the pool was dropped: a direct connection
        first probes the server (failing at once while it is down, where a pool would wait
        and back off), then a fresh pool is opened."""
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                if self._closed:
                    raise StateFileError(f"{self.describe()} is closed")
                if self._pool is None:
                    psycopg.connect(self._url, connect_timeout=max(2, int(self._timeout))).close()
                    fresh = self._new_pool()
                    fresh.open(wait=True, timeout=self._timeout)
                    self._pool = fresh
                pool = self._pool
        with pool.connection() as conn:
            yield pool, conn

    def _drop_pool(self, failed: ConnectionPool | None) -> None:
        """Forget a pool whose connection failed (after a server restart every pooled
        connection is dead); the next call probes the server and opens a new one."""
        with self._pool_lock:
            if failed is None or self._pool is not failed:
                return
            self._pool = None
        # Closing waits for the old pool's threads: do it aside, not in the caller's call.
        threading.Thread(target=failed.close, name="erase-pool-close", daemon=True).start()

    def _read(self, what: str, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        self._check()
        for attempt in range(2):
            pool = self._pool
            try:
                with self._connection() as (pool, conn):
                    return fn(conn)
            except psycopg.OperationalError as exc:  # PoolTimeout included
                self._drop_pool(pool)
                if attempt:
                    raise _unavailable(exc, what) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- StorageBackend -----------------------------------------------------------------

    def describe(self) -> str:
        """Returns:
        The server and database (never the password) and the set name."""
        return describe_url(self._url, self.name)

    def read_header(self) -> StoreHeader | None:
        """Returns:
        The stored header, or None if the set does not exist yet."""

        def query(conn: psycopg.Connection[Any]) -> StoreHeader | None:
            row = conn.execute(
                "SELECT params, dimension, projection, fingerprint FROM erase_sets WHERE name = %s",
                (self.name,),
            ).fetchone()
            if row is None:
                return None
            try:
                return StoreHeader(
                    params=json.loads(row[0]),
                    dimension=None if row[1] is None else int(row[1]),
                    projection=None if row[2] is None else bytes(row[2]),
                    fingerprint=None if row[3] is None else json.loads(row[3]),
                )
            except ValueError as exc:
                raise StateFileError(f"{self.describe()}: damaged header ({exc})") from None

        return self._read("read_header", query)

    def create(self, header: StoreHeader) -> StoreHeader:
        """Create the set (and its partition) if absent; race-safe.

        Args:
            header: Header of the new set.

        Returns:
            The stored header (another process's, if it created the set first).
        """
        self._check()
        pool = self._pool
        try:
            with self._connection() as (pool, conn), conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                exists = conn.execute(
                    "SELECT 1 FROM erase_sets WHERE name = %s", (self.name,)
                ).fetchone()
                if exists is None:
                    conn.execute(
                        "INSERT INTO erase_sets (name, params, dimension, projection, "
                        "fingerprint, created_at) VALUES (%s, %s, %s, %s, %s, %s)",
                        (
                            self.name,
                            _canonical(header.params),
                            header.dimension,
                            header.projection,
                            None if header.fingerprint is None else _canonical(header.fingerprint),
                            time.time(),
                        ),
                    )
                    _create_partition(conn, self.name)
        except psycopg.OperationalError as exc:
            self._drop_pool(pool)
            raise _unavailable(exc, "create") from None
        stored = self.read_header()
        if stored is None:  # pragma: no cover - the row was committed just above
            raise StateFileError(f"{self.describe()}: the set vanished after creation")
        return stored

    def head(self) -> tuple[int, str]:
        """Returns:
        (committed head position, digest at head); (0, "") for a missing set. One
        primary-key lookup."""
        return self._read("head", lambda conn: self._head(conn) or (0, ""))

    def changed(self) -> bool:
        """Returns:
        Always True: PostgreSQL has no free local check that is safe across hosts (a
        notification can arrive after another process's commit has returned), so a strong
        read asks `head()`."""
        self._check()
        return True

    def changes_after(self, position: int) -> list[ChangeRecord]:
        """`LogReader.changes_after` (same argument and result)."""
        return self._read("changes_after", lambda conn: self._changes_after(conn, position))

    def rows_added_after(self, position: int) -> list[ExampleRow]:
        """`LogReader.rows_added_after` (same argument and result)."""
        return self._read("rows_added_after", lambda conn: self._rows_added_after(conn, position))

    def log_after(self, position: int) -> tuple[list[ChangeRecord], list[ExampleRow]]:
        """`LogReader.log_after`: both reads in one repeatable-read transaction."""

        def query(conn: psycopg.Connection[Any]) -> tuple[list[ChangeRecord], list[ExampleRow]]:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                return self._changes_after(conn, position), self._rows_added_after(conn, position)

        return self._read("log_after", query)

    def snapshot(self) -> tuple[list[ExampleRow], int, str]:
        """Returns:
        All rows ordered by id, head position and head digest from one repeatable-read
        transaction."""

        def query(conn: psycopg.Connection[Any]) -> tuple[list[ExampleRow], int, str]:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                position, digest = self._head(conn) or (0, "")
                return self._rows_added_after(conn, -1), position, digest

        return self._read("snapshot", query)

    @contextmanager
    def write(self) -> Iterator[PostgresWriteTxn]:
        """One transaction holding the set's head row lock (``SELECT ... FOR UPDATE``).

        Commits on normal exit and announces the new head on the set's channel; rolls back on
        an exception. After a commit that deleted rows, or a rollback of inserted rows, runs
        the erasure step (``VACUUM FULL`` of the set's partition).

        Returns:
            A context manager yielding the `PostgresWriteTxn`.

        Raises:
            StoreUnavailableError: The server was lost; nothing was committed, or (said in
                the message) the outcome of the commit is unknown.
            StateFileError: The set does not exist.
        """
        self._check()
        self._finish_pending_erasure()
        txn: PostgresWriteTxn | None = None
        committing = False
        pool = self._pool
        try:
            with self._connection() as (pool, conn):
                try:
                    with conn.transaction():
                        head = self._head(conn, lock=True)
                        if head is None:
                            raise StateFileError(f"{self.describe()} does not exist")
                        txn = PostgresWriteTxn(conn, self.name, head)
                        yield txn
                        txn.finish()
                        committing = True
                except BaseException:
                    if txn is not None and txn.inserted and not committing:
                        self._note_residue()
                    raise
        except psycopg.OperationalError as exc:
            self._drop_pool(pool)
            outcome = self._committed(txn) if committing and txn is not None else False
            if outcome is not True:
                raise self._write_failure(exc, outcome) from None
        except psycopg.Error as exc:  # refused by the server (constraint, disk full, ...)
            raise StateFileError(
                f"could not write the store {self.describe()}: {type(exc).__name__} "
                f"(SQLSTATE {exc.sqlstate})"
            ) from None
        assert txn is not None
        if txn.deleted:
            self._erase()

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
            found = self._read("write", lambda conn: self._changes_after(conn, last.position - 1))
        except StoreUnavailableError:
            return None
        return bool(found) and found[0] == last

    def _write_failure(self, exc: BaseException, outcome: bool | None) -> StoreUnavailableError:
        if outcome is None:
            return StoreUnavailableError(
                "PostgreSQL store unavailable during commit: the outcome of this write is "
                "unknown (the server could not be asked); call sync() when it is back"
            )
        return _unavailable(exc, "write (nothing was committed)")

    def erasure_pending(self) -> bool:
        """Returns:
        True if a committed deletion (or rolled back insert) has not been erased by
        ``VACUUM FULL`` yet (counted in the database, so any process's pending erasure
        shows)."""

        def query(conn: psycopg.Connection[Any]) -> bool:
            row = conn.execute(
                "SELECT erase_needed > erased FROM erase_sets WHERE name = %s", (self.name,)
            ).fetchone()
            return bool(row and row[0])

        return self._read("erasure_pending", query)

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
                self._listener = psycopg.connect(self._url, autocommit=True)
                self._listener.execute(
                    sql.SQL("LISTEN {}").format(sql.Identifier(channel_name(self.name)))
                )
            except psycopg.OperationalError as exc:
                self._listener = None
                raise _unavailable(exc, "wait_for_change") from None
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
        """Release the connections (in a forked child only forget them: closing would end
        the parent's sessions). Later calls raise `StateFileError`."""
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._pid:
            return
        if self._listener is not None:
            self._listener.close()
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- erasure ------------------------------------------------------------------------

    def _note_residue(self) -> None:
        """A rolled back transaction had inserted rows: their dead tuples hold the refused
        text until the partition is rewritten. Count it, then erase."""
        try:
            with self._connection() as (_, conn):
                conn.execute(
                    "UPDATE erase_sets SET erase_needed = erase_needed + 1 WHERE name = %s",
                    (self.name,),
                )
        except psycopg.OperationalError:
            return  # the server is gone; the rollback's residue is documented
        self._erase()

    def _erase(self) -> bool:
        """Rewrite the set's partition (``VACUUM FULL``) and record what it covered.

        Returns:
            True if the erasure completed; False if the lock wait timed out or the server
            was lost (`erasure_pending()` stays True and the next write retries).
        """
        try:
            with self._connection() as (_, conn):
                row = conn.execute(
                    "SELECT erase_needed, last_delete_xid::text FROM erase_sets WHERE name = %s",
                    (self.name,),
                ).fetchone()
                if row is None:
                    return True
                if not _may_vacuum(conn, partition_name(self.name)):
                    # VACUUM would only warn and skip: the erasure stays pending (visible
                    # in receipts) instead of being recorded as done.
                    return False
                if row[1] is not None and not _wait_for_horizon(conn, row[1]):
                    return False
                conn.execute(f"SET lock_timeout = {_ERASE_LOCK_TIMEOUT_MS}")
                try:
                    conn.execute(
                        sql.SQL("VACUUM FULL {}").format(sql.Identifier(partition_name(self.name)))
                    )
                finally:
                    conn.execute("RESET lock_timeout")
                conn.execute(
                    "UPDATE erase_sets SET erased = GREATEST(erased, %s) WHERE name = %s",
                    (row[0], self.name),
                )
        except (psycopg.OperationalError, psycopg.errors.LockNotAvailable):
            return False
        return True

    def _finish_pending_erasure(self) -> None:
        if self.erasure_pending():
            self._erase()


def _older_snapshot_exists(conn: psycopg.Connection[Any], xid: str) -> bool:
    """Whether any other session, replication slot or prepared transaction may still see
    rows deleted by transaction `xid`: VACUUM FULL copies such "recently dead" rows into the
    new files (measured: all 20 deleted rows kept while a REPEATABLE READ transaction on
    another table was open). A role sees other roles' snapshots only with
    pg_read_all_stats (or as superuser)."""
    row = conn.execute(
        """SELECT EXISTS (
               SELECT 1 FROM pg_stat_activity
               WHERE pid <> pg_backend_pid()
                 AND (datid IS NULL OR datname = current_database())
                 AND (age(backend_xmin) >= age(%(x)s::xid) OR age(backend_xid) >= age(%(x)s::xid)))
           OR EXISTS (
               SELECT 1 FROM pg_replication_slots
               WHERE age(xmin) >= age(%(x)s::xid) OR age(catalog_xmin) >= age(%(x)s::xid))
           OR EXISTS (
               SELECT 1 FROM pg_prepared_xacts WHERE age(transaction) >= age(%(x)s::xid))""",
        {"x": xid},
    ).fetchone()
    return bool(row and row[0])


def _wait_for_horizon(conn: psycopg.Connection[Any], xid: str) -> bool:
    """Wait up to `_HORIZON_WAIT_S` for snapshots older than the last deletion to end.

    Returns:
        True if none is left (the rewrite will drop the deleted rows)."""
    deadline = time.monotonic() + _HORIZON_WAIT_S
    while _older_snapshot_exists(conn, xid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _may_vacuum(conn: psycopg.Connection[Any], table: str) -> bool:
    """Whether the current role may VACUUM `table` (its owner, a member of the owner role,
    or a superuser); PostgreSQL skips other tables with only a warning."""
    row = conn.execute(
        "SELECT pg_has_role(current_user, c.relowner, 'MEMBER') OR r.rolsuper "
        "FROM pg_class c, pg_roles r WHERE c.oid = to_regclass(%s) AND r.rolname = current_user",
        (table,),
    ).fetchone()
    return bool(row and row[0])


def _create_partition(conn: psycopg.Connection[Any], name: str) -> None:
    part = sql.Identifier(partition_name(name))
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF erase_examples FOR VALUES IN ({})"
        ).format(part, sql.Literal(name))
    )
    conn.execute(
        sql.SQL("ALTER TABLE {} {}").format(
            part,
            sql.SQL(", ").join(
                sql.SQL("ALTER COLUMN {} SET STATISTICS 0").format(sql.Identifier(column))
                for column in _CONTENT_COLUMNS
            ),
        )
    )


def _schema_version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT to_regclass('erase_schema_version') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM erase_schema_version").fetchone()
    return int(row[0]) if row else 0


def _migrate(conn: psycopg.Connection[Any]) -> None:
    """Create or upgrade the schema, serialized by an advisory lock (concurrent first opens
    are safe: the second waits and then finds the tables). A current schema is only read, so
    a role without CREATE privilege can open the store."""
    if _schema_version(conn) == SCHEMA_VERSION:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS erase_schema_version ("
            "version integer PRIMARY KEY, applied_at double precision NOT NULL)"
        )
        current = _schema_version(conn)
        if current > SCHEMA_VERSION:
            raise StateFileError(
                f"the database schema is version {current}; this package reads up to "
                f"{SCHEMA_VERSION}: upgrade langchain-erase"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO erase_schema_version (version, applied_at) VALUES (%s, %s)",
                (version, time.time()),
            )


def open_postgres_backend(url: str, name: str) -> PostgresBackend:
    """Open (creating the schema if needed) the example set `name` of a PostgreSQL database.

    Args:
        url: ``postgresql://`` URL.
        name: The example set.

    Returns:
        The backend.
    """
    return PostgresBackend(url, name)

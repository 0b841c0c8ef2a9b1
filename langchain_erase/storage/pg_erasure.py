"""Erasure on PostgreSQL: off the request path, one rewrite of one small key table at a time.

A deletion (on the request path) deletes the sealed row, appends its log record and queues
an erasure in ``erase_erasures``, all in its one transaction; it never waits for anything
else. The rows' content can no longer be selected by anyone from that COMMIT on. Erasure
then makes the content undecryptable from every file of the set: it deletes the row's salt
from its key table (`storage.sealing`) and rewrites that table (``VACUUM FULL``), so the
salt is in no heap, TOAST or index file any more. The table holds about n / KEY_BUCKETS
rows of ~130 bytes, so the rewrite costs the same at any set size up to that factor.

`ErasurePass` does one round over the set's queue, coordinated in the database: a session
advisory lock per (set, bucket) lets exactly one eraser of any process rewrite a bucket,
and erasures queued together for a bucket are done by one rewrite. Before the rewrite it
waits (briefly) for every snapshot that could still see the deleted salt, since
``VACUUM FULL`` would copy such a row into the new file; if one stays, the erasure stays
queued and a later pass completes it. The rewrite takes the key table's ACCESS EXCLUSIVE
lock with a short lock timeout, so it never makes a queue that readers wait in.

`Eraser` runs passes in a daemon thread of the process that opened the store: kicked after
each committed write, retried every `RETRY_S` while anything stays pending, stopped by
``close()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import sql

from langchain_erase.errors import ERASEError
from langchain_erase.storage.pg_schema import key_table, name_hash

__all__ = ["HORIZON_WAIT_S", "LOCK_TIMEOUT_MS", "RETRY_S", "Eraser", "ErasurePass"]

logger = logging.getLogger("langchain_erase")

#: How long one pass waits for snapshots that still see a deleted salt.
HORIZON_WAIT_S = 1.0
#: How long the rewrite waits for a key table's readers before it leaves the bucket queued.
LOCK_TIMEOUT_MS = 200
#: Seconds between passes while an erasure stays pending.
RETRY_S = 0.5

Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


class ErasurePass:
    """One round over a set's erasure queue (any thread; the database coordinates)."""

    def __init__(self, name: str) -> None:
        """Args:
        name: The example set."""
        self.name = name
        #: First key of the (set, bucket) session advisory locks (from the set's name hash).
        self.lock_class = int(name_hash(name)[:8], 16) - 2**31
        #: Key tables this object has rewritten.
        self.rewrites = 0

    def pending(self, conn: psycopg.Connection[Any]) -> bool:
        """Args:
            conn: An autocommit connection.

        Returns:
            True if the set has queued erasures."""
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM erase_erasures WHERE name = %s)", (self.name,)
        ).fetchone()
        return bool(row and row[0])

    def run(self, conn: psycopg.Connection[Any]) -> bool:
        """Erase every queued bucket that no other eraser holds.

        Args:
            conn: An autocommit connection (its session holds the advisory locks).

        Returns:
            True if the queue was empty at the end.
        """
        buckets = conn.execute(
            "SELECT DISTINCT bucket FROM erase_erasures WHERE name = %s ORDER BY bucket",
            (self.name,),
        ).fetchall()
        wait = HORIZON_WAIT_S
        for (bucket,) in buckets:
            if not self._bucket(conn, int(bucket), wait):
                wait = 0.0  # an old snapshot is open: the other buckets only delete keys
        return not self.pending(conn)

    def _bucket(self, conn: psycopg.Connection[Any], bucket: int, wait: float) -> bool:
        """Returns:
        False if an older snapshot kept the rewrite from running."""
        got = conn.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", (self.lock_class, bucket)
        ).fetchone()
        if not (got and got[0]):
            return True  # another eraser is rewriting this bucket
        try:
            return self._erase_bucket(conn, bucket, wait)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (self.lock_class, bucket))

    def _erase_bucket(self, conn: psycopg.Connection[Any], bucket: int, wait: float) -> bool:
        table = key_table(self.name, bucket)
        with conn.transaction():
            queued = conn.execute(
                "SELECT seq, idh, added_at FROM erase_erasures WHERE name = %s AND bucket = %s",
                (self.name, bucket),
            ).fetchall()
            if not queued:
                return True  # done by another eraser since we listed the buckets
            row = conn.execute("SELECT to_regclass(%s)::text", (table.as_string(conn),)).fetchone()
            exists = bool(row and row[0])
            seqs = [seq for seq, _, _ in queued]
            keys = [(idh, at) for _, idh, at in queued if idh is not None]
            if exists and keys:
                conn.execute(
                    sql.SQL(
                        "DELETE FROM {} WHERE (idh, added_at) IN "
                        "(SELECT * FROM unnest(%s::text[], %s::bigint[]))"
                    ).format(table),
                    ([k[0] for k in keys], [k[1] for k in keys]),
                )
                # The salts are deleted by this transaction: the rewrite must wait until no
                # snapshot older than it remains (a retry keeps this transaction's id).
                conn.execute(
                    "UPDATE erase_erasures SET idh = NULL, added_at = NULL, "
                    "xid = pg_current_xact_id() "
                    "WHERE seq = ANY(%s)",
                    (seqs,),
                )
        if exists:
            xid = conn.execute(
                "SELECT max(xid)::text FROM erase_erasures WHERE seq = ANY(%s)", (seqs,)
            ).fetchone()
            if not _may_vacuum(conn, table.as_string(conn)):
                return True  # PostgreSQL would skip the VACUUM with a warning: stays pending
            if xid and xid[0] and not _wait_for_horizon(conn, xid[0], wait):
                return False
            conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
            try:
                conn.execute(sql.SQL("VACUUM FULL {}").format(table))
                self.rewrites += 1
            except psycopg.errors.LockNotAvailable:
                return True  # a reader holds the table: the next pass retries
            finally:
                conn.execute("RESET lock_timeout")
        conn.execute("DELETE FROM erase_erasures WHERE seq = ANY(%s)", (seqs,))
        return True


class Eraser:
    """The erasure thread of one open backend."""

    def __init__(self, name: str, connect: Connect) -> None:
        """Args:
        name: The example set.
        connect: Opens a pooled connection (a context manager)."""
        self._pass = ErasurePass(name)
        self._connect = connect
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        #: The last failure of a pass (None after a pass that ran), for erasure_status().
        self.error: str | None = None

    def kick(self) -> None:
        """Ask for a pass soon (starts the thread if it is not running)."""
        with self._lock:
            if self._closed:
                return
            self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                thread = threading.Thread(
                    target=self._loop, name=f"erase-eraser:{self._pass.name}", daemon=True
                )
                try:
                    thread.start()
                except RuntimeError as exc:  # no thread left: a later call or pass erases
                    self.error = f"eraser thread not started: {exc}"
                    return
                self._thread = thread

    @property
    def rewrites(self) -> int:
        """Key tables this process's eraser has rewritten (for monitoring)."""
        return self._pass.rewrites

    def pending(self, conn: psycopg.Connection[Any]) -> bool:
        """Args:
            conn: A connection.

        Returns:
            True if the set has queued erasures (`ErasurePass.pending`)."""
        return self._pass.pending(conn)

    def run_once(self) -> bool:
        """One pass in the calling thread.

        Returns:
            True if nothing is pending afterwards; False if something is, or the pass
            failed (the reason is in `error`).
        """
        try:
            with self._connect() as conn:
                done = self._pass.run(conn)
        except (psycopg.Error, OSError, ERASEError) as exc:  # unreachable, closed, ...
            self.error = f"{type(exc).__name__}: {_first_line(exc)}"
            return False
        self.error = None
        return done

    def complete(self, timeout: float) -> bool:
        """Run passes until nothing is pending or `timeout` seconds have passed.

        Args:
            timeout: Most seconds to spend.

        Returns:
            True if nothing is pending.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.run_once():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        """Stop the thread (a pass in progress finishes first)."""
        with self._lock:
            self._closed = True
            self._wake.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                self._wake.clear()
            before = self.error
            done = self.run_once()
            if self.error is not None and self.error != before:  # once per new reason
                logger.warning("erasure of set %r deferred: %s", self._pass.name, self.error)
            if done:
                with self._lock:
                    if not self._wake.is_set():
                        self._thread = None
                        return  # idle: the next kick starts a new thread
                continue
            self._wake.wait(RETRY_S)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


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


def _wait_for_horizon(conn: psycopg.Connection[Any], xid: str, wait: float) -> bool:
    """Wait up to `wait` seconds for snapshots older than `xid` to end.

    Returns:
        True if none is left (the rewrite will drop the deleted rows)."""
    deadline = time.monotonic() + wait
    while _older_snapshot_exists(conn, xid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
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

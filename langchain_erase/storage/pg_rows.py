"""Reads and writes of one example set on PostgreSQL, alike on a fresh connection and inside
the write transaction that holds the set's head row lock.

Rows are sealed (`storage.sealing`) and keyed by the id's HMAC; their salts are in the set's
key tables (`storage.pg_schema`). A deletion deletes its rows, appends its hash-chained
records and queues the erasure of their keys (`storage.pg_erasure`) in its transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from langchain_erase.errors import DuplicateExampleError, InvalidExampleError, StateFileError
from langchain_erase.storage.base import ChangeRecord, ExampleRow, id_key
from langchain_erase.storage.dialect import Dialect
from langchain_erase.storage.pg_schema import bucket_of, create_key_table, key_table, name_hash
from langchain_erase.storage.sealing import RowSealer
from langchain_erase.storage.txn import ChainedWriteTxn

__all__ = ["PG_DIALECT", "PostgresWriteTxn", "SetReader", "channel_name"]

#: The shared statements in PostgreSQL's SQL.
PG_DIALECT = Dialect.of("%s", "erase_sets", "erase_changes", "name")


def channel_name(name: str) -> str:
    """Args:
        name: An example-set name.

    Returns:
        The LISTEN/NOTIFY channel on which every commit to the set is announced."""
    return "erase_" + name_hash(name)


@contextmanager
def _content_errors() -> Iterator[None]:
    """Typed errors for statements carrying ids or texts: PostgreSQL's messages quote the
    offending values, so none of them is passed on."""
    try:
        yield
    except psycopg.IntegrityError:
        raise DuplicateExampleError("an example id is already in the store") from None
    except (psycopg.DataError, UnicodeEncodeError):
        raise InvalidExampleError(
            "an id or example cannot be stored in PostgreSQL (invalid UTF-8)"
        ) from None


class SetReader:
    """Reads of one set, alike on a fresh connection and inside a write transaction."""

    def __init__(self, name: str, log_key: bytes, where: str) -> None:
        """Args:
        name: The example set.
        log_key: The store's log key (id HMACs and row keys derive from it).
        where: The store's description, for messages."""
        self.name = name
        self._log_key = log_key
        self._sealer = RowSealer(log_key, name)
        self._where = where
        self._key_check = id_key(log_key, "\0langchain-erase log key check")

    def _id_hash(self, example_id: str) -> str:
        return id_key(self._log_key, example_id)

    def _head_row(self, conn: psycopg.Connection[Any], lock: bool = False) -> tuple[Any, ...]:
        query = (
            "SELECT head_position, head_digest, head_chain, key_buckets FROM erase_sets "
            "WHERE name = %s"
        )
        row = conn.execute(query + (" FOR UPDATE" if lock else ""), (self.name,)).fetchone()
        if row is None:
            raise StateFileError(f"{self._where} does not exist (was it dropped?)")
        if row[2] is None or row[3] is None:
            raise StateFileError(
                f"{self._where} was written with schema version 1 (plaintext rows): "
                "export it with that version and add the examples again"
            )
        return (int(row[0]), str(row[1]), str(row[2]), int(row[3]))

    def _set_buckets(self, conn: psycopg.Connection[Any]) -> int:
        """The set's number of key tables (raising StateFileError for a missing set)."""
        return int(self._head_row(conn)[3])

    def _rows_added_after(self, conn: psycopg.Connection[Any], position: int) -> list[ExampleRow]:
        buckets = self._set_buckets(conn)
        with conn.cursor(binary=True) as cur:
            cur.execute(
                "SELECT idh, added_at, sealed FROM erase_rows WHERE name = %s AND added_at > %s",
                (self.name, position),
            )
            sealed = [(str(r[0]), int(r[1]), bytes(r[2])) for r in cur.fetchall()]
        if not sealed:
            return []
        salts = self._salts(conn, buckets, [(idh, at) for idh, at, _ in sealed], position < 0)
        rows = []
        for idh, at, blob in sealed:
            salt = salts.get((idh, at))
            if salt is None:
                raise StateFileError(f"{self._where}: the key of a stored example is missing")
            rows.append(self._sealer.open(blob, idh, salt))
        rows.sort(key=lambda r: r.id)
        return rows

    def _salts(
        self, conn: psycopg.Connection[Any], buckets: int, keys: list[tuple[str, int]], whole: bool
    ) -> dict[tuple[str, int], bytes]:
        """The salts of the rows `keys` (id HMAC, added_at), read from their key tables in
        one statement (whole tables when every row is wanted)."""
        by_bucket: dict[int, list[str]] = {}
        for idh, _ in keys:
            by_bucket.setdefault(bucket_of(idh, buckets), []).append(idh)
        if whole:
            listed = conn.execute(
                "SELECT bucket FROM erase_key_buckets WHERE name = %s", (self.name,)
            ).fetchall()
            parts = [
                sql.SQL("SELECT idh, added_at, salt FROM {}").format(key_table(self.name, int(b)))
                for (b,) in listed
            ]
            params: list[Any] = []
        else:
            parts = [
                sql.SQL("SELECT idh, added_at, salt FROM {} WHERE idh = ANY(%s)").format(
                    key_table(self.name, b)
                )
                for b in by_bucket
            ]
            params = list(by_bucket.values())
        if not parts:
            return {}
        with conn.cursor(binary=True) as cur:
            cur.execute(sql.SQL(" UNION ALL ").join(parts), params)
            return {(str(r[0]), int(r[1])): bytes(r[2]) for r in cur.fetchall()}


class PostgresWriteTxn(ChainedWriteTxn, SetReader):
    """One open write transaction holding the set's head row lock (see `WriteTxn`): rows are
    sealed under per-row keys, and a deletion queues the erasure of its keys.

    Attributes:
        created_buckets: Key tables this transaction created.
        inserted_buckets: Key tables this transaction inserted key rows into.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        reader: SetReader,
        known_buckets: set[int],
    ) -> None:
        """Args:
        conn: A connection inside an open transaction.
        reader: The backend (name, log key, description).
        known_buckets: Key tables known to exist."""
        SetReader.__init__(self, reader.name, reader._log_key, reader._where)
        position, digest, chain, buckets = self._head_row(conn, lock=True)
        ChainedWriteTxn.__init__(
            self, conn, reader.name, reader._where, PG_DIALECT, (position, digest, chain)
        )
        self._buckets: int = int(buckets)
        self._known = known_buckets
        self.created_buckets: set[int] = set()
        self.inserted_buckets: set[int] = set()

    def _set_buckets(self, conn: psycopg.Connection[Any]) -> int:
        return self._buckets  # read with the head row lock

    def rows_added_after(self, position: int) -> list[ExampleRow]:
        """`LogReader.rows_added_after` (same argument and result)."""
        return self._rows_added_after(self._conn, position)

    def _insert_rows(self, rows: Sequence[ExampleRow], changes: Sequence[ChangeRecord]) -> None:
        sealed: list[tuple[str, int, bytes]] = []
        keys: dict[int, list[tuple[str, int, bytes]]] = {}
        for row, change in zip(rows, changes, strict=True):
            with _content_errors():
                idh = self._id_hash(row.id)
                salt = self._sealer.new_salt()
                sealed.append((idh, change.position, self._sealer.seal(row, idh, salt)))
            keys.setdefault(bucket_of(idh, self._buckets), []).append((idh, change.position, salt))
        for bucket in sorted(keys):
            if bucket not in self._known:
                create_key_table(self._conn, self.name, bucket)
                self.created_buckets.add(bucket)
        self.inserted_buckets.update(keys)
        with _content_errors(), self._conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO erase_rows (name, idh, added_at, sealed) VALUES (%s, %s, %s, %s)",
                [(self.name, idh, at, blob) for idh, at, blob in sealed],
            )
            for bucket, pairs in sorted(keys.items()):
                cur.executemany(
                    sql.SQL("INSERT INTO {} (idh, added_at, salt) VALUES (%s, %s, %s)").format(
                        key_table(self.name, bucket)
                    ),
                    pairs,
                )

    def _delete_rows(self, ids: Sequence[str]) -> int:
        """Delete the rows and queue the erasure of their keys (same transaction)."""
        with _content_errors():
            idhs = [self._id_hash(i) for i in ids]
        gone = self._conn.execute(
            "DELETE FROM erase_rows WHERE name = %s AND idh = ANY(%s) RETURNING idh, added_at",
            (self.name, idhs),
        ).fetchall()
        if len(gone) != len(ids):
            return len(gone)
        self._conn.execute(
            "INSERT INTO erase_erasures (name, bucket, idh, added_at, xid, queued_at) "
            "SELECT %s, b, h, a, pg_current_xact_id(), %s "
            "FROM unnest(%s::int[], %s::text[], %s::bigint[]) AS q(b, h, a)",
            (
                self.name,
                time.time(),
                [bucket_of(str(h), self._buckets) for h, _ in gone],
                [str(h) for h, _ in gone],
                [int(a) for _, a in gone],
            ),
        )
        return len(gone)

    def _execute_many(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(statement, rows)

    def finish(self) -> None:
        """Move the head and announce the commit on the set's channel."""
        super().finish()
        self._conn.execute(
            "SELECT pg_notify(%s, %s)", (channel_name(self.name), str(self._head_now[0]))
        )

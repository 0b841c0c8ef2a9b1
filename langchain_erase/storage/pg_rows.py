"""Reads and writes of one example set on PostgreSQL, alike on a fresh connection and inside
the write transaction that holds the set's head row lock.

Rows are sealed (`storage.sealing`) and keyed by the id's HMAC; their salts are in the set's
key tables (`storage.pg_schema`). A deletion deletes its rows, appends its hash-chained
records and queues the erasure of their keys (`storage.pg_erasure`) in its transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from langchain_erase.errors import (
    DuplicateExampleError,
    InvalidExampleError,
    StateFileError,
    UnknownExampleError,
)
from langchain_erase.storage.base import ChangeRecord, ExampleRow, id_key
from langchain_erase.storage.log import (
    CHANGE_COLUMNS,
    chained_rows,
    check_continues,
    verified_changes,
)
from langchain_erase.storage.pg_schema import bucket_of, create_key_table, key_table, name_hash
from langchain_erase.storage.sealing import RowSealer

__all__ = ["PostgresWriteTxn", "SetReader", "canonical", "channel_name"]


def canonical(value: Any) -> str:
    """Args:
        value: A JSON-able value.

    Returns:
        Its canonical JSON text (sorted keys, compact)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


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

    def _changes_after(self, conn: psycopg.Connection[Any], position: int) -> list[ChangeRecord]:
        raw = conn.execute(
            f"SELECT {CHANGE_COLUMNS}, chain FROM erase_changes WHERE name = %s "
            "AND position >= %s ORDER BY position",
            (self.name, position),
        ).fetchall()
        head = self._head_row(conn)
        return verified_changes(self._where, position, raw, (head[0], head[2]))

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


class PostgresWriteTxn(SetReader):
    """One open write transaction holding the set's head row lock (see `WriteTxn`)."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        reader: SetReader,
        known_buckets: set[int],
    ) -> None:
        super().__init__(reader.name, reader._log_key, reader._where)
        self._conn = conn
        position, digest, chain, buckets = self._head_row(conn, lock=True)
        self._head_now = (position, digest)
        self._chain = chain
        self._buckets: int = int(buckets)
        self._known = known_buckets
        self.created_buckets: set[int] = set()
        self.inserted_buckets: set[int] = set()
        self.deleted = False
        self.last_change: ChangeRecord | None = None

    def head(self) -> tuple[int, str]:
        """Returns:
        (head position, head digest) including this transaction's own writes."""
        return self._head_now

    def _set_buckets(self, conn: psycopg.Connection[Any]) -> int:
        return self._buckets  # read with the head row lock

    def changes_after(self, position: int) -> list[ChangeRecord]:
        """`LogReader.changes_after` (same argument and result)."""
        return verified_changes(
            self._where,
            position,
            self._conn.execute(
                f"SELECT {CHANGE_COLUMNS}, chain FROM erase_changes WHERE name = %s "
                "AND position >= %s ORDER BY position",
                (self.name, position),
            ).fetchall(),
            (self._head_now[0], self._chain),
        )

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
                None if fingerprint is None else canonical(fingerprint),
                self.name,
            ),
        )

    def clear_static(self) -> None:
        """Forget dimension, projection and fingerprint (the set became empty)."""
        self._conn.execute(
            "UPDATE erase_sets SET dimension = NULL, projection = NULL, fingerprint = NULL "
            "WHERE name = %s",
            (self.name,),
        )

    def insert(self, rows: Sequence[ExampleRow], changes: Sequence[ChangeRecord]) -> None:
        """Seal and insert rows, their key rows and their add records.

        Args:
            rows: New rows.
            changes: Their add records, continuing the log head without gaps.

        Raises:
            DuplicateExampleError: An id is present already (the message does not name it).
        """
        check_continues(self._head_now[0], changes, len(rows))
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
        self._append(changes)

    def delete(self, ids: Sequence[str], changes: Sequence[ChangeRecord]) -> None:
        """Delete present rows, append their delete records and queue their erasure.

        Args:
            ids: Ids of present rows.
            changes: One delete record per id, continuing the log head without gaps.

        Raises:
            UnknownExampleError: An id is not present (nothing is deleted; the message
                does not name it).
        """
        check_continues(self._head_now[0], changes, len(ids))
        with _content_errors():
            idhs = [self._id_hash(i) for i in ids]
        gone = self._conn.execute(
            "DELETE FROM erase_rows WHERE name = %s AND idh = ANY(%s) RETURNING idh, added_at",
            (self.name, idhs),
        ).fetchall()
        if len(gone) != len(set(idhs)) or len(set(idhs)) != len(idhs):
            raise UnknownExampleError("an id to delete is not in the store")
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
        self.deleted = True
        self._append(changes)

    def _append(self, changes: Sequence[ChangeRecord]) -> None:
        rows, self._chain = chained_rows(self.name, self._chain, changes)
        with self._conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO erase_changes (name, {CHANGE_COLUMNS}, chain) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
        if changes:
            self.last_change = changes[-1]
            self._head_now = (changes[-1].position, changes[-1].digest_after)

    def finish(self) -> None:
        """Move the head and announce the commit on the set's channel."""
        self._conn.execute(
            "UPDATE erase_sets SET head_position = %s, head_digest = %s, head_chain = %s "
            "WHERE name = %s",
            (self._head_now[0], self._head_now[1], self._chain, self.name),
        )
        self._conn.execute(
            "SELECT pg_notify(%s, %s)", (channel_name(self.name), str(self._head_now[0]))
        )

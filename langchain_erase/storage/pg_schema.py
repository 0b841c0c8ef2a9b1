"""The PostgreSQL schema: tables, migrations and the per-set key tables.

Layout (created on first open, versioned in ``erase_schema_version``):

- ``erase_sets``: one row per example set (``name``): parameters, dimension, projection,
  model fingerprint, the committed log head (position, digest and hash chain), the
  number of key tables its rows are spread over and a check value of the log key (an HMAC
  under it: a process with another key is refused at open). Its row is the set's write lock.
- ``erase_rows``: one row per example: its id HMAC (``idh``), ``added_at`` and the sealed
  content (AES-GCM of id, text and vector; see `storage.sealing`). Never rewritten: a
  deleted row's ciphertext stays until PostgreSQL reuses the space, undecryptable.
- ``erase_k_<set>_<bucket>``: the key tables of a set: (``idh``, ``added_at``, ``salt``;
  an id deleted and added again has a key row per addition), one small table
  per bucket (the keyed hash of the id picks it), created on first use and listed in
  ``erase_key_buckets``. Erasure rewrites one of them (`storage.pg_erasure`).
- ``erase_changes``: the append-only change log (keyed HMAC of the id, never content) with
  its hash chain.
- ``erase_erasures``: the queue of pending erasures (set, bucket, the key row's id HMAC and
  ``added_at``, the transaction that must be over before the rewrite).

Version 1 kept plaintext rows in ``erase_examples`` (list-partitioned by set) and no hash
chain; `upgrade_legacy_set` moves a set of such a database to the new layout.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import psycopg
from psycopg import sql

from langchain_erase.errors import StateFileError

__all__ = [
    "KEY_BUCKETS",
    "SCHEMA_LOCK",
    "SCHEMA_VERSION",
    "bucket_of",
    "create_key_table",
    "foreign_schema_error",
    "key_table",
    "migrate",
    "name_hash",
]

#: Schema version this code writes; a database with a larger version is refused.
SCHEMA_VERSION = 2

#: Key tables per new set. At n rows one erasure rewrites about n / KEY_BUCKETS key rows of
#: ~130 bytes (measured: 1,500 rows in ~10 ms, 16,000 in ~70 ms).
KEY_BUCKETS = 128

#: Key of the transaction-scoped advisory lock that serializes schema changes.
SCHEMA_LOCK = 0x45524153  # "ERAS"

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
    2: (
        # NULL head_chain marks a set written by version 1 (see upgrade_legacy_set).
        "ALTER TABLE erase_sets ADD COLUMN head_chain text, ADD COLUMN key_buckets integer, "
        "ADD COLUMN key_check text",
        "ALTER TABLE erase_changes ADD COLUMN chain text",
        """CREATE TABLE erase_rows (
            name text NOT NULL REFERENCES erase_sets (name),
            idh text NOT NULL,
            added_at bigint NOT NULL,
            sealed bytea NOT NULL,
            PRIMARY KEY (name, idh))""",
        "CREATE INDEX erase_rows_added_at ON erase_rows (name, added_at)",
        "ALTER TABLE erase_rows ALTER COLUMN idh SET STATISTICS 0, "
        "ALTER COLUMN sealed SET STATISTICS 0",
        """CREATE TABLE erase_key_buckets (
            name text NOT NULL REFERENCES erase_sets (name),
            bucket integer NOT NULL,
            PRIMARY KEY (name, bucket))""",
        """CREATE TABLE erase_erasures (
            seq uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            name text NOT NULL,
            bucket integer NOT NULL,
            idh text,
            added_at bigint,
            xid xid8 NOT NULL,
            queued_at double precision NOT NULL)""",
        "CREATE INDEX erase_erasures_set ON erase_erasures (name, bucket)",
    ),
}


def name_hash(name: str) -> str:
    """Args:
        name: An example-set name.

    Returns:
        32 hex digits naming the set's objects (any set name is safe, and identifiers stay
        under PostgreSQL's 63-byte limit)."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def bucket_of(id_hash: str, buckets: int) -> int:
    """Args:
        id_hash: A row's id HMAC (hex).
        buckets: The set's number of key tables.

    Returns:
        The key table holding the row's salt."""
    return int(id_hash[:8], 16) % buckets


def key_table(name: str, bucket: int) -> sql.Identifier:
    """Args:
        name: An example set.
        bucket: A bucket number.

    Returns:
        The identifier of that key table."""
    return sql.Identifier(f"erase_k_{name_hash(name)}_{bucket:04d}")


def create_key_table(conn: psycopg.Connection[Any], name: str, bucket: int) -> None:
    """Create a key table if absent, and list it (inside the caller's write transaction).

    Args:
        conn: A connection in a transaction holding the set's head row lock.
        name: The example set.
        bucket: The bucket number.
    """
    table = key_table(name, bucket)
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (idh text NOT NULL, added_at bigint NOT NULL, "
            "salt bytea NOT NULL, PRIMARY KEY (idh, added_at))"
        ).format(table)
    )
    # ANALYZE must never copy a salt into pg_statistic (a file that outlives the erasure).
    conn.execute(
        sql.SQL(
            "ALTER TABLE {} ALTER COLUMN idh SET STATISTICS 0, ALTER COLUMN salt SET STATISTICS 0"
        ).format(table)
    )
    conn.execute(
        "INSERT INTO erase_key_buckets (name, bucket) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (name, bucket),
    )


def foreign_schema_error(where: str, exc: psycopg.Error) -> StateFileError:
    """The error for tables named like ours that are not ours (or were altered).

    Args:
        where: The store, for the message.
        exc: PostgreSQL's error (DuplicateTable, UndefinedColumn, UndefinedTable, ...).

    Returns:
        A StateFileError naming the problem and PostgreSQL's first line.
    """
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return StateFileError(
        f"{where}: the database holds erase_* tables that are not a langchain-erase store "
        f"of a known version (or were altered): {type(exc).__name__}: {first}. Use another "
        "database or schema (search_path) for the store."
    )


def _schema_version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT to_regclass('erase_schema_version') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM erase_schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection[Any]) -> None:
    """Create or upgrade the schema, serialized by an advisory lock (concurrent first opens
    are safe: the second waits and then finds the tables). A current schema is only read, so
    a role without CREATE privilege can open the store.

    Args:
        conn: An autocommit connection.

    Raises:
        StateFileError: The schema is newer than this package.
        psycopg.ProgrammingError: Foreign tables with our names (the caller maps it with
            `foreign_schema_error`).
    """
    if _schema_version(conn) == SCHEMA_VERSION:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
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

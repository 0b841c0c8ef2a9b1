"""A private PostgreSQL server for tests (pgserver: PostgreSQL 16 from a wheel) and the
helpers that look at its data directory."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pgserver
import psycopg
from pgserver._commands import pg_ctl

#: Environment variable naming an existing server for the PostgreSQL tests.
POSTGRES_URL_ENV = "ERASE_TEST_POSTGRES_URL"

# Relation files of every database and the shared catalogs: heap, TOAST, index and free
# space map forks all live here (WAL is in pg_wal/, see docs/reliability.md).
RELATION_DIRS = ("base", "global")


def with_database(url: str, dbname: str) -> str:
    """Args:
        url: A ``postgresql://`` URL.
        dbname: Database name.

    Returns:
        The same URL naming `dbname`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def create_database(url: str) -> str:
    """Create a fresh database on the server of `url`.

    Args:
        url: URL of any database on the server (a superuser or CREATEDB role).

    Returns:
        The URL of the new, empty database."""
    dbname = "erase_test_" + uuid.uuid4().hex[:16]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    return with_database(url, dbname)


def drop_database(server_url: str, url: str) -> None:
    """Drop the database of `url` (ending its sessions).

    Args:
        server_url: URL of another database on the same server.
        url: URL of the database to drop.
    """
    dbname = urlsplit(url).path.lstrip("/")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@dataclass
class PgTestServer:
    """One pgserver instance in a temporary directory."""

    server: Any
    data_dir: Path

    @classmethod
    def start(cls) -> PgTestServer:
        """Returns:
        A running server in a new temporary directory (deleted by `stop`)."""
        data_dir = Path(tempfile.mkdtemp(prefix="erase-pg-"))
        server = cls(pgserver.get_server(data_dir, cleanup_mode="delete"), data_dir)
        with psycopg.connect(server.url(), autocommit=True) as conn:
            # A throwaway server: skip flushing to the disk device (what a CHECKPOINT writes
            # still reaches the files the tests read; committed data survives a server
            # crash, only not an OS crash).
            for setting in ("fsync", "full_page_writes"):
                conn.execute(f"ALTER SYSTEM SET {setting} = off")
            conn.execute("SELECT pg_reload_conf()")
        return server

    def url(self, dbname: str = "postgres") -> str:
        """Args:
            dbname: Database name.

        Returns:
            URL of that database on this server (Unix socket, no TCP)."""
        return with_database(self.server.get_uri(), dbname)

    def _ctl(self, *args: str) -> None:
        pg_ctl(list(args), pgdata=self.data_dir, user=self.server.system_user, timeout=60)

    def kill_and_restart(self) -> None:
        """Stop the server at once (every session is cut), then start it again with the
        options it was started with."""
        self._ctl("-w", "-m", "immediate", "restart")

    def stop_server(self) -> None:
        """Stop the server (fast shutdown: sessions are terminated)."""
        self._ctl("-w", "-m", "fast", "stop")

    def start_server(self) -> None:
        """Start the server again after `stop_server`."""
        self.server.ensure_postgres_running()

    def stop(self) -> None:
        """Stop the server at once (no shutdown checkpoint: the data is thrown away) and
        delete its data directory."""
        self._ctl("-w", "-m", "immediate", "stop")
        self.server._postmaster_info = None  # stopped: pgserver's cleanup only deletes
        self.server.cleanup()

    def residue(self, url: str, markers: Iterable[bytes]) -> dict[bytes, list[str]]:
        """Which markers are in any heap, TOAST, index or free-space-map file.

        A CHECKPOINT first writes every dirty page to its file, so what a page holds in
        shared buffers is on disk when we read.

        Args:
            url: URL of a database on this server (for the CHECKPOINT).
            markers: Byte strings to look for.

        Returns:
            Each marker found, with the files (relative to the data directory) holding it.
        """
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        wanted = list(markers)
        found: dict[bytes, list[str]] = {}
        for sub in RELATION_DIRS:
            for path in sorted((self.data_dir / sub).rglob("*")):
                if not path.is_file():
                    continue
                data = path.read_bytes()
                for marker in wanted:
                    if marker in data:
                        found.setdefault(marker, []).append(str(path.relative_to(self.data_dir)))
        return found


__all__ = [
    "POSTGRES_URL_ENV",
    "PgTestServer",
    "create_database",
    "drop_database",
    "key_salts",
    "with_database",
]


def key_salts(url: str, name: str, log_key: bytes, ids: Iterable[str]) -> list[bytes]:
    """The salts the PostgreSQL backend keeps for `ids` (what erasure removes from every
    file: without them the sealed rows cannot be decrypted).

    Args:
        url: URL of the store's database.
        name: The example set.
        log_key: The store's log key.
        ids: Present example ids.

    Returns:
        One salt per id, in order.
    """
    from psycopg import sql

    from langchain_erase.storage.base import id_key
    from langchain_erase.storage.pg_schema import bucket_of, key_table

    found = []
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT key_buckets FROM erase_sets WHERE name = %s", (name,)).fetchone()
        assert row is not None
        for example_id in ids:
            idh = id_key(log_key, example_id)
            table = key_table(name, bucket_of(idh, int(row[0])))
            got = conn.execute(
                sql.SQL("SELECT salt FROM {} WHERE idh = %s").format(table), (idh,)
            ).fetchone()
            assert got is not None, "no key row for this id"
            found.append(bytes(got[0]))
    return found

"""Erasure on PostgreSQL against a real server: content sealed, keys erased off the request
path by rewriting one small key table, bytes checked in the server's files."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from pg_helpers import PgTestServer, create_database, key_salts
from psycopg import sql
from store_helpers import marked_rows, markers

from langchain_erase.storage.base import ChangeRecord, ExampleRow, StoreHeader, id_key
from langchain_erase.storage.pg_schema import KEY_BUCKETS, bucket_of, key_table
from langchain_erase.storage.postgres import PostgresBackend

KEY = b"erasure-test-key"
HEADER = StoreHeader(params={"k": 2, "seed": 0}, dimension=None, projection=None, fingerprint=None)


def records(head: int, op: str, ids: list[str]) -> list[ChangeRecord]:
    return [
        ChangeRecord(
            head + n, op, id_key(KEY, i), f"d{head + len(ids)}", 1.5, False, "none", None, 0.1
        )  # type: ignore[arg-type]
        for n, i in enumerate(ids, start=1)
    ]


def add(store: PostgresBackend, rows: list[ExampleRow]) -> None:
    with store.write() as txn:
        txn.insert(rows, records(txn.head()[0], "add", [r.id for r in rows]))


def delete(store: PostgresBackend, ids: list[str]) -> None:
    with store.write() as txn:
        txn.delete(ids, records(txn.head()[0], "delete", ids))


def salts(url: str, name: str, rows: list[ExampleRow]) -> list[bytes]:
    """The key rows' salts of `rows` (what erasure must remove from every file)."""
    return key_salts(url, name, KEY, [r.id for r in rows])


@pytest.fixture
def own_set(pg_server: PgTestServer) -> Iterator[tuple[str, PostgresBackend]]:
    """Set "s" in a database of its own on the private server, whose files the residue
    checks read: its URL and the open backend (closed afterwards)."""
    url = create_database(pg_server.url())
    store = PostgresBackend(url, "s", KEY)
    store.create(HEADER)
    yield url, store
    store.close()


def test_deleted_rows_keys_are_in_no_file_once_erased(
    pg_server: PgTestServer, own_set: tuple[str, PostgresBackend]
) -> None:
    url, store = own_set
    rows = marked_rows("x", 60)
    add(store, rows)
    deleted, kept = rows[::2], rows[1::2]
    gone, staying = salts(url, "s", deleted), salts(url, "s", kept)
    assert pg_server.residue(url, markers(rows)) == {}  # content: never in the clear
    assert len(pg_server.residue(url, gone)) == len(gone)  # the scan sees live keys
    delete(store, [r.id for r in deleted[:1]])  # one deletion ...
    delete(store, [r.id for r in deleted[1:]])  # ... and a batch
    assert store.complete_erasure(10)
    assert store.erasure_status().pending is False
    assert pg_server.residue(url, gone) == {}
    assert len(pg_server.residue(url, staying)) == len(staying)
    assert [r.id for r in store.snapshot()[0]] == sorted(r.id for r in kept)


def test_plain_delete_and_vacuum_leave_the_keys_that_the_scan_finds(
    pg_server: PgTestServer, own_set: tuple[str, PostgresBackend]
) -> None:
    """Why the erasure step rewrites the key table: a plain VACUUM keeps the bytes."""
    url, store = own_set
    rows = marked_rows("v", 400)  # about 3 per key table
    add(store, rows)
    pg_server.residue(url, [])
    last = {bucket_of(id_key(KEY, r.id), KEY_BUCKETS): r.id for r in rows}
    gone = [r for r in rows if last[bucket_of(id_key(KEY, r.id), KEY_BUCKETS)] != r.id]
    keys = salts(url, "s", gone)
    with psycopg.connect(url, autocommit=True) as conn:  # keep one live row per table
        for bucket, kept in last.items():
            table = key_table("s", bucket)
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE idh <> %s").format(table), (id_key(KEY, kept),)
            )
            conn.execute(sql.SQL("VACUUM {}").format(table))
    assert pg_server.residue(url, keys)


def test_refused_add_leaves_no_key_on_disk(
    pg_server: PgTestServer, own_set: tuple[str, PostgresBackend]
) -> None:
    url, store = own_set
    add(store, marked_rows("k", 300))  # most key tables exist: the refused keys land in them
    refused = marked_rows("r", 30)
    with pytest.raises(RuntimeError), store.write() as txn:
        txn.insert(refused, records(txn.head()[0], "add", [r.id for r in refused]))
        keys = [  # read inside the transaction: no other session sees them
            bytes(row[0])
            for r in refused
            for row in txn._conn.execute(
                sql.SQL("SELECT salt FROM {} WHERE idh = %s").format(
                    key_table("s", bucket_of(id_key(KEY, r.id), KEY_BUCKETS))
                ),
                (id_key(KEY, r.id),),
            ).fetchall()
        ]
        raise RuntimeError("refused after the rows were written")
    assert len(keys) == len(refused) and store.head()[0] == 300
    assert store.complete_erasure(10)
    assert pg_server.residue(url, keys) == {}


def test_an_older_snapshot_delays_only_the_erasure(
    pg_server: PgTestServer, own_set: tuple[str, PostgresBackend]
) -> None:
    """A transaction that still sees the deleted keys (a long report, pg_dump) would make
    VACUUM FULL copy them: the erasure stays pending (and says so) until it ends, while
    writes go on."""
    url, store = own_set
    rows = marked_rows("o", 10)
    add(store, rows)
    gone = salts(url, "s", rows[:5])
    with psycopg.connect(url, autocommit=True) as reader:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT count(*) FROM erase_changes")  # a snapshot, not on the keys
        delete(store, [r.id for r in rows[:5]])
        add(store, marked_rows("more", 2))  # writes do not wait for the snapshot
        assert not store.complete_erasure(0.5)
        assert store.erasure_pending()
        assert pg_server.residue(url, gone)  # what "pending" means: the bytes are there
        reader.execute("ROLLBACK")
    assert store.complete_erasure(10)
    assert pg_server.residue(url, gone) == {}


def test_a_role_that_may_not_vacuum_leaves_the_erasure_to_the_owner(
    pg_server: PgTestServer,
) -> None:
    url = create_database(pg_server.url())
    owner = PostgresBackend(url, "s", KEY)
    owner.create(HEADER)
    add(owner, [ExampleRow("a", '{"q":1}', b"v1"), ExampleRow("b", '{"q":2}', b"v2")])
    role = "eraser_" + secrets.token_hex(4)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
    parts = urlsplit(url)
    other = PostgresBackend(urlunsplit(parts._replace(netloc=f"{role}:@")), "s", KEY)
    delete(other, ["a"])  # committed; PostgreSQL would skip this role's VACUUM FULL
    assert not other.complete_erasure(0.3)
    assert other.erasure_pending() and owner.erasure_pending()
    assert owner.complete_erasure(10)
    assert not other.erasure_pending()
    other.close()
    owner.close()


def test_concurrent_erasers_rewrite_each_key_table_once(
    own_set: tuple[str, PostgresBackend], postgres_url: str
) -> None:
    url, store = own_set
    peers = [PostgresBackend(url, "s", KEY) for _ in range(3)]
    rows = marked_rows("p", 40)
    add(store, rows)
    for peer in peers:  # their own erasers idle: the queue is only filled below
        assert peer.complete_erasure(5)
    hold = _hold_buckets(url, "s", range(KEY_BUCKETS))  # no eraser may start yet
    delete(store, [r.id for r in rows])
    buckets = {bucket_of(id_key(KEY, r.id), KEY_BUCKETS) for r in rows}
    before = _relfilenodes(url, "s", buckets)
    hold.close()  # release: every eraser races for the same queue
    done: list[bool] = []
    threads = [
        threading.Thread(target=lambda p=p: done.append(p.complete_erasure(10)))
        for p in [store, *peers]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert done == [True] * 4
    after = _relfilenodes(url, "s", buckets)
    assert all(after[b] != before[b] for b in buckets)  # each one rewritten ...
    rewrites = sum(p.erasure_rewrites for p in [store, *peers])
    assert rewrites == len(buckets)  # ... exactly once
    for peer in peers:
        peer.close()


def test_readers_and_deletions_do_not_wait_for_a_key_table_rewrite(
    own_set: tuple[str, PostgresBackend],
) -> None:
    """What a rewrite holds (ACCESS EXCLUSIVE on one key table) blocks neither a strong
    reader's catch-up after a deletion nor the next deletion."""
    url, store = own_set
    rows = marked_rows("l", 20)
    add(store, rows)
    position = store.head()[0]
    with psycopg.connect(url) as locker:
        for bucket in range(KEY_BUCKETS):  # every key table, as if all were being rewritten
            if locker.execute(
                "SELECT to_regclass(%s)", (key_table("s", bucket).as_string(locker),)
            ).fetchone() != (None,):
                locker.execute(
                    sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(key_table("s", bucket))
                )
        results: list[object] = []

        def work() -> None:
            delete(store, [rows[0].id])
            results.append(store.log_after(position))
            delete(store, [rows[1].id])

        worker = threading.Thread(target=work)
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive()
        locker.rollback()
    assert len(results) == 1 and store.head()[0] == position + 2


def _hold_buckets(url: str, name: str, buckets: range) -> psycopg.Connection[object]:
    conn: psycopg.Connection[object] = psycopg.connect(url, autocommit=True)  # type: ignore[assignment]
    from langchain_erase.storage.pg_erasure import ErasurePass

    lock_class = ErasurePass(name).lock_class
    for bucket in buckets:
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (lock_class, bucket))
    return conn


def _relfilenodes(url: str, name: str, buckets: set[int]) -> dict[int, int]:
    with psycopg.connect(url) as conn:
        return {
            b: int(
                conn.execute(
                    "SELECT pg_relation_filenode(to_regclass(%s))",
                    (key_table(name, b).as_string(conn),),
                ).fetchone()[0]  # type: ignore[index]
            )
            for b in buckets
        }


def test_wal_keeps_the_keys_until_its_segments_are_removed(
    pg_server: PgTestServer, own_set: tuple[str, PostgresBackend]
) -> None:
    """The limit documented in reliability.md, and the documented way to end it: the WAL
    holds an erased row's key (never its content) until its segment is gone; with
    wal_recycle = off, switching the segment and checkpointing (twice) removes it."""
    url, store = own_set
    rows = marked_rows("w", 20)
    add(store, rows)
    keys = salts(url, "s", rows)
    delete(store, [r.id for r in rows])
    assert store.complete_erasure(10)
    wal = pg_server.data_dir / "pg_wal"

    def in_wal(wanted: list[bytes]) -> int:
        data = b"".join(p.read_bytes() for p in sorted(wal.glob("0*")))
        return sum(m in data for m in wanted)

    assert pg_server.residue(url, keys) == {}  # the relation files are clean ...
    assert in_wal(keys) > 0  # ... the WAL is not (but never held the content)
    assert in_wal(markers(rows)) == 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET wal_recycle = off")
        conn.execute("SELECT pg_reload_conf()")
        try:
            # The checkpointer reads the reloaded setting asynchronously: under load its first
            # checkpoint may still recycle (keep) old segments; a few more rounds remove them.
            for _ in range(6):
                conn.execute("SELECT pg_switch_wal()")
                conn.execute("CHECKPOINT")
                if in_wal(keys) == 0:
                    break
                time.sleep(0.2)
            assert in_wal(keys) == 0
        finally:
            conn.execute("ALTER SYSTEM RESET wal_recycle")
            conn.execute("SELECT pg_reload_conf()")


def test_an_id_added_again_before_its_erasure_keeps_its_new_key(
    own_set: tuple[str, PostgresBackend],
) -> None:
    """The erasure of a deleted row removes that row's key, never the key of the same id
    added again meanwhile."""
    url, store = own_set
    first = ExampleRow("same", '{"q":"first"}', b"v1")
    add(store, [first, ExampleRow("other", '{"q":"o"}', b"v2")])
    hold = _hold_buckets(url, "s", range(KEY_BUCKETS))  # the erasure waits
    delete(store, ["same"])
    again = ExampleRow("same", '{"q":"again"}', b"v3")
    add(store, [again])
    hold.close()
    assert store.complete_erasure(10)
    assert store.snapshot()[0] == [ExampleRow("other", '{"q":"o"}', b"v2"), again]

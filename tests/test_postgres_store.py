"""The PostgreSQL backend against a real server: schema, log, races, restart, fork, erasure."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from pg_helpers import PgTestServer, create_database
from psycopg import sql
from store_helpers import marked_rows, markers, race_to_delete

from langchain_erase.errors import (
    DuplicateExampleError,
    ForkedProcessError,
    InvalidParameterError,
    StateFileError,
    StoreUnavailableError,
    UnknownExampleError,
)
from langchain_erase.storage.base import ChangeRecord, ExampleRow, StoreHeader, id_key
from langchain_erase.storage.postgres import (
    SCHEMA_VERSION,
    PostgresBackend,
    describe_url,
    partition_name,
)

KEY = b"test-log-key"
HEADER = StoreHeader(params={"k": 2, "seed": 0}, dimension=None, projection=None, fingerprint=None)


def change(position: int, op: str, example_id: str, digest: str = "d") -> ChangeRecord:
    return ChangeRecord(
        position=position,
        op=op,  # type: ignore[arg-type]
        id_key=id_key(KEY, example_id),
        digest_after=f"{digest}{position}",
        time=1.5,
        refit=False,
        reason="none",
        iteration=None,
        seconds=0.25,
    )


def row(example_id: str, text: str = "", vector: bytes = b"") -> ExampleRow:
    return ExampleRow(example_id, text or f'{{"q":"{example_id}"}}', vector or os.urandom(16))


@pytest.fixture
def backend(postgres_url: str) -> Iterator[PostgresBackend]:
    store = PostgresBackend(postgres_url, "tenant-a")
    store.create(HEADER)
    yield store
    store.close()


@pytest.fixture
def own_set(pg_server: PgTestServer) -> Iterator[tuple[str, PostgresBackend]]:
    """Set "s" in a database of its own on the private server, whose files the residue
    checks read: its URL and the open backend (closed afterwards)."""
    url = create_database(pg_server.url())
    store = PostgresBackend(url, "s")
    store.create(HEADER)
    yield url, store
    store.close()


def add(store: PostgresBackend, rows: list[ExampleRow]) -> None:
    with store.write() as txn:
        head = txn.head()[0]
        txn.insert(rows, [change(head + i + 1, "add", r.id) for i, r in enumerate(rows)])


def delete(store: PostgresBackend, ids: list[str]) -> None:
    with store.write() as txn:
        head = txn.head()[0]
        txn.delete(ids, [change(head + i + 1, "delete", x) for i, x in enumerate(ids)])


def test_concurrent_first_opens_create_the_schema_once(postgres_url: str) -> None:
    errors: list[BaseException] = []
    stores: list[PostgresBackend] = []

    def open_one(i: int) -> None:
        try:
            store = PostgresBackend(postgres_url, f"set{i % 2}")
            store.create(StoreHeader({"i": i}, None, None, None))
            stores.append(store)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    headers = {s.name: s.read_header() for s in stores}
    assert len(headers) == 2  # one header per set: the first creator's, for everyone
    for store in stores:
        assert store.read_header() == headers[store.name]
        store.close()
    with psycopg.connect(postgres_url) as conn:
        versions = conn.execute("SELECT version FROM erase_schema_version").fetchall()
    assert versions == [(SCHEMA_VERSION,)]


def test_newer_schema_is_refused(postgres_url: str) -> None:
    PostgresBackend(postgres_url, "x").close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO erase_schema_version VALUES (%s, 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StateFileError, match="upgrade"):
        PostgresBackend(postgres_url, "x")


def test_log_rows_and_snapshot_round_trip(backend: PostgresBackend) -> None:
    assert backend.head() == (0, "")
    add(backend, [row("b"), row("a")])
    add(backend, [row("c")])
    delete(backend, ["a"])
    assert backend.head() == (4, "d4")
    assert [c.position for c in backend.changes_after(1)] == [2, 3, 4]
    assert backend.changes_after(3)[0] == change(4, "delete", "a")
    assert [r.id for r in backend.rows_added_after(2)] == ["c"]
    rows, position, digest = backend.snapshot()
    assert [r.id for r in rows] == ["b", "c"] and (position, digest) == (4, "d4")
    assert backend.erasure_pending() is False


def test_sets_in_one_database_are_independent(backend: PostgresBackend, postgres_url: str) -> None:
    other = PostgresBackend(postgres_url, "tenant-b")
    other.create(HEADER)
    add(backend, [row("a")])
    add(other, [row("a"), row("z")])
    delete(backend, ["a"])
    assert backend.snapshot()[0] == [] and [r.id for r in other.snapshot()[0]] == ["a", "z"]
    assert other.head() == (2, "d2")
    other.close()


def test_positions_must_continue_the_head(backend: PostgresBackend) -> None:
    with pytest.raises(InvalidParameterError), backend.write() as txn:
        txn.insert([row("a")], [change(2, "add", "a")])
    assert backend.head() == (0, "")


def test_errors_do_not_name_ids(backend: PostgresBackend) -> None:
    secret = "alice@example.com"
    add(backend, [row(secret)])
    with pytest.raises(DuplicateExampleError) as dup, backend.write() as txn:
        txn.insert([row(secret)], [change(2, "add", secret)])
    with pytest.raises(UnknownExampleError) as unknown, backend.write() as txn:
        txn.delete(["bob@example.com"], [change(2, "delete", "bob@example.com")])
    for exc in (dup.value, unknown.value):
        assert "example.com" not in str(exc) and exc.__cause__ is None
    assert backend.head() == (1, "d1")


def test_two_writers_racing_serialize_on_the_head_row(postgres_url: str) -> None:
    stores = [PostgresBackend(postgres_url, "race") for _ in range(2)]
    stores[0].create(HEADER)
    add(stores[0], [row("same")])

    def delete_same(store: PostgresBackend) -> None:
        with store.write() as txn:  # catch up under the lock, as a selector does
            head = txn.head()[0]
            if any(c.op == "delete" for c in txn.changes_after(1)):
                raise UnknownExampleError("already deleted")
            txn.delete(["same"], [change(head + 1, "delete", "same")])

    assert race_to_delete(delete_same, stores) == ["deleted", "unknown"]
    assert stores[1].head() == (2, "d2") and stores[1].snapshot()[0] == []
    for store in stores:
        store.close()


def test_forked_child_is_refused(backend: PostgresBackend) -> None:
    add(backend, [row("a")])
    pid = os.fork()
    if pid == 0:  # child: every call must refuse, and close must not end the parent's sessions
        code = 1
        try:
            backend.head()
        except ForkedProcessError:
            code = 0
        backend.close()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert backend.head() == (1, "d1")  # the parent's pool still works


def test_wait_for_change_is_woken_by_a_commit_elsewhere(
    backend: PostgresBackend, postgres_url: str
) -> None:
    assert backend.wait_for_change(0.1) is True  # subscribing: the caller must catch up once
    assert backend.wait_for_change(0.1) is False
    writer = PostgresBackend(postgres_url, backend.name)
    add(writer, [row("a")])
    assert backend.wait_for_change(10.0) is True
    assert backend.wait_for_change(0.1) is False
    writer.close()


def test_server_restart_is_transparent_for_reads_and_loses_nothing(
    pg_server: PgTestServer,
) -> None:
    url = create_database(pg_server.url())
    store = PostgresBackend(url, "s", timeout=3.0)
    store.create(HEADER)
    add(store, [row("a"), row("b")])
    pg_server.kill_and_restart()  # crash and recovery: every pooled connection is dead
    assert store.head() == (2, "d2")
    delete(store, ["a"])
    pg_server.stop_server()
    try:
        with pytest.raises(StoreUnavailableError):
            store.head()
        with pytest.raises(StoreUnavailableError), store.write() as txn:
            txn.delete(["b"], [change(4, "delete", "b")])
    finally:
        pg_server.start_server()
    assert store.head() == (3, "d3")
    assert [r.id for r in store.snapshot()[0]] == ["b"]
    store.close()


def test_closed_backend_refuses(backend: PostgresBackend) -> None:
    backend.close()
    with pytest.raises(StateFileError, match="closed"):
        backend.head()


# -- erasure ----------------------------------------------------------------------------------


def test_deleted_rows_leave_no_bytes_in_heap_toast_or_index_files(
    pg_server: PgTestServer, own_set: tuple[str, PostgresBackend]
) -> None:
    url, store = own_set
    rows = marked_rows("x", 40)
    add(store, rows)
    pg_server.residue(url, [])  # checkpoint: the rows are on disk before the deletion
    deleted, kept = rows[::2], rows[1::2]
    delete(store, [r.id for r in deleted[:1]])  # one deletion ...
    delete(store, [r.id for r in deleted[1:]])  # ... and a batch
    assert store.erasure_pending() is False
    assert pg_server.residue(url, markers(deleted)) == {}
    assert len(pg_server.residue(url, markers(kept))) == len(markers(kept))


def test_plain_delete_and_vacuum_leave_residue_that_the_scan_finds(
    pg_server: PgTestServer, own_set: tuple[str, PostgresBackend]
) -> None:
    """Why the erasure step is VACUUM FULL: a plain VACUUM keeps the bytes."""
    url, store = own_set
    rows = marked_rows("x", 40)
    add(store, rows)
    pg_server.residue(url, [])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM erase_examples WHERE name = 's'")
        conn.execute("VACUUM erase_examples")
    assert pg_server.residue(url, markers(rows))


def test_refused_add_leaves_nothing_on_disk(
    pg_server: PgTestServer, own_set: tuple[str, PostgresBackend]
) -> None:
    url, store = own_set
    add(store, [row("kept")])
    refused = marked_rows("r", 30)
    with pytest.raises(RuntimeError), store.write() as txn:
        txn.insert(refused, [change(2 + i, "add", r.id) for i, r in enumerate(refused)])
        raise RuntimeError("refused after the rows were written")
    assert store.head() == (1, "d1") and store.erasure_pending() is False
    assert pg_server.residue(url, markers(refused)) == {}


def test_a_role_that_may_not_vacuum_leaves_the_erasure_pending_until_the_owner_writes(
    pg_server: PgTestServer,
) -> None:
    url = create_database(pg_server.url())
    owner = PostgresBackend(url, "s")
    owner.create(HEADER)
    add(owner, [row("a"), row("b")])
    role = "eraser_" + secrets.token_hex(4)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
    parts = urlsplit(url)
    other = PostgresBackend(urlunsplit(parts._replace(netloc=f"{role}:@")), "s")
    delete(other, ["a"])  # committed, but PostgreSQL would skip its VACUUM FULL
    assert other.erasure_pending() and owner.erasure_pending()
    add(owner, [row("c")])  # the owner's next write completes the erasure first
    assert not other.erasure_pending()
    other.close()
    owner.close()


def test_wal_keeps_deleted_rows_until_its_segments_are_removed(
    pg_server: PgTestServer, own_set: tuple[str, PostgresBackend]
) -> None:
    """The limit documented in reliability.md, and the documented way to end it: the WAL
    holds an added row until its segment is gone; with wal_recycle = off, switching the
    segment and checkpointing (twice) removes it."""
    url, store = own_set
    rows = marked_rows("w", 20)
    add(store, rows)
    delete(store, [r.id for r in rows])
    wal = pg_server.data_dir / "pg_wal"

    def in_wal() -> int:
        data = b"".join(p.read_bytes() for p in sorted(wal.glob("0*")))
        return sum(m in data for m in markers(rows))

    assert pg_server.residue(url, markers(rows)) == {}  # the relation files are clean ...
    assert in_wal() > 0  # ... the WAL is not
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET wal_recycle = off")
        conn.execute("SELECT pg_reload_conf()")
        try:
            for _ in range(2):
                conn.execute("SELECT pg_switch_wal()")
                conn.execute("CHECKPOINT")
            assert in_wal() == 0
        finally:
            conn.execute("ALTER SYSTEM RESET wal_recycle")
            conn.execute("SELECT pg_reload_conf()")


def test_descriptions_never_show_the_password() -> None:
    text = describe_url("postgresql://app:s3cret@db.example:5433/prod?sslmode=require", "t")
    assert text == "postgresql://app@db.example:5433/prod (set 't')"
    assert "s3cret" not in describe_url("postgresql://app:s3cret@[bad", "t")


def test_an_older_snapshot_keeps_the_erasure_pending_until_it_ends(
    pg_server: PgTestServer, own_set: tuple[str, PostgresBackend]
) -> None:
    """A transaction that still sees the deleted rows (a long report, pg_dump) makes
    VACUUM FULL copy them: the erasure must be reported pending, then completed."""
    url, store = own_set
    rows = marked_rows("o", 10)
    add(store, rows)
    gone = markers(rows[:5])
    with psycopg.connect(url, autocommit=True) as reader:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT count(*) FROM erase_changes")  # a snapshot, not on the rows
        delete(store, [r.id for r in rows[:5]])
        assert store.erasure_pending()
        assert pg_server.residue(url, gone)  # what "pending" means: the bytes are there
        reader.execute("ROLLBACK")
    add(store, [row("next")])  # the next write completes the erasure first
    assert not store.erasure_pending()
    assert pg_server.residue(url, gone) == {}


def test_a_write_whose_session_is_killed_commits_nothing(backend: PostgresBackend) -> None:
    add(backend, [row("a")])
    url = backend._url
    killed = pytest.raises(StoreUnavailableError, match="nothing was committed")
    with killed, backend.write() as txn:
        txn.insert([row("b")], [change(2, "add", "b")])
        with psycopg.connect(url, autocommit=True) as admin:  # an operator's kill
            admin.execute("SELECT pg_terminate_backend(%s)", (txn._conn.info.backend_pid,))
    assert backend.head() == (1, "d1") and [r.id for r in backend.snapshot()[0]] == ["a"]
    add(backend, [row("c")])  # the next write works on a fresh connection
    assert backend.head() == (2, "d2")


def test_one_sets_erasure_lock_does_not_block_another_set(
    backend: PostgresBackend, postgres_url: str
) -> None:
    other = PostgresBackend(postgres_url, "tenant-b")
    other.create(HEADER)
    add(other, [row("x")])
    for _ in range(30):  # many executions: plans must stay per set (no generic plan)
        other.rows_added_after(0)
    with psycopg.connect(postgres_url) as locker:  # what VACUUM FULL holds on tenant-a's rows
        locker.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                sql.Identifier(partition_name(backend.name))
            )
        )
        reader = threading.Thread(target=lambda: results.append(other.snapshot()[0]))
        results: list[list[ExampleRow]] = []
        reader.start()
        reader.join(timeout=5)
        assert not reader.is_alive() and [r.id for r in results[0]] == ["x"]
    other.close()

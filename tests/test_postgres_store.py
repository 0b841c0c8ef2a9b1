"""The PostgreSQL backend against a real server: schema, log, races, restart, fork, erasure."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import psycopg
import pytest
from pg_helpers import PgTestServer, create_database
from store_helpers import race_to_delete

from langchain_erase.errors import (
    DuplicateExampleError,
    ForkedProcessError,
    InvalidParameterError,
    StateFileError,
    StoreUnavailableError,
    UnknownExampleError,
)
from langchain_erase.storage.base import ChangeRecord, ExampleRow, StoreHeader, id_key
from langchain_erase.storage.pg_schema import SCHEMA_VERSION
from langchain_erase.storage.postgres import PostgresBackend, describe_url

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
    store = PostgresBackend(postgres_url, "tenant-a", KEY)
    store.create(HEADER)
    yield store
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
            store = PostgresBackend(postgres_url, f"set{i % 2}", KEY)
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
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]  # each applied once


def test_newer_schema_is_refused(postgres_url: str) -> None:
    PostgresBackend(postgres_url, "x", KEY).close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO erase_schema_version VALUES (%s, 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StateFileError, match="upgrade"):
        PostgresBackend(postgres_url, "x", KEY)


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
    assert backend.complete_erasure(10) and backend.erasure_pending() is False


def test_sets_in_one_database_are_independent(backend: PostgresBackend, postgres_url: str) -> None:
    other = PostgresBackend(postgres_url, "tenant-b", KEY)
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
    stores = [PostgresBackend(postgres_url, "race", KEY) for _ in range(2)]
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
    writer = PostgresBackend(postgres_url, backend.name, KEY)
    add(writer, [row("a")])
    assert backend.wait_for_change(10.0) is True
    assert backend.wait_for_change(0.1) is False
    writer.close()


def test_server_restart_is_transparent_for_reads_and_loses_nothing(
    pg_server: PgTestServer,
) -> None:
    url = create_database(pg_server.url())
    store = PostgresBackend(url, "s", KEY, timeout=3.0)
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


def test_descriptions_never_show_the_password() -> None:
    text = describe_url("postgresql://app:s3cret@db.example:5433/prod?sslmode=require", "t")
    assert text == "postgresql://app@db.example:5433/prod (set 't')"
    assert "s3cret" not in describe_url("postgresql://app:s3cret@[bad", "t")


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

"""Typed, fast errors of the PostgreSQL backend, and a committed deletion that never raises
(issue #17 items 2 and 3), against a real server."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from pg_helpers import PgTestServer, create_database, with_database

from langchain_erase.errors import StateFileError, StoreUnavailableError
from langchain_erase.storage.base import ChangeRecord, ExampleRow, StoreHeader, id_key
from langchain_erase.storage.pg_erasure import ErasurePass
from langchain_erase.storage.pg_schema import KEY_BUCKETS
from langchain_erase.storage.postgres import PostgresBackend

KEY = b"errors-test-key"
HEADER = StoreHeader(params={"k": 2}, dimension=None, projection=None, fingerprint=None)


def records(head: int, op: str, ids: list[str]) -> list[ChangeRecord]:
    return [
        ChangeRecord(head + n, op, id_key(KEY, i), "d", 1.0, False, "none", None, 0.0)  # type: ignore[arg-type]
        for n, i in enumerate(ids, start=1)
    ]


def opened(url: str, **options: float) -> PostgresBackend:
    store = PostgresBackend(url, "s", KEY, **options)  # type: ignore[arg-type]
    store.create(HEADER)
    with store.write() as txn:
        txn.insert(
            [ExampleRow(i, f'{{"q":"{i}"}}', b"vec") for i in "abc"], records(0, "add", list("abc"))
        )
    return store


@pytest.mark.parametrize(
    "foreign",
    [
        "CREATE TABLE erase_sets (id serial PRIMARY KEY, note text)",  # DuplicateTable
        "CREATE TABLE erase_rows (x int)",
    ],
)
def test_foreign_erase_tables_are_refused_by_name(postgres_url: str, foreign: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(foreign)
    with pytest.raises(StateFileError, match="erase_\\* tables that are not a langchain-erase"):
        PostgresBackend(postgres_url, "s", KEY)


def test_an_altered_table_is_refused_by_name(postgres_url: str) -> None:
    store = opened(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # UndefinedColumn on read
        conn.execute("ALTER TABLE erase_rows RENAME COLUMN sealed TO content")
    with pytest.raises(StateFileError, match="UndefinedColumn"):
        store.snapshot()
    store.close()


def test_a_read_only_session_reads_and_refuses_writes_by_name(postgres_url: str) -> None:
    opened(postgres_url).close()
    parts = urlsplit(postgres_url)
    query = (
        parts.query + "&" if parts.query else ""
    ) + "options=-c%20default_transaction_read_only%3Don"
    store = PostgresBackend(urlunsplit(parts._replace(query=query)), "s", KEY)
    assert [r.id for r in store.snapshot()[0]] == ["a", "b", "c"]
    with pytest.raises(StoreUnavailableError, match="read-only"), store.write() as txn:
        txn.delete(["a"], records(3, "delete", ["a"]))
    store.close()


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("postgresql://app:s3cretpw@127.0.0.1:1/appdb", "refused"),
        ("postgresql://app:s3cretpw@no-such-host.invalid:5432/appdb", "no-such-host.invalid"),
    ],
)
def test_an_unreachable_server_is_named_with_its_reason(target: str, reason: str) -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        PostgresBackend(target, "s", KEY, timeout=30.0)
    message = str(caught.value)
    assert reason in message and "s3cretpw" not in message
    for part in ("host", "port", "database appdb", "role app"):
        assert part in message
    assert "pool" not in message  # the server's reason, not a pool timeout


@pytest.mark.parametrize("wrong", ["database", "role"])
def test_an_unknown_database_or_role_is_named(postgres_server_url: str, wrong: str) -> None:
    if wrong == "database":
        url = with_database(postgres_server_url, "no_such_db")
        expected = 'database "no_such_db" does not exist'
    else:
        parts = urlsplit(postgres_server_url)
        url = urlunsplit(parts._replace(netloc="no_such_role:pw@" + parts.netloc.split("@")[-1]))
        expected = 'role "no_such_role" does not exist'
    with pytest.raises(StoreUnavailableError, match=expected):
        PostgresBackend(url, "s", KEY, timeout=30.0)


def test_calls_fail_at_once_while_the_server_is_down(pg_server: PgTestServer) -> None:
    """An open store whose server stops: each call fails with the reason instead of
    waiting for the pool's timeout (60 s here), and works again once it is back."""
    store = opened(create_database(pg_server.url()), timeout=60.0)
    pg_server.stop_server()
    try:
        for _ in range(2):
            start = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="cannot connect"):
                store.head()
            assert time.monotonic() - start < 15.0  # far below the pool's 60 s
    finally:
        pg_server.start_server()
    assert store.head()[0] == 3
    store.close()


def test_a_committed_deletion_reports_a_lost_server_and_never_raises(
    pg_server: PgTestServer,
) -> None:
    url = create_database(pg_server.url())
    store = opened(url)
    holder = psycopg.connect(url, autocommit=True)  # keeps every eraser off the key tables
    lock_class = ErasurePass("s").lock_class
    for bucket in range(KEY_BUCKETS):
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (lock_class, bucket))
    with store.write() as txn:
        txn.delete(["a"], records(3, "delete", ["a"]))
    assert store.erasure_pending()
    pg_server.stop_server()
    try:
        status = store.erasure_status()  # the server is gone: an answer, not an exception
        assert status.pending and status.error and "cannot connect" in status.error
        assert store.erasure_pending() is True
    finally:
        pg_server.start_server()
        holder.close()
    assert store.complete_erasure(10)
    assert store.erasure_status().pending is False
    assert [r.id for r in store.snapshot()[0]] == ["b", "c"]
    store.close()


def test_an_id_or_text_that_cannot_be_sealed_is_refused_and_nothing_is_written(
    postgres_url: str,
) -> None:
    from langchain_erase.errors import InvalidExampleError

    store = opened(postgres_url)
    for bad in (ExampleRow("bad\ud800", '{"q":1}', b"v"), ExampleRow("ok", '{"q":"\ud800"}', b"v")):
        with pytest.raises(InvalidExampleError), store.write() as txn:
            txn.insert([bad], records(3, "add", ["x"]))
    assert store.head()[0] == 3 and [r.id for r in store.snapshot()[0]] == ["a", "b", "c"]
    store.close()

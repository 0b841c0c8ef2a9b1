"""Fixtures of the storage conformance suite: every test runs once per storage backend.

`store` is parametrized over every backend (a SQLite file; PostgreSQL on the session's
private pgserver, one database for the whole suite and a fresh set name per test).
`backend` is that set, created and open.

Known drift between the backends (issue #17) is marked on the test with
``@pytest.mark.drift(<backend>="what is wrong")``: on that backend only, the test becomes
``xfail(strict=True, reason="#17 drift: ...")``, so the suite is green today and a fixed
backend fails loudly until its mark is removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_helpers import PgTestServer, create_database

from langchain_erase.storage.base import StorageBackend

from .stores import HEADER, PostgresStore, SqliteStore, StoreUnderTest

#: Every storage backend the suite runs on.
BACKENDS = ("sqlite", "postgres")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "drift(**reasons): known #17 drift; keyword = backend that fails (strict xfail there)",
    )


@pytest.fixture(scope="session")
def conformance_url(pg_server: PgTestServer) -> str:
    """One database for the whole suite on the private server (whose files the erasure
    tests read); tests keep apart by set name."""
    return create_database(pg_server.url())


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreUnderTest:
    """A fresh example set (not created yet) on each backend."""
    kind: str = request.param
    drift = request.node.get_closest_marker("drift")
    if drift is not None:
        unknown = set(drift.kwargs) - set(BACKENDS)
        assert not unknown, f"drift names unknown backends {unknown}"
        if kind in drift.kwargs:
            request.applymarker(
                pytest.mark.xfail(strict=True, reason=f"#17 drift: {drift.kwargs[kind]}")
            )
    if kind == "sqlite":
        return SqliteStore(tmp_path / "store.db")
    server: PgTestServer = request.getfixturevalue("pg_server")
    return PostgresStore(request.getfixturevalue("conformance_url"), server.data_dir)


@pytest.fixture
def backend(store: StoreUnderTest) -> Iterator[StorageBackend]:
    """The set of `store`, created with `stores.HEADER` and open (closed afterwards)."""
    opened = store.open()
    opened.create(HEADER)
    yield opened
    opened.close()

"""Shared fixtures: task data read in place from ../shared/datasets."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_helpers import POSTGRES_URL_ENV, PgTestServer, create_database, drop_database

from langchain_erase.evaluation.tasks import DEFAULT_DATA_DIR as DATASETS
from langchain_erase.storage import LOG_KEY_ENV


@pytest.fixture(scope="session")
def sentiment_examples() -> list[dict[str, str]]:
    """The instruction-induction sentiment demonstration pool (real data, read in place)."""
    path = DATASETS / "instruction_induction" / "sentiment" / "induce.json"
    if not path.exists():
        pytest.fail(f"task data missing: {path} (../shared must sit beside the repo)")
    rows = json.loads(path.read_text())["examples"].values()
    return [{"input": r["input"], "output": r["output"]} for r in rows]


# -- storage backends -------------------------------------------------------------------------
# Every test run uses a real PostgreSQL: a private pgserver instance (PostgreSQL 16 from a
# wheel, started in a temp directory; as root it runs the server under its own system user),
# or the server named by ERASE_TEST_POSTGRES_URL. Nothing is mocked or skipped.


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgTestServer]:
    """A private PostgreSQL server for the whole session (its data directory is ours to read)."""
    server = PgTestServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server_url(pg_server: PgTestServer) -> str:
    """URL of the server the PostgreSQL tests use: ERASE_TEST_POSTGRES_URL or the private one."""
    return os.environ.get(POSTGRES_URL_ENV) or pg_server.url()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the test server (one per test; dropped afterwards on a
    server named by ERASE_TEST_POSTGRES_URL, the private one is deleted whole)."""
    url = create_database(postgres_server_url)
    yield url
    if os.environ.get(POSTGRES_URL_ENV):
        drop_database(postgres_server_url, url)


@pytest.fixture(params=["sqlite", "postgres"])
def backend_target(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Where a shared store lives, one parameter per storage backend.

    SQLite: a file in the test's temporary directory (its log key is the key file beside
    it). PostgreSQL: a fresh database on the test server, with the log key in
    LANGCHAIN_ERASE_LOG_KEY so that subprocesses share it.
    """
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    monkeypatch.setenv(LOG_KEY_ENV, "test-log-key")
    url: str = request.getfixturevalue("postgres_url")
    return url

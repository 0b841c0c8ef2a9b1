"""Shared fixtures: task data read in place from ../shared/datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def sentiment_examples() -> list[dict[str, str]]:
    """The instruction-induction sentiment demonstration pool (real data, read in place)."""
    path = DATASETS / "instruction_induction" / "sentiment" / "induce.json"
    if not path.exists():
        pytest.fail(f"task data missing: {path} (../shared must sit beside the repo)")
    rows = json.loads(path.read_text())["examples"].values()
    return [{"input": r["input"], "output": r["output"]} for r in rows]


@pytest.fixture(params=["sqlite"])
def backend_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a shared store lives, one parameter per storage backend.

    SQLite: a file in the test's temporary directory (its log key is the key file beside
    it). Other backends add their parameter here (a PostgreSQL URL, with the log key in
    LANGCHAIN_ERASE_LOG_KEY so that subprocesses share it).
    """
    assert request.param == "sqlite"
    return str(tmp_path / "store.db")

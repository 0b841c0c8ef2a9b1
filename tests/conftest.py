"""Shared fixtures: task data read in place from ../shared/datasets."""

from __future__ import annotations

import json

import pytest

from langchain_erase.evaluation.tasks import DEFAULT_DATA_DIR as DATASETS


@pytest.fixture(scope="session")
def sentiment_examples() -> list[dict[str, str]]:
    """The instruction-induction sentiment demonstration pool (real data, read in place)."""
    path = DATASETS / "instruction_induction" / "sentiment" / "induce.json"
    if not path.exists():
        pytest.fail(f"task data missing: {path} (../shared must sit beside the repo)")
    rows = json.loads(path.read_text())["examples"].values()
    return [{"input": r["input"], "output": r["output"]} for r in rows]

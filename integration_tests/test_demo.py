"""The main job end to end on the real default models (MiniLM GGUF + Gemma-3-270M)."""

from __future__ import annotations

import pytest

from langchain_erase.cli import main

pytestmark = pytest.mark.integration


def test_demo_runs_offline_and_proves_deletion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--limit", "80", "--n-threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "Deleted demonstrations found in the prompts of all 3 queries: 0" in out
    assert "verify(): state equals a fresh fit without them: True" in out

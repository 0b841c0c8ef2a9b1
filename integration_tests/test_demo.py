"""The main job end to end on the real default models (MiniLM GGUF + Gemma-3-270M)."""

from __future__ import annotations

import pytest

from langchain_erase.cli import main

pytestmark = pytest.mark.integration


def test_demo_answers_right_runs_offline_and_proves_deletion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the demo as `make demo` runs it: its defaults (400 demonstrations, 4-shot, `similar`)
    assert main(["demo", "--n-threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "Selection: similar (the default: the best mean rank" in out
    assert "3 of 3 answered right." in out, out
    assert "Deleted demonstrations found in the prompts of all 3 queries: 0" in out
    assert "verify(): state equals a fresh fit without them: True" in out

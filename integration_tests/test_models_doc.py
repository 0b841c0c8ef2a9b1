"""The concurrency example of docs/models.md runs as written, on the real Gemma-3-270M."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PAGE = Path(__file__).resolve().parents[1] / "docs" / "models.md"
FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_concurrent_calls_example(capsys: pytest.CaptureFixture[str]) -> None:
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index("## Concurrent calls") :]
    section = section[: section.index("\n## ", 1)]
    blocks = FENCE.findall(section)
    assert len(blocks) == 1
    exec(compile(blocks[0], str(PAGE), "exec"), {"__name__": "docs_example"})
    assert "same answers concurrently: True" in capsys.readouterr().out


def test_chat_model_example() -> None:
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index("## The chat model") :]
    section = section[: section.index("\n## ", 1)]
    blocks = FENCE.findall(section)
    assert len(blocks) == 1
    scope: dict[str, object] = {"__name__": "docs_example"}
    exec(compile(blocks[0], str(PAGE), "exec"), scope)
    message = scope["message"]
    assert [c["name"] for c in message.tool_calls] == ["record_sale"]  # type: ignore[attr-defined]
    assert set(message.tool_calls[0]["args"]) == {"item", "quantity"}  # type: ignore[attr-defined]
    assert message.usage_metadata["output_tokens"] > 0  # type: ignore[attr-defined]

"""The documentation's examples run as written (so they cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("docs/usage.md", ["Review: Loved it.", "refused:", "knn:", "retrieved:", "answer:"]),
        ("README.md", ["star ->"]),
        ("docs/architecture.md", ["views: True 3"]),
    ],
)
def test_python_blocks_run_in_order(
    page: str, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = FENCE.findall((ROOT / page).read_text(encoding="utf-8"))
    assert blocks
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for block in blocks:
        exec(compile(block, page, "exec"), namespace)
    out = capsys.readouterr().out
    assert all(text in out for text in expected)

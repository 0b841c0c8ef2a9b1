"""The RAG example (examples/rag/rag.py) end to end on the project's docs, with a
deterministic embedder and a scripted LLM (the real-model run is integration_tests/
test_rag_vectorstore.py)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import FakeListLLM

ROOT = Path(__file__).resolve().parents[1]


def rag_example() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "examples/rag/rag.py"), run_name="rag_example")


def test_rag_example_forgets_a_source() -> None:
    rag = rag_example()
    files = [ROOT / "docs/deploy.md", ROOT / "README.md"]
    chunks = rag["split_markdown"](files[0])
    assert chunks and all(len(c.page_content) <= 2 * rag["MAX_CHARS"] for c in chunks)
    report = rag["run"](
        files,
        files[0],
        "How do I deploy the service?",
        DeterministicFakeEmbedding(size=32),
        FakeListLLM(responses=["Run the service with uvicorn."]),
    )
    assert report.answer == "Run the service with uvicorn."
    assert len(report.sources_before) == 3
    assert report.removed_chunks == len(chunks) == len(report.receipts)
    assert report.forgotten_hits == 0
    assert report.equals_fresh_build and report.receipt_digest_is_current


def test_rag_doc_blocks_run_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs/rag.md").read_text(), re.DOTALL)
    assert len(blocks) >= 6
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for block in blocks:
        exec(compile(block, "docs/rag.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "equals a fresh build: True" in out
    assert "refused:" in out and "receipts: 1 True" in out
    assert "reader sees: ['a'] position 3" in out

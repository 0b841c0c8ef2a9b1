"""The RAG example (examples/rag/rag.py) on the real local models: MiniLM embeds the
project's docs, Gemma answers, one source is forgotten through the indexing API."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from langchain_erase import LlamaCppEmbeddings, local_llm

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


def test_rag_example_on_local_models() -> None:
    rag = runpy.run_path(str(ROOT / "examples/rag/rag.py"), run_name="rag_example")
    files = [ROOT / "docs/deploy.md", ROOT / "README.md"]
    report = rag["run"](
        files,
        files[0],
        "How do I deploy the service?",
        LlamaCppEmbeddings(n_threads=2),
        local_llm("gemma-3-270m", n_ctx=2048, n_threads=2, max_tokens=24),
    )
    assert report.answer  # the model said something from the retrieved context
    assert str(files[0]) in report.sources_before  # semantic retrieval found the deploy guide
    assert report.removed_chunks == len(rag["split_markdown"](files[0])) == len(report.receipts)
    assert report.forgotten_hits == 0
    assert report.equals_fresh_build and report.receipt_digest_is_current

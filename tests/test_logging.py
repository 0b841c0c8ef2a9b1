"""Deletions and refits are logged on "langchain_erase" with keyed ids, never content."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_erase import ERASEExampleSelector

EMB = DeterministicFakeEmbedding(size=16)
SECRET = "ann@example.com"
EXAMPLES = [{"input": f"{SECRET} said {i}", "output": f"private {i}"} for i in range(40)]
IDS = [f"{SECRET}/{i}" for i in range(40)]


def test_deletions_and_refits_are_logged_without_ids_or_content(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="langchain_erase")
    sel = ERASEExampleSelector.from_examples(EXAMPLES, EMB, k=3, ids=IDS, input_keys=["input"])
    receipts = sel.delete_examples(IDS[:12])
    sel.add_example({"input": "new one", "output": "x"})
    text = caplog.text
    assert SECRET not in text and "private" not in text and "new one" not in text
    assert "fitted 40 new examples at once" in text
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("deleted")]
    assert len(lines) == 12 and any(r.refit for r in receipts)
    for line, receipt in zip(lines, receipts, strict=True):
        assert f"refit={receipt.refit} reason={receipt.reason}" in line
        assert f"digest_after={receipt.digest_after[:16]}" in line
    # one id, one keyed name within a selector; different ids, different names
    view = sel.view()
    assert view.log_id(IDS[0]) == view.log_id(IDS[0]) != view.log_id(IDS[1])
    assert lines[0].split()[2].rstrip(":") == view.log_id(IDS[0])


def test_with_a_store_logs_name_ids_as_the_change_log_does(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="langchain_erase")
    sel = ERASEExampleSelector.open(tmp_path / "s.db", EMB, k=3, input_keys=["input"])
    sel.add_examples(EXAMPLES[:10], ids=IDS[:10])
    sel.delete_example(IDS[4])
    assert sel.store is not None
    [record] = [c for c in sel.store.changes_after(0) if c.op == "delete"]
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("deleted")]
    assert line.split()[2].rstrip(":") == record.id_key[:16]
    assert SECRET not in caplog.text
    sel.close()


def test_repr_shows_settings_size_and_digest_but_no_content() -> None:
    sel = ERASEExampleSelector.from_examples(
        EXAMPLES, EMB, k=3, ids=IDS, input_keys=["input"], selection="mmr", fetch_k=10
    )
    text = repr(sel)
    assert text.startswith("ERASEExampleSelector(selection='mmr', k=3, fetch_k=10")
    assert "examples=40" in text and "dimension=16" in text and "store=None" in text
    assert sel.state_digest()[:16] in text
    assert SECRET not in text and "private" not in text

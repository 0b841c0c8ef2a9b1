"""Bench measurements that need no LLM: deletion cost vs n and SISA accuracy, on fake
embeddings (the LLM-timing part runs in integration_tests)."""

from __future__ import annotations

import json
from pathlib import Path

from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_erase.evaluation.bench import BenchConfig, deletion_scaling, sisa_accuracy
from langchain_erase.evaluation.sisa import SISAConfig
from langchain_erase.evaluation.tasks import load_task, split_task


def _task(tmp_path: Path) -> Path:
    d = tmp_path / "letters"
    d.mkdir()
    words = [f"{c}word{i}" for i in range(20) for c in "abc"]
    (d / "induce.json").write_text(
        json.dumps(
            {"examples": {str(i): {"input": w, "output": w[0]} for i, w in enumerate(words)}}
        )
    )
    (d / "execute.json").write_text(
        json.dumps(
            {
                "examples": {
                    "1": {"input": "apple", "output": "a"},
                    "2": {"input": "cat", "output": "c"},
                }
            }
        )
    )
    return d


CONFIG = BenchConfig(
    sizes=(20, 40),
    deletions=4,
    k=2,
    llm_queries=2,
    progress=False,
    sisa=SISAConfig(shards=2, slices=2, epochs_per_slice=5),
)


def test_deletion_scaling_measures_every_method(tmp_path: Path) -> None:
    split = split_task(load_task(_task(tmp_path)), seed=0)
    rows = deletion_scaling(split, DeterministicFakeEmbedding(size=16), CONFIG)
    assert [r["n"] for r in rows] == [20, 40]
    for r in rows:
        assert r["deletions"] == 4
        assert 0.0 <= r["erase_refit_rate"] <= 1.0
        assert 0.0 <= r["erase_prefix_change_rate"] <= 1.0
        assert 0.0 <= r["fixed_prefix_change_rate"] <= 1.0
        for key in ("erase_delete_seconds", "faiss_knn_delete_seconds", "sisa_delete_seconds"):
            assert r[key]["mean"] >= 0.0 and r[key]["max"] >= r[key]["median"]


def test_sisa_accuracy_reports_coverage_and_inference_cost(tmp_path: Path) -> None:
    split = split_task(load_task(_task(tmp_path)), seed=0)
    emb = DeterministicFakeEmbedding(size=16)
    row = sisa_accuracy(split, emb, emb, CONFIG)
    assert row["classes"] == 3 and row["label_coverage"] == 1.0
    assert 0.0 <= row["accuracy"] <= 1.0 and row["n_test"] == 2
    assert row["shards_seconds_per_query"] > 0.0

"""SISA fine-tuning the real LLM (LoRA on SmolLM2-135M from its GGUF), tiny: unlearning one
example gives exactly the adapters of a fit without it, and the like-for-like measurement
runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_erase.errors import UnknownExampleError
from langchain_erase.evaluation.sisa_llm import (
    LLMSISAConfig,
    LLMSISAEnsemble,
    load_causal_lm,
    measure_task,
)
from langchain_erase.evaluation.tasks import load_task, split_task
from langchain_erase.llms import resolve_model_path

pytestmark = pytest.mark.integration

WORDS = ["cat", "dog", "car", "book", "tree", "house", "bird", "cup", "pen", "door"]
CONFIG = LLMSISAConfig(shards=1, slices=2, batch_size=4, max_new_tokens=4)


@pytest.fixture(scope="module")
def lm():  # type: ignore[no-untyped-def]
    return load_causal_lm(resolve_model_path("smollm2-135m"), threads=2)


@pytest.fixture
def split(tmp_path: Path):  # type: ignore[no-untyped-def]
    task = tmp_path / "plural"
    task.mkdir()
    pool = {str(i): {"input": w, "output": w + "s"} for i, w in enumerate(WORDS)}
    test = {"1": {"input": "chair", "output": "chairs"}, "2": {"input": "hat", "output": "hats"}}
    (task / "induce.json").write_text(json.dumps({"examples": pool}))
    (task / "execute.json").write_text(json.dumps({"examples": test}))
    return split_task(load_task(task), seed=0)


def test_unlearning_equals_a_fit_without_the_example(lm, split) -> None:  # type: ignore[no-untyped-def]
    ensemble = LLMSISAEnsemble(lm, split.task, CONFIG)
    ensemble.fit(split.train)
    assert ensemble.trained_examples > 0
    initial = ensemble._initial_adapter(0)
    assert any(not torch.equal(a, b) for a, b in zip(ensemble.adapter(0), initial, strict=True))
    victim = split.train[3].id
    deletion = ensemble.delete(victim)
    assert deletion.shard == 0 and deletion.slices_retrained >= 1
    fresh = LLMSISAEnsemble(lm, split.task, CONFIG)
    fresh.fit([e for e in split.train if e.id != victim])
    assert all(
        torch.equal(a, b) for a, b in zip(ensemble.adapter(0), fresh.adapter(0), strict=True)
    )
    vote, answers = ensemble.predict(split.test[0])
    assert answers == [vote]
    with pytest.raises(UnknownExampleError):
        ensemble.delete(victim)


def test_like_for_like_measurement_runs(lm, split) -> None:  # type: ignore[no-untyped-def]
    result = measure_task(
        split,
        lm,
        DeterministicFakeEmbedding(size=16),
        CONFIG,
        pool_size=8,
        queries=2,
        deletions=1,
        k=2,
    )
    assert result["pool_size"] == 8 and result["queries"] == 2
    assert set(result["icl"]) == {"zero-shot", "erase-random", "erase-fixed"}
    assert result["sisa"]["deletion_seconds"] > 0 and result["sisa"]["query_seconds"] > 0
    names = [m["name"] for m in result["cost"]["methods"]]
    assert "ERASE ICL k=2, cached fixed prefix" in names
    assert any(n.startswith("SISA LoRA") for n in names)

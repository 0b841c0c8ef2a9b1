"""The evaluation harness on the real small models: llama.cpp log-likelihoods match a
`logits_all` reference, prefix reuse changes nothing but cost, and a tiny `eval` runs end
to end with Gemma-3-270M and MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_erase.evaluation.bench import BenchConfig, llm_query_costs
from langchain_erase.evaluation.runner import EvalConfig, run_eval
from langchain_erase.evaluation.scoring import LlamaCppScorer, log_softmax_at
from langchain_erase.evaluation.tasks import load_task, split_task
from langchain_erase.llms import load_llama

pytestmark = pytest.mark.integration

PROMPT = "Input: a great movie\nOutput: positive\n\nInput: an awful film\nOutput:"
OPTIONS = [" positive", " negative", " rather mixed feelings"]


def test_option_logprobs_match_logits_all_reference() -> None:
    scorer = LlamaCppScorer(load_llama("smollm2-135m", n_ctx=256, n_threads=2))
    got = scorer.option_logprobs(PROMPT, OPTIONS)
    ref = load_llama("smollm2-135m", n_ctx=256, n_threads=2, logits_all=True)
    for option, value in zip(OPTIONS, got, strict=True):
        prompt = ref.tokenize(PROMPT.encode(), add_bos=True)
        tokens = ref.tokenize(option.encode(), add_bos=False)
        ref.reset()
        ref.eval(prompt + tokens)
        expected = sum(
            log_softmax_at(ref.scores[len(prompt) - 1 + i], t) for i, t in enumerate(tokens)
        )
        assert value == pytest.approx(expected, abs=1e-4)
    assert got[1] > got[0]  # the demonstration's pattern: "awful" reads as negative


def test_prefix_reuse_changes_cost_not_answers() -> None:
    scorer = LlamaCppScorer(load_llama("smollm2-135m", n_ctx=256, n_threads=2))
    second = PROMPT.replace("an awful film", "a dull plot")
    answers, computed = [], []
    for reuse in (True, False):
        scorer.prefix_cache = reuse
        before = scorer.evaluated_tokens
        answers.append([scorer.generate(p, max_tokens=3) for p in (PROMPT, second)])
        computed.append(scorer.evaluated_tokens - before)
    assert answers[0] == answers[1]
    assert computed[0] < computed[1]


WORDS = [
    "cat",
    "dog",
    "car",
    "book",
    "tree",
    "house",
    "bird",
    "cup",
    "pen",
    "door",
    "road",
    "lamp",
    "song",
    "ship",
    "coin",
    "bell",
]


def _plural_task(root: Path) -> Path:
    task = root / "instruction_induction" / "plural"
    task.mkdir(parents=True)
    pool = {str(i): {"input": w, "output": w + "s"} for i, w in enumerate(WORDS)}
    test = {"1": {"input": "chair", "output": "chairs"}, "2": {"input": "hat", "output": "hats"}}
    (task / "induce.json").write_text(json.dumps({"examples": pool}))
    (task / "execute.json").write_text(json.dumps({"examples": test}))
    return task


def test_tiny_eval_end_to_end(tmp_path: Path) -> None:
    _plural_task(tmp_path / "data")
    config = EvalConfig(
        tasks=("plural",),
        ks=(4,),
        selectors=("zero-shot", "erase-centroid"),
        out_dir=tmp_path / "out",
        data_dir=tmp_path / "data",
        n_ctx=512,
        n_threads=2,
        bootstrap=50,
        progress=False,
    )
    results = run_eval(config)
    rows = {r["selector"]: r for r in results["rows"]}
    assert rows["erase-centroid"]["n"] == 2 and rows["erase-centroid"]["accuracy"] == 1.0
    assert (config.out_dir / "accuracy.png").exists()


def test_cached_centroid_prefix_computes_fewer_tokens(tmp_path: Path) -> None:
    split = split_task(load_task(_plural_task(tmp_path)), seed=0)
    scorer = LlamaCppScorer(load_llama("smollm2-135m", n_ctx=512, n_threads=2))
    costs = llm_query_costs(
        split, scorer, DeterministicFakeEmbedding(size=16), BenchConfig(k=4, llm_queries=2)
    )
    assert costs["centroid"]["evaluated_tokens"] < costs["random"]["evaluated_tokens"]
    assert costs["random"]["evaluated_tokens"] == costs["random"]["prompt_tokens"]

"""The comparison runner on fake embeddings and a fake LLM: every configuration is scored on
the same split, results are cached and resumed, and the reports are written."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_erase.errors import StateFileError
from langchain_erase.evaluation.runner import (
    SELECTOR_NAMES,
    EvalConfig,
    ResultCache,
    bootstrap_interval,
    build_selector,
    erase_variant,
    run_eval,
)
from langchain_erase.evaluation.tasks import Example


class CopyLastDemoLM:
    """Answers with the output of the last demonstration in the prompt (or 'none')."""

    def __init__(self) -> None:
        self.calls = 0

    def option_logprobs(self, prompt: str, options: Sequence[str]) -> list[float]:
        raise AssertionError("exact-match task only")

    def generate(self, prompt: str, *, max_tokens: int) -> str:
        self.calls += 1
        outputs = prompt.split("\nOutput:")[:-1]
        return outputs[-1].split("\n", 1)[0] if outputs else "none"

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 1


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data" / "instruction_induction" / "parity"
    d.mkdir(parents=True)
    pool = {
        str(i): {"input": f"number {i}", "output": "even" if i % 2 == 0 else "odd"}
        for i in range(40)
    }
    test = {str(i): {"input": f"number {i}", "output": "even"} for i in range(100, 106)}
    (d / "induce.json").write_text(json.dumps({"examples": pool}))
    (d / "execute.json").write_text(json.dumps({"examples": test}))
    return tmp_path / "data"


POOL = [{"id": f"p{i}", "input": f"text {i}", "output": str(i % 3)} for i in range(30)]
QUERY = Example("q", "text 7", "1", ("1",))


@pytest.mark.parametrize("name", SELECTOR_NAMES)
def test_every_selector_returns_k_pool_examples(name: str) -> None:
    select = build_selector(name, 4, POOL, DeterministicFakeEmbedding(size=16), seed=0)
    demos = select(QUERY)
    assert len(demos) == (0 if name == "zero-shot" else 4)
    assert all(d in POOL for d in demos)


def test_random_demonstrations_are_reproducible_per_query() -> None:
    a = build_selector("random", 3, POOL, DeterministicFakeEmbedding(size=8), seed=1)
    b = build_selector("random", 3, POOL, DeterministicFakeEmbedding(size=8), seed=1)
    assert a(QUERY) == b(QUERY)


def test_bootstrap_interval_brackets_the_mean() -> None:
    lo, hi = bootstrap_interval([True] * 30 + [False] * 10, 500, np.random.default_rng(0))
    assert lo < 0.75 < hi
    assert bootstrap_interval([True] * 5, 100, np.random.default_rng(0)) == (1.0, 1.0)


def test_run_eval_scores_all_configurations_and_resumes(task_dir: Path, tmp_path: Path) -> None:
    config = EvalConfig(
        tasks=("parity",),
        ks=(1, 2),
        seeds=(0, 1),
        limit=4,
        out_dir=tmp_path / "out",
        data_dir=task_dir,
        bootstrap=100,
        progress=False,
    )
    lm = CopyLastDemoLM()
    emb = DeterministicFakeEmbedding(size=16)
    results = run_eval(config, lm=lm, embeddings=emb)
    n_configs = 1 + 2 * (len(SELECTOR_NAMES) - 1)
    assert lm.calls == n_configs * 4 * 2
    assert len(results["rows"]) == n_configs
    assert results["aggregate"]["k"] == 2
    assert set(results["aggregate"]["overall"]["selectors"]) == set(SELECTOR_NAMES)
    zero = next(r for r in results["rows"] if r["selector"] == "zero-shot")
    assert zero["accuracy"] == 0.0 and zero["n"] == 8
    assert results["baselines"]["parity"] == 1.0  # majority 'even' (ties to first seen)
    assert {s["seed"] for s in results["splits"]} == {0, 1}
    for name in ("results.json", "results.md", "accuracy.png"):
        assert (config.out_dir / name).stat().st_size > 0
    again = CopyLastDemoLM()
    assert run_eval(config, lm=again, embeddings=emb)["rows"] == results["rows"]
    assert again.calls == 0


def _eval_config(task_dir: Path, out: Path) -> EvalConfig:
    return EvalConfig(
        tasks=("parity",),
        ks=(1,),
        seeds=(0,),
        limit=3,
        selectors=("random",),
        out_dir=out,
        data_dir=task_dir,
        bootstrap=10,
        progress=False,
    )


def test_torn_last_line_of_the_results_cache_is_recomputed_on_resume(
    task_dir: Path, tmp_path: Path
) -> None:
    # a full disk cut the last append short: every resumed run crashed on that line
    config = _eval_config(task_dir, tmp_path / "out")
    emb = DeterministicFakeEmbedding(size=16)
    first = run_eval(config, lm=CopyLastDemoLM(), embeddings=emb)
    (cache,) = (config.out_dir / "cache").rglob("*.jsonl")
    lines = cache.read_bytes().splitlines(keepends=True)
    assert len(lines) == 3
    untimed = [_without_seconds(row) for row in first["rows"]]
    for torn in (lines[-1][:-1], lines[-1][:25], lines[-1][:1]):
        cache.write_bytes(b"".join(lines[:-1]) + torn)
        lm = CopyLastDemoLM()
        rows = run_eval(config, lm=lm, embeddings=emb)["rows"]
        assert [_without_seconds(row) for row in rows] == untimed
        assert lm.calls == (0 if torn == lines[-1][:-1] else 1)
        resumed = cache.read_bytes().splitlines(keepends=True)
        assert resumed[:-1] == lines[:-1] and len(resumed) == 3
        assert _without_seconds(json.loads(resumed[-1])) == _without_seconds(json.loads(lines[-1]))


def _without_seconds(row: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in row.items() if "seconds" not in key}


def test_damaged_line_inside_the_results_cache_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    line = json.dumps(
        {
            "selector": "random",
            "k": 1,
            "example_id": "1",
            "correct": True,
            "prediction": "a",
            "prompt_tokens": 3,
            "seconds": 0.1,
        }
    )
    for damaged in ("{not json", '{"selector": "random"}', "[1, 2]", "\udcff"):
        path.write_bytes(
            b"\n".join([line.encode(), damaged.encode("utf-8", "surrogateescape"), line.encode()])
            + b"\n"
        )
        with pytest.raises(StateFileError, match="line 2"):
            ResultCache(path)
    path.write_text(line + "\n" + line[:-2], encoding="utf-8")
    assert ResultCache(path).get("random", 1, "1") is not None
    assert path.read_text(encoding="utf-8") == line + "\n"


def test_erase_variants_carry_p_and_epsilon() -> None:
    from langchain_erase import ERASEExampleSelector

    emb = DeterministicFakeEmbedding(size=64)
    assert erase_variant("random", 16, 0.5) == "erase-random:p=16:epsilon=0.5"
    queries = [Example(f"q{i}", f"text {i}", "x", ("x",)) for i in range(12)]

    def picks(select: object) -> list[list[dict[str, str]]]:
        return [select(q) for q in queries]  # type: ignore[operator]

    plain = picks(build_selector("erase-random", 4, POOL, emb, seed=0))
    changed = False
    for p, eps in ((4, 0.125), (32, 0.5)):
        got = picks(build_selector(erase_variant("random", p, eps), 4, POOL, emb, seed=0))
        direct = ERASEExampleSelector.from_examples(
            POOL,
            emb,
            k=4,
            seed=0,
            input_keys=["input"],
            ids=[d["id"] for d in POOL],
            p=p,
            epsilon=eps,
        )
        assert got == [direct.select_examples({"input": q.input}) for q in queries]
        changed |= got != plain
    assert changed
    with pytest.raises(ValueError, match="unknown ERASE parameter"):
        build_selector("erase-random:gamma=0.1", 4, POOL, emb, seed=0)

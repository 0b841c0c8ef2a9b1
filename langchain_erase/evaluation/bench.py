"""`langchain-erase bench`: measured unlearning cost of ERASE against its alternatives, SISA's
accuracy next to ERASE's, and the holistic cost built from these measurements.

1. Deletion cost vs n on one task's pool (real embeddings): ERASE deletions (refits included,
   centroid mode, so we also see how often a deletion changes the cached prefix), refitting
   from scratch, LangChain's FAISS-backed kNN selector's delete, and a SISA deletion.
2. SISA (softmax regression on the same frozen embeddings) trained per task on the same
   split as `eval`; accuracy, label coverage and per-query inference seconds of its S shards.
3. The LLM's per-query cost with k demonstrations, re-evaluating the prompt each time vs
   reusing a cached centroid-mode demonstration prefix, measured with llama.cpp.
4. `langchain_erase.evaluation.cost.holistic_cost` on these inputs, and a FLOP projection to
   larger LLMs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from tqdm.auto import tqdm

from langchain_erase.core.buckets import SelectionMode
from langchain_erase.evaluation.cost import (
    CostInputs,
    ICLMeasurement,
    ProjectionInputs,
    SISAMeasurement,
    holistic_cost,
    project_flops,
)
from langchain_erase.evaluation.embedding_cache import CachedEmbeddings
from langchain_erase.evaluation.runner import DEFAULT_TASKS
from langchain_erase.evaluation.scoring import LlamaCppScorer
from langchain_erase.evaluation.sisa import SISAConfig, SISAEnsemble
from langchain_erase.evaluation.tasks import DEFAULT_DATA_DIR, Split, load_task, split_task

__all__ = [
    "BenchConfig",
    "deletion_scaling",
    "llm_query_costs",
    "run_bench",
    "sisa_accuracy",
]

PROJECTED_PARAMETERS = (270e6, 1e9, 8e9, 70e9)


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run; every field is written into the results."""

    model: str = "gemma-3-270m"
    pool_task: str = "first_word_letter"
    sizes: tuple[int, ...] = (250, 500, 1000, 2000, 3000)
    deletions: int = 30
    k: int = 4
    seed: int = 0
    tasks: tuple[str, ...] = DEFAULT_TASKS
    limit: int | None = None
    llm_queries: int = 20
    sisa: SISAConfig = field(default_factory=SISAConfig)
    out_dir: Path = Path("results/bench")
    eval_results: Path = Path("results/eval/results.json")
    embedding_cache: Path = Path("results/eval/cache/embeddings-minilm.npz")
    data_dir: Path = DEFAULT_DATA_DIR
    n_ctx: int = 4096
    n_threads: int | None = None
    progress: bool = True


def _stats(seconds: Sequence[float]) -> dict[str, float]:
    a = np.asarray(seconds, dtype=np.float64)
    return {
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
    }


def deletion_scaling(
    split: Split, embeddings: Embeddings, config: BenchConfig
) -> list[dict[str, Any]]:
    """Per pool size n: seconds per deletion for ERASE, a from-scratch refit, FAISS kNN and
    SISA, on the same uniformly drawn deletions; ERASE's refit and prefix-change rates."""
    from langchain_community.vectorstores import FAISS
    from langchain_core.example_selectors import SemanticSimilarityExampleSelector

    from langchain_erase import ERASEExampleSelector

    rng = np.random.default_rng(config.seed)
    rows = []
    for n in tqdm(config.sizes, desc="deletion cost vs n", disable=not config.progress):
        pool = [split.train[i].as_dict() for i in sorted(rng.permutation(len(split.train))[:n])]
        ids = [d["id"] for d in pool]
        embeddings.embed_documents([d["input"] for d in pool])  # warm the cache, untimed

        def fit(
            selection: SelectionMode, pool: list[dict[str, str]] = pool, ids: list[str] = ids
        ) -> ERASEExampleSelector:
            return ERASEExampleSelector.from_examples(
                pool,
                embeddings,
                k=config.k,
                seed=config.seed,
                input_keys=["input"],
                ids=ids,
                selection=selection,
            )

        start = time.perf_counter()
        erase = fit("centroid")
        fit_seconds = time.perf_counter() - start
        fixed = fit("fixed")
        knn = SemanticSimilarityExampleSelector.from_examples(
            pool, embeddings, FAISS, k=config.k, input_keys=["input"], ids=ids
        )
        x = np.array(embeddings.embed_documents([d["input"] for d in pool]))
        sisa = SISAEnsemble(config.sisa, [d["output"] for d in pool])
        sisa.fit(ids, x, [d["output"] for d in pool])
        victims = [ids[i] for i in rng.choice(n, size=min(config.deletions, n - 1), replace=False)]
        erase_s, knn_s, sisa_s, refits, prefix_changes, fixed_changes = [], [], [], 0, 0, 0
        probe = {"input": pool[0]["input"]}
        for victim in victims:
            before, fixed_before = erase.select_examples(probe), fixed.select_examples(probe)
            receipt = erase.delete_example(victim)
            erase_s.append(receipt.seconds)
            refits += receipt.refit
            prefix_changes += erase.select_examples(probe) != before
            fixed.delete_example(victim)
            fixed_changes += fixed.select_examples(probe) != fixed_before
            start = time.perf_counter()
            knn.vectorstore.delete([victim])
            knn_s.append(time.perf_counter() - start)
            sisa_s.append(sisa.delete(victim).seconds)
        rows.append(
            {
                "n": n,
                "deletions": len(victims),
                "erase_delete_seconds": _stats(erase_s),
                "erase_refit_rate": refits / len(victims),
                "erase_prefix_change_rate": prefix_changes / len(victims),
                "fixed_prefix_change_rate": fixed_changes / len(victims),
                "refit_from_scratch_seconds": fit_seconds,
                "faiss_knn_delete_seconds": _stats(knn_s),
                "sisa_delete_seconds": _stats(sisa_s),
            }
        )
    return rows


def sisa_accuracy(
    split: Split, embeddings: Embeddings, inner: Embeddings, config: BenchConfig
) -> dict[str, Any]:
    """SISA on `split`: accuracy, share of test answers among its classes, and per-query
    inference seconds (one fresh embedding, shared; the S shard models)."""
    train_x = np.array(embeddings.embed_documents([e.input for e in split.train]))
    test_x = np.array(embeddings.embed_documents([e.input for e in split.test]))
    labels = [e.output for e in split.train]
    model = SISAEnsemble(config.sisa, labels)
    start = time.perf_counter()
    model.fit([e.id for e in split.train], train_x, labels)
    fit_seconds = time.perf_counter() - start
    options = [e.options for e in split.test] if split.task.kind == "multiple_choice" else None
    predictions = model.predict(test_x, options)
    correct = [p in e.answers for p, e in zip(predictions, split.test, strict=True)]
    queries = split.test[: config.llm_queries]
    inner.embed_query("warm-up")  # loads the model on first use: not a per-query cost
    start = time.perf_counter()
    for e in queries:
        inner.embed_query(e.input)
    embed_seconds = (time.perf_counter() - start) / len(queries)
    start = time.perf_counter()
    for row in test_x[: len(queries)]:
        model.shard_probabilities(row[None, :])
    heads_seconds = (time.perf_counter() - start) / len(queries)
    return {
        "task": split.task.name,
        "seed": split.seed,
        "n_train": len(split.train),
        "n_test": len(split.test),
        "classes": len(model.classes),
        "label_coverage": float(np.mean([e.output in model.classes for e in split.test])),
        "accuracy": float(np.mean(correct)),
        "fit_seconds": fit_seconds,
        "embed_seconds_per_query": embed_seconds,
        "shards_seconds_per_query": heads_seconds,
    }


def llm_query_costs(
    split: Split, scorer: LlamaCppScorer, embeddings: Embeddings, config: BenchConfig
) -> dict[str, Any]:
    """Per-query LLM cost with k demonstrations: (a) ERASE random mode, every prompt evaluated
    from scratch; (b) ERASE centroid mode reusing the cached demonstration prefix."""
    from langchain_erase import ERASEExampleSelector

    pool = [e.as_dict() for e in split.train]
    queries = split.test[: config.llm_queries]
    regimes: dict[str, dict[str, float]] = {}
    modes: tuple[tuple[SelectionMode, bool], ...] = (("random", False), ("centroid", True))
    for mode, cached in modes:
        selector = ERASEExampleSelector.from_examples(
            pool,
            embeddings,
            k=config.k,
            seed=config.seed,
            input_keys=["input"],
            ids=[d["id"] for d in pool],
            selection=mode,
        )
        prompts = [
            split.task.prompt(selector.select_examples({"input": q.input}), q) for q in queries
        ]
        scorer.prefill(prompts[0].rstrip(" "))  # warm-up (and, cached, the shared prefix)
        tokens, prefill_s, answer_s, full = [], [], [], []
        for prompt in prompts:
            body = prompt.rstrip(" ")
            scorer.prefix_cache = cached
            start = time.perf_counter()
            tokens.append(scorer.prefill(body))
            prefill_s.append(time.perf_counter() - start)
            scorer.prefix_cache = True  # the prompt is cached now: time the decoding alone
            start = time.perf_counter()
            scorer.generate(body, max_tokens=4)
            answer_s.append(time.perf_counter() - start)
            full.append(scorer.count_tokens(body))
        regimes[mode] = {
            "prompt_tokens": float(np.mean(full)),
            "evaluated_tokens": float(np.mean(tokens)),
            "prefill_seconds": float(np.mean(prefill_s)),
            "answer_seconds": float(np.mean(answer_s)),
            "seconds_per_token": float(np.sum(prefill_s) / max(1, np.sum(tokens))),
        }
    return regimes


def _cost_inputs(
    config: BenchConfig, scaling: dict[str, Any], llm: dict[str, Any], sisa: dict[str, Any]
) -> CostInputs:
    uncached, cached = llm["random"], llm["centroid"]
    return CostInputs(
        model=config.model,
        icl=ICLMeasurement(
            k=config.k,
            prompt_tokens=uncached["prompt_tokens"],
            query_tokens=cached["evaluated_tokens"],
            seconds_per_token=uncached["seconds_per_token"],
            answer_seconds=uncached["answer_seconds"],
            deletion_seconds=scaling["erase_delete_seconds"]["mean"],
            refit_probability=scaling["erase_refit_rate"],
            prefix_invalidation_probability=scaling["erase_prefix_change_rate"],
            fixed_prefix_invalidation_probability=scaling["fixed_prefix_change_rate"],
            fit_seconds=scaling["refit_from_scratch_seconds"],
        ),
        sisa=SISAMeasurement(
            shards=config.sisa.shards,
            slices=config.sisa.slices,
            retrain_seconds=scaling["sisa_delete_seconds"]["mean"],
            infer_seconds_per_model=sisa["shards_seconds_per_query"] / config.sisa.shards,
            shared_infer_seconds=sisa["embed_seconds_per_query"],
        ),
    )


def _erase_accuracy(path: Path, k: int, seed: int) -> dict[str, dict[str, float]]:
    """ICL accuracy per task and selector (k demonstrations, and zero-shot) on the split of
    `seed`, the one SISA is trained on, from an `eval` results file if there is one."""
    if not path.exists():
        return {}
    out: dict[str, dict[str, float]] = {}
    for row in json.loads(path.read_text(encoding="utf-8"))["rows"]:
        if row["k"] in (0, k) and str(seed) in row["per_seed_accuracy"]:
            out.setdefault(row["task"], {})[row["selector"]] = row["per_seed_accuracy"][str(seed)]
    return out


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _markdown(results: dict[str, Any]) -> str:
    load = results["load_average"]
    lines = [
        f"Model `{results['config']['model']}`; {load['cpus']} CPUs, 1-minute load average "
        f"{load['start'][0]:.1f} at start and {load['end'][0]:.1f} at end (timings from a "
        "shared machine are inflated by other processes).",
        "",
        "### Deletion cost vs n (seconds per deletion, mean / p95)",
        "",
        "| n | ERASE delete | ERASE refit rate | centroid prefix changed "
        "| fixed prefix changed | refit from scratch | FAISS kNN delete | SISA delete |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["scaling"]:
        e, f, s = (
            r["erase_delete_seconds"],
            r["faiss_knn_delete_seconds"],
            r["sisa_delete_seconds"],
        )
        lines.append(
            f"| {r['n']} | {_fmt(e['mean'])} / {_fmt(e['p95'])} | {r['erase_refit_rate']:.0%} "
            f"| {r['erase_prefix_change_rate']:.0%} | {r['fixed_prefix_change_rate']:.0%} "
            f"| {_fmt(r['refit_from_scratch_seconds'])} "
            f"| {_fmt(f['mean'])} / {_fmt(f['p95'])} | {_fmt(s['mean'])} / {_fmt(s['p95'])} |"
        )
    k, seed = results["config"]["k"], results["config"]["seed"]
    icl = ("zero-shot", "random", "knn", "erase-random", "erase-centroid", "erase-similar")
    lines += [
        "",
        f"### SISA accuracy next to ICL (k={k}, zero-shot k=0) on the same split (seed {seed})",
        "",
        "| task | SISA | label coverage | " + " | ".join(icl) + " |",
        "|---" * (3 + len(icl)) + "|",
    ]
    for r in results["sisa"]:
        acc = results["erase_accuracy"].get(r["task"], {})
        cells = [f"{100 * acc[m]:.0f}%" if m in acc else "–" for m in icl]
        lines.append(
            f"| {r['task']} | {100 * r['accuracy']:.0f}% (n={r['n_test']}) "
            f"| {100 * r['label_coverage']:.0f}% | " + " | ".join(cells) + " |"
        )
    llm = results["llm_query_costs"]
    lines += [
        "",
        f"### LLM per-query cost, k={k} (measured)",
        "",
        "| regime | prompt tokens | tokens computed | prefill | answer | s/token |",
        "|---|---|---|---|---|---|",
    ]
    for mode, label in (("random", "no prefix reuse"), ("centroid", "cached centroid prefix")):
        m = llm[mode]
        lines.append(
            f"| {label} | {m['prompt_tokens']:.0f} | {m['evaluated_tokens']:.0f} | "
            f"{_fmt(m['prefill_seconds'])} | {_fmt(m['answer_seconds'])} | "
            f"{_fmt(m['seconds_per_token'])} |"
        )
    report = results["cost"]
    lines += [
        "",
        "### Holistic cost (measured inputs): seconds per unit",
        "",
        "| method | per unlearning request | per query |",
        "|---|---|---|",
    ]
    lines += [
        f"| {m['name']} | {_fmt(m['unlearn_seconds'])} | {_fmt(m['infer_seconds'])} |"
        for m in report["methods"]
    ]
    lines += ["", "| first | second | first is cheaper when |", "|---|---|---|"]
    for b in report["break_even"]:
        when = (
            f"U/Q {'>' if b['first_cheaper_when'] == 'above' else '<'} {b['ratio']:.3g}"
            if b["ratio"] is not None
            else b["first_cheaper_when"]
        )
        lines.append(f"| {b['first']} | {b['second']} | {when} |")
    lines += [
        "",
        "### FLOP projection to larger LLMs (a projection, not a measurement)",
        "",
        "| parameters | ICL / query | ICL cached / query | SISA / query | "
        "SISA / deletion | ICL cheaper than SISA when |",
        "|---|---|---|---|---|---|",
    ]
    for p in results["projection"]:
        b = p["icl_vs_sisa"]
        lines.append(
            f"| {p['parameters']:.3g} | {p['icl_infer_flops']:.3g} | "
            f"{p['icl_cached_infer_flops']:.3g} | {p['sisa_infer_flops']:.3g} | "
            f"{p['sisa_unlearn_flops']:.3g} | U/Q > {b['ratio']:.3g} |"
        )
    return "\n".join(lines) + "\n"


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["scaling"]
    n = [r["n"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    series = {
        "ERASE delete (mean)": [r["erase_delete_seconds"]["mean"] for r in rows],
        "ERASE delete (p95)": [r["erase_delete_seconds"]["p95"] for r in rows],
        "refit from scratch": [r["refit_from_scratch_seconds"] for r in rows],
        "FAISS kNN delete (mean)": [r["faiss_knn_delete_seconds"]["mean"] for r in rows],
        "SISA delete (mean)": [r["sisa_delete_seconds"]["mean"] for r in rows],
    }
    for label, values in series.items():
        ax.plot(n, values, marker="o", ms=3, lw=1, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("examples n")
    ax.set_ylabel("seconds per deletion")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run_bench(
    config: BenchConfig, embeddings: Embeddings | None = None, command: Iterable[str] = ()
) -> dict[str, Any]:
    """Run every measurement and write bench.json, bench.md and deletion_cost.png."""
    from langchain_erase.embeddings import LlamaCppEmbeddings
    from langchain_erase.llms import load_llama

    load_before = os.getloadavg()
    inner = LlamaCppEmbeddings(n_threads=config.n_threads)
    embeddings = embeddings or CachedEmbeddings(inner, config.embedding_cache)
    pool_split = split_task(load_task(config.pool_task, config.data_dir), config.seed)
    if max(config.sizes) > len(pool_split.train):
        raise ValueError(f"{config.pool_task} has only {len(pool_split.train)} examples")
    scaling = deletion_scaling(pool_split, embeddings, config)
    sisa = [
        sisa_accuracy(
            split_task(load_task(t, config.data_dir), config.seed, limit=config.limit),
            embeddings,
            inner,
            config,
        )
        for t in tqdm(config.tasks, desc="SISA accuracy", disable=not config.progress)
    ]
    scorer = LlamaCppScorer(
        load_llama(
            config.model,
            n_ctx=config.n_ctx,
            n_threads=config.n_threads,
        )
    )
    llm = llm_query_costs(pool_split, scorer, embeddings, config)
    if isinstance(embeddings, CachedEmbeddings):
        embeddings.save()
    largest = scaling[-1]
    pool_sisa = next((s for s in sisa if s["task"] == config.pool_task), sisa[0])
    inputs = _cost_inputs(config, largest, llm, pool_sisa)
    tokens_per_example = float(
        np.mean([scorer.count_tokens(f"{e.input} {e.output}") for e in pool_split.train[:200]])
    )
    projection = [
        project_flops(
            ProjectionInputs(
                parameters=p,
                prompt_tokens=inputs.icl.prompt_tokens,
                query_tokens=inputs.icl.query_tokens,
                train_examples=largest["n"],
                tokens_per_example=tokens_per_example,
                shards=config.sisa.shards,
                slices=config.sisa.slices,
                prefix_invalidation_probability=inputs.icl.prefix_invalidation_probability or 0.0,
            )
        ).model_dump()
        for p in PROJECTED_PARAMETERS
    ]
    results = {
        "command": list(command),
        "config": {
            k: (
                v.model_dump()
                if isinstance(v, SISAConfig)
                else str(v)
                if isinstance(v, Path)
                else v
            )
            for k, v in asdict(config).items()
        },
        "scaling": scaling,
        "sisa": sisa,
        "erase_accuracy": _erase_accuracy(config.eval_results, config.k, config.seed),
        "llm_query_costs": llm,
        "cost": holistic_cost(inputs).model_dump(),
        "projection": projection,
        "load_average": {"start": load_before, "end": os.getloadavg(), "cpus": os.cpu_count()},
    }
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "bench.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    (config.out_dir / "bench.md").write_text(_markdown(results), encoding="utf-8")
    _plot(results, config.out_dir / "deletion_cost.png")
    return results

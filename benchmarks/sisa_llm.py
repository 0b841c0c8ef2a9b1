"""SISA fine-tuning the LLM itself (LoRA adapters on SmolLM2-135M) against ERASE's ICL with
the same model, weights and runtime: accuracy, seconds to unlearn one example, seconds per
query, and the holistic cost's break-even U/Q from these measurements.

Usage (resumable: a task whose JSON is in --out is not run again):
    python benchmarks/sisa_llm.py --tasks sentiment singular_to_plural --pool-size 64 \
        --queries 40 --deletions 3 --shards 2 --slices 2
Needs the `sisa-llm` extra. Writes --out/<task>-seed<s>.json and --out/sisa_llm.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from langchain_erase.evaluation.embedding_cache import CachedEmbeddings
from langchain_erase.evaluation.sisa_llm import LLMSISAConfig, load_causal_lm, measure_task
from langchain_erase.evaluation.tasks import DEFAULT_DATA_DIR, load_task, split_task
from langchain_erase.llms import resolve_model_path


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def markdown(results: list[dict[str, Any]]) -> str:
    """The like-for-like table and each task's break-even against SISA."""
    lines = [
        "| task | pool | n | zero-shot | ERASE random k=4 | ERASE fixed k=4 | SISA LoRA vote "
        "| SISA fit | SISA unlearn / request | SISA / query | ERASE fixed / query "
        "| ERASE fixed cheaper when |",
        "|---" * 12 + "|",
    ]
    for r in results:
        icl, sisa = r["icl"], r["sisa"]
        methods = {m["name"]: m for m in r["cost"]["methods"]}
        fixed = next(m for m in methods.values() if m["name"].endswith("cached fixed prefix"))
        sisa_name = next(n for n in methods if n.startswith("SISA"))
        be = next(
            b
            for b in r["cost"]["break_even"]
            if b["first"] == fixed["name"] and b["second"] == sisa_name
        )
        when = (
            f"U/Q {'>' if be['first_cheaper_when'] == 'above' else '<'} {be['ratio']:.3g}"
            if be["ratio"] is not None
            else be["first_cheaper_when"]
        )
        lines.append(
            f"| {r['task']} | {r['pool_size']} | {r['queries']} "
            f"| {100 * icl['zero-shot']['accuracy']:.0f}% "
            f"| {100 * icl['erase-random']['accuracy']:.0f}% "
            f"| {100 * icl['erase-fixed']['accuracy']:.0f}% | {100 * sisa['accuracy']:.0f}% "
            f"| {_fmt(sisa['fit_seconds'])} | {_fmt(sisa['deletion_seconds'])} "
            f"| {_fmt(sisa['query_seconds'])} | {_fmt(fixed['infer_seconds'])} | {when} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["sentiment"])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool-size", type=int, default=64)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--deletions", type=int, default=3)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--slices", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per slice")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, default=Path("results/sisa-llm"))
    args = parser.parse_args()
    config = LLMSISAConfig(
        shards=args.shards, slices=args.slices, epochs_per_slice=args.epochs, seed=args.seed
    )
    args.out.mkdir(parents=True, exist_ok=True)
    lm = None
    from langchain_erase.embeddings import LlamaCppEmbeddings

    embeddings = CachedEmbeddings(
        LlamaCppEmbeddings(n_threads=args.threads), args.out / "embeddings-minilm.npz"
    )
    for name in args.tasks:
        path = args.out / f"{name}-seed{args.seed}.json"
        if path.exists():
            continue
        lm = lm or load_causal_lm(resolve_model_path(args.model), threads=args.threads)
        load = os.getloadavg()
        start = time.time()
        split = split_task(load_task(name, args.data_dir), args.seed)
        result = measure_task(
            split,
            lm,
            embeddings,
            config,
            pool_size=args.pool_size,
            queries=args.queries,
            deletions=args.deletions,
        )
        embeddings.save()
        result |= {
            "config": config.model_dump(),
            "command": ["python", *sys.argv],
            "wall_seconds": time.time() - start,
            "load_average": {"start": load, "end": os.getloadavg(), "cpus": os.cpu_count()},
        }
        path.write_text(json.dumps(result, indent=1), encoding="utf-8")
        print(f"{name}: {json.dumps(result['sisa'])}", flush=True)
    results = [json.loads(p.read_text()) for p in sorted(args.out.glob("*-seed*.json"))]
    (args.out / "sisa_llm.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

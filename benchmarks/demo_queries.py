"""The demo's three queries (`langchain-erase demo`) over selection modes, k and seeds.

How often does the demo's prompt get all three reviews right, per selection mode and k, when
the seed (ERASE's clustering and draws) changes? Uses the demo's own data, prompt and model
(`langchain_erase.cli.main`); the pool is embedded once. Three queries illustrate, they do
not measure accuracy: docs/results.md does that on the task's held-out queries.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/demo_queries.py --modes similar random --k 4 8 \
        --seeds 10 --n-threads 1
Prints one line per run and a markdown table (with the load average before and after).
"""

from __future__ import annotations

import argparse
import os
import time

from langchain_erase import ERASEExampleSelector, LlamaCppEmbeddings
from langchain_erase.cli.main import (
    DEMO_QUERIES,
    demo_chain,
    demo_llm,
    is_right,
    load_demo_examples,
)
from langchain_erase.core.index import SELECTION_MODES
from langchain_erase.evaluation.embedding_cache import CachedEmbeddings


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    """Run every (mode, k, seed) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", nargs="+", choices=SELECTION_MODES, default=["similar"])
    parser.add_argument("--k", nargs="+", type=int, default=[4])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1")
    parser.add_argument("--limit", type=int, default=400, help="demonstrations (demo default)")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--n-threads", type=int, default=1)
    args = parser.parse_args()

    load_before, started = _load(), time.perf_counter()
    _, examples = load_demo_examples(None, args.limit)
    embeddings = CachedEmbeddings(LlamaCppEmbeddings(n_threads=args.n_threads))
    embeddings.embed_documents([e["input"] for e in examples])
    llm = demo_llm(args.model, n_threads=args.n_threads, n_gpu_layers=0)
    rows = []
    for k in args.k:
        for mode in args.modes:
            per_seed = []
            for seed in range(args.seeds):
                selector = ERASEExampleSelector.from_examples(
                    examples, embeddings, k=k, seed=seed, input_keys=["input"], selection=mode
                )
                _, chain = demo_chain(selector, llm)
                answers = [chain.invoke({"input": query}) for query, _ in DEMO_QUERIES]
                right = sum(is_right(a, e) for a, (_, e) in zip(answers, DEMO_QUERIES, strict=True))
                per_seed.append(right)
                print(f"{mode} k={k} seed={seed}: {answers} ({right}/3)", flush=True)
            rows.append((mode, k, sum(per_seed), sum(r == 3 for r in per_seed)))
    print(
        f"\n{len(examples)} demonstrations, {args.model}, seeds 0-{args.seeds - 1}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"n_threads={args.n_threads}; load average {load_before} before, {_load()} after; "
        f"{time.perf_counter() - started:.0f} s\n"
    )
    print("| selection | k | answers right | seeds with all three right |")
    print("|---|---|---|---|")
    for mode, k, right, all_three in rows:
        print(f"| {mode} | {k} | {right}/{3 * args.seeds} | {all_three}/{args.seeds} |")


if __name__ == "__main__":
    main()

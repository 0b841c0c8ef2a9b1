"""Selection latency of every ERASE mode, with LangChain's FAISS kNN/MMR selectors for reference.

On the clustered synthetic unit vectors of bench_selector.py (queries embedded by lookup, so
no model cost), for each n: select p50/p99 of ERASE `random`, `centroid`, `similar`, `knn`
and `mmr` (k=4, fetch_k=20, lambda_mult=0.5), the deletion p50 of `knn`/`mmr` selectors,
and select p50/p99 of `SemanticSimilarityExampleSelector` / `MaxMarginalRelevanceExampleSelector`
on langchain-community's FAISS store.

Usage:  python benchmarks/bench_selection_modes.py --sizes 1000 10000 50000 \
            --out docs/bench_selection_modes.json
Writes JSON and prints a markdown table (docs/bench_selection_modes.md quotes it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
from bench_selector import percentile, timed, workload

from langchain_erase import ERASEExampleSelector

MODES = ("random", "centroid", "similar", "knn", "mmr")


def select_latencies(selector: Any, queries: int) -> tuple[float, float]:
    """p50 and p99 seconds of `select_examples` over `queries` distinct queries."""
    times = [
        timed(lambda q=q: selector.select_examples({"input": f"q {q}"}))[0] for q in range(queries)
    ]
    return percentile(times, 50), percentile(times, 99)


def bench_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    vectors, emb, examples, ids = workload(n, args)
    row: dict[str, Any] = {"n": n}
    for mode in MODES:
        sel = ERASEExampleSelector.from_examples(
            examples, emb, k=args.k, ids=ids, vectors=vectors, input_keys=["input"], selection=mode
        )
        row[f"{mode}_p50_s"], row[f"{mode}_p99_s"] = select_latencies(sel, args.queries)
        if mode in ("knn", "mmr"):
            victims = np.random.default_rng(0).choice(
                n, size=min(args.deletions, n // 2), replace=False
            )
            seconds = [sel.delete_example(ids[v]).seconds for v in victims.tolist()]
            row[f"{mode}_delete_p50_s"] = percentile(seconds, 50)
    from langchain_community.vectorstores import FAISS
    from langchain_core.example_selectors import (
        MaxMarginalRelevanceExampleSelector,
        SemanticSimilarityExampleSelector,
    )

    store = FAISS.from_embeddings(
        [(e["input"], v.tolist()) for e, v in zip(examples, vectors, strict=True)],
        emb,
        metadatas=examples,
    )
    for name, cls in (
        ("lc_knn", SemanticSimilarityExampleSelector),
        ("lc_mmr", MaxMarginalRelevanceExampleSelector),
    ):
        lc = cls(vectorstore=store, k=args.k, input_keys=["input"])
        row[f"{name}_p50_s"], row[f"{name}_p99_s"] = select_latencies(lc, args.queries)
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    def ms(value: float) -> str:
        return f"{value * 1e3:.2f}"

    head = (
        "| n | " + " | ".join(MODES) + " | LC FAISS kNN | LC FAISS MMR | knn delete | mmr delete |"
    )
    lines = [head, "|" + "---|" * (len(MODES) + 5)]
    for r in rows:
        cells = [
            f"{ms(r[f'{m}_p50_s'])} / {ms(r[f'{m}_p99_s'])}" for m in (*MODES, "lc_knn", "lc_mmr")
        ]
        cells += [ms(r["knn_delete_p50_s"]), ms(r["mmr_delete_p50_s"])]
        lines.append(f"| {r['n']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--topics", type=int, default=16)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--deletions", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = [bench_size(n, args) for n in args.sizes]
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_1m": [load_before, os.getloadavg()[0]],
        "args": {k: v for k, v in vars(args).items() if k != "out"},
    }
    if args.out is not None:
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(
        f"{meta['machine']}; 1-minute load average {load_before:.1f} at start, "
        f"{meta['load_average_1m'][1]:.1f} at end. "
        "Cells: select p50 / p99 in ms; deletion p50 in ms.\n"
    )
    print(markdown(rows))


if __name__ == "__main__":
    main()

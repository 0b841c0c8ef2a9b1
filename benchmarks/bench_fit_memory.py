"""Fit time against faiss.Kmeans, and memory per example in each selection mode.

On pre-embedded synthetic clustered vectors (as bench_selector.py) it measures:
- `fit`: wall time of `ERASEExampleSelector.from_examples(..., vectors=...)`, of
  `ERASEIndex.load` of the same rows (the core's share, without the adapter's validation)
  and of faiss.Kmeans with the same k, iteration count and training points (all n);
- `memory`: bytes per example that a fitted selector holds in each selection mode
  (tracemalloc: numpy and Python allocations alive after the fit, the inputs excluded).

Usage:  nice python benchmarks/bench_fit_memory.py --n 1000000 fit memory
Prints one JSON line per measurement and a markdown table (docs/benchmarks.md quotes it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tracemalloc
from typing import Any

import faiss
import numpy as np
from bench_selector import LookupEmbeddings, clustered_unit_vectors, timed

from langchain_erase import ERASEExampleSelector
from langchain_erase.core.index import SELECTION_MODES, ERASEIndex


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def fit(args: argparse.Namespace, vectors: np.ndarray, mode: str) -> ERASEExampleSelector:
    n = len(vectors)
    examples = [{"input": f"doc {i}", "output": str(i)} for i in range(n)]
    ids = [f"id{i:08d}" for i in range(n)]
    emb = LookupEmbeddings(vectors, vectors[:1])
    return ERASEExampleSelector.from_examples(
        examples, emb, ids=ids, vectors=vectors, input_keys=["input"], k=args.k, selection=mode
    )


def bench_fit(args: argparse.Namespace, vectors: np.ndarray) -> dict[str, Any]:
    load = load_average()
    fit_s, selector = timed(lambda: fit(args, vectors, "random"))
    iterations = max(1, selector._index.iterations)
    # The core's share: the same rows loaded into a bare index (no adapter validation).
    index = selector._index
    ids, texts, rows = index.rows()
    del selector
    bare = ERASEIndex(index.params, index.p, "random")
    del index
    gc.collect()
    index_s, _ = timed(lambda: bare.load(ids, texts, rows))
    bare.clear()
    gc.collect()
    km = faiss.Kmeans(
        vectors.shape[1],
        args.k,
        niter=iterations,
        seed=1,
        verbose=False,
        max_points_per_centroid=len(vectors),
    )
    faiss_s, _ = timed(lambda: km.train(vectors))
    return {
        "run": "fit",
        "n": len(vectors),
        "fit_s": round(fit_s, 2),
        "index_load_s": round(index_s, 2),
        "faiss_kmeans_s": round(faiss_s, 2),
        "ratio": round(fit_s / faiss_s, 2),
        "iterations": iterations,
        "faiss_threads": faiss.omp_get_max_threads(),
        "load_average": load,
    }


def bench_memory(args: argparse.Namespace, vectors: np.ndarray, mode: str) -> dict[str, Any]:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    selector = fit(args, vectors, mode)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del selector
    gc.collect()
    return {
        "run": "memory",
        "mode": mode,
        "n": len(vectors),
        "bytes_per_example": round(held / len(vectors)),
        "vector_bytes": vectors.shape[1] * 4,
        "load_average": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", choices=["fit", "memory"])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--topics", type=int, default=16)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--modes", nargs="+", default=list(SELECTION_MODES))
    args = parser.parse_args()
    vectors = clustered_unit_vectors(args.n, args.dim, args.topics, args.spread, seed=args.n)
    rows = []
    if "fit" in args.runs:
        rows.append(bench_fit(args, vectors))
        print(json.dumps(rows[-1]), flush=True)
    if "memory" in args.runs:
        for mode in args.modes:
            rows.append(bench_memory(args, vectors, mode))
            print(json.dumps(rows[-1]), flush=True)
    for row in rows:
        if row["run"] == "fit":
            print(
                f"| fit n={row['n']:,} | {row['fit_s']} s | index {row['index_load_s']} s"
                f" | faiss.Kmeans {row['faiss_kmeans_s']} s"
                f" | x{row['ratio']} | T={row['iterations']} | load {row['load_average']} |"
            )
        else:
            print(f"| {row['mode']} | {row['bytes_per_example']} B/example | n={row['n']:,} |")


if __name__ == "__main__":
    main()

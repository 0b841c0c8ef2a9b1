"""Fit time against faiss.Kmeans, bulk insertion, and memory per example in each selection mode.

On pre-embedded synthetic clustered vectors (as bench_selector.py) it measures:
- `fit`: wall time of `ERASEExampleSelector.from_examples(..., vectors=...)`, of
  `ERASEIndex.load` of the same rows (the core's share, without the adapter's validation)
  and of faiss.Kmeans with the same k, iteration count and training points (all n);
- `phases`: the same fit at n taken apart, each step called on its own as `add_examples`
  and `ERASEIndex.add` call it;
- `add`: a fresh fit of n + a examples against adding a examples to a fitted selector of n
  (and that both give the same state digest);
- `memory`: bytes per example that a fitted selector holds in each selection mode
  (tracemalloc: numpy and Python allocations alive after the fit, the inputs excluded).

BLAS and OpenMP (numpy's and faiss's) use `--threads` threads (default 1) throughout.

Usage:  python benchmarks/bench_fit_memory.py --n 1000000 --add 100000 fit phases add
Prints one JSON line per measurement (each with the load average) and a markdown table
(docs/benchmarks.md quotes it).
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
from threadpoolctl import threadpool_info, threadpool_limits

from langchain_erase import ERASEExampleSelector
from langchain_erase.core.canonical import canonical_json
from langchain_erase.core.hashing import id_hash64
from langchain_erase.core.index import SELECTION_MODES, _member_tags
from langchain_erase.core.projection import FixedPointProjection, normalize_rows
from langchain_erase.core.qkmeans import QuantizedKMeans
from langchain_erase.inputs import embedded_texts, example_ids, validate_example
from langchain_erase.replication.changes import check_absent


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def blas_setting() -> str:
    pools = [f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()]
    return ", ".join(pools) + f", faiss={faiss.omp_get_max_threads()}"


def rows_of(start: int, stop: int) -> tuple[list[dict[str, str]], list[str]]:
    """Examples and ids of rows start..stop of the vectors."""
    examples = [{"input": f"doc {i}", "output": str(i)} for i in range(start, stop)]
    return examples, [f"id{i:08d}" for i in range(start, stop)]


def fit(args: argparse.Namespace, vectors: np.ndarray, mode: str) -> ERASEExampleSelector:
    examples, ids = rows_of(0, len(vectors))
    emb = LookupEmbeddings(vectors, vectors[:1])
    return ERASEExampleSelector.from_examples(
        examples, emb, ids=ids, vectors=vectors, input_keys=["input"], k=args.k, selection=mode
    )


def bench_phases(args: argparse.Namespace, vectors: np.ndarray) -> dict[str, Any]:
    """Each step of a fit of all rows into an empty `random` selector, timed on its own."""
    load = load_average()
    examples, ids = rows_of(0, len(vectors))
    selector = ERASEExampleSelector(
        LookupEmbeddings(vectors, vectors[:1]), input_keys=["input"], k=args.k
    )
    index = selector.parameters.new_index()
    t: dict[str, float] = {}
    t["validate examples"], clean = timed(lambda: [validate_example(e, []) for e in examples])
    t["ids (checks)"], new_ids = timed(lambda: example_ids(clean, ids))
    t["duplicate checks"], _ = timed(lambda: check_absent(index, new_ids))
    t["embedded texts"], _ = timed(lambda: embedded_texts(clean, ["input"]))
    t["normalize_rows"], unit = timed(lambda: normalize_rows(vectors))
    t["canonical JSON"], texts = timed(lambda: [canonical_json(e) for e in clean])
    t["check_rows"], _ = timed(lambda: index.check_rows(new_ids, texts, unit))
    t["member tags"], _ = timed(lambda: _member_tags(new_ids, texts, unit))
    projection = FixedPointProjection(index.params.seed, unit.shape[1], index.p)
    t["project"], coords = timed(lambda: projection.project(unit))
    t["id_hash64"], hashes = timed(lambda: id_hash64(index.params.seed, new_ids))
    kmeans = QuantizedKMeans(index.params, index.p)
    t["QuantizedKMeans.fit"], _ = timed(lambda: kmeans.fit(new_ids, coords, hashes))
    return {
        "run": "phases",
        "n": len(vectors),
        "phases_s": {name: round(seconds, 3) for name, seconds in t.items()},
        "sum_s": round(sum(t.values()), 2),
        "load_average": load,
    }


def bench_add(args: argparse.Namespace, vectors: np.ndarray) -> dict[str, Any]:
    """A fresh fit of all rows against adding the last `args.add` rows to a fit of the rest."""
    load = load_average()
    n = len(vectors) - args.add
    fresh_s, fresh = timed(lambda: fit(args, vectors, "random"))
    fresh_digest = fresh.state_digest()
    del fresh
    gc.collect()
    grown = fit(args, vectors[:n], "random")
    examples, ids = rows_of(n, len(vectors))
    add_s, _ = timed(lambda: grown.add_examples(examples, ids=ids, vectors=vectors[n:]))
    equal = grown.state_digest() == fresh_digest
    return {
        "run": "add",
        "n": n,
        "added": args.add,
        "fresh_fit_s": round(fresh_s, 2),
        "bulk_add_s": round(add_s, 2),
        "same_digest": equal,
        "load_average": load,
        "load_average_after": load_average(),
    }


def bench_fit(args: argparse.Namespace, vectors: np.ndarray) -> dict[str, Any]:
    load = load_average()
    fit_s, selector = timed(lambda: fit(args, vectors, "random"))
    iterations = max(1, selector.view().iterations)
    # The core's share: the same rows loaded into a bare index (no adapter validation).
    ids, texts, rows = selector.view().rows()
    bare = selector.parameters.new_index()
    del selector
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
        "threads": blas_setting(),
        "load_average": load,
        "load_average_after": load_average(),
    }


def bench_memory(args: argparse.Namespace, vectors: np.ndarray, mode: str) -> dict[str, Any]:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    selector = fit(args, vectors, mode)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    screen = selector.view().screen_nbytes  # FAISS's C++ lists: not traced
    del selector
    gc.collect()
    return {
        "run": "memory",
        "mode": mode,
        "n": len(vectors),
        "bytes_per_example": round((held + screen) / len(vectors)),
        "screen_bytes_per_example": round(screen / len(vectors)),
        "vector_bytes": vectors.shape[1] * 4,
        "load_average": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", choices=["fit", "phases", "add", "memory"])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--add", type=int, default=100_000, help="examples added in `add`")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--topics", type=int, default=16)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="BLAS and OpenMP threads")
    parser.add_argument("--modes", nargs="+", default=list(SELECTION_MODES))
    args = parser.parse_args()
    threadpool_limits(args.threads)
    faiss.omp_set_num_threads(args.threads)
    # the first n rows are those of a run without --add (the generator works in 100k blocks)
    grown = clustered_unit_vectors(args.n + args.add, args.dim, args.topics, args.spread, args.n)
    vectors = grown[: args.n]
    print(f"load average before: {load_average()}; threads: {blas_setting()}", flush=True)
    rows = []
    if "fit" in args.runs:
        rows.append(bench_fit(args, vectors))
        print(json.dumps(rows[-1]), flush=True)
    if "phases" in args.runs:
        rows.append(bench_phases(args, vectors))
        print(json.dumps(rows[-1]), flush=True)
    if "add" in args.runs:
        rows.append(bench_add(args, grown))
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
        elif row["run"] == "phases":
            for name, seconds in row["phases_s"].items():
                print(f"| {name} | {seconds:.2f} s |")
            print(f"| sum (n={row['n']:,}, load {row['load_average']}) | {row['sum_s']} s |")
        elif row["run"] == "add":
            print(
                f"| fresh fit of {row['n'] + row['added']:,} | {row['fresh_fit_s']} s"
                f" | add {row['added']:,} onto {row['n']:,} | {row['bulk_add_s']} s"
                f" | same digest {row['same_digest']} | load {row['load_average']} |"
            )
        else:
            print(
                f"| {row['mode']} | {row['bytes_per_example']} B/example "
                f"(screen {row['screen_bytes_per_example']}) | n={row['n']:,} |"
            )


if __name__ == "__main__":
    main()

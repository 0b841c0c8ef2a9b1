"""Scale benchmark on real MiniLM embeddings of the task pools (see real_pool.py).

Three runs (each prints JSON lines and a markdown table):
- `similar`: select p50/p99 and recall@1 of the keyed-sample cell index against the exact
  per-bucket scan, at `--n` points, with the float16 FAISS screen (the default) and with the
  float32 numpy scan of the same cells (their answers must agree: reported as `agree`).
  The real pool has ~65k distinct inputs, so larger n tiles it: copy c > 0 of input i is
  input i plus seeded Gaussian noise of norm `--noise`, renormalized. Queries are pool
  inputs with fresh noise of the same norm.
- `deletions`: refit rate, mean and p99 deletion cost and the speed-up over refitting, per n,
  on n inputs drawn from the de-duplicated pool (no tiling).
- `threads`: `similar` select p50/p99 over `--threads-n` examples (the pool, tiled as above
  if smaller) alone and with 4 concurrent callers, with one BLAS thread per query and with
  the process default.

Usage:  nice python benchmarks/bench_scale.py similar --n 1000000
        nice python benchmarks/bench_scale.py deletions
        nice python benchmarks/bench_scale.py threads
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from contextlib import nullcontext
from typing import Any

import numpy as np
from bench_selector import LookupEmbeddings, percentile, timed
from real_pool import load
from threadpoolctl import threadpool_info

import langchain_erase.core.buckets as buckets_module
from langchain_erase import ERASEExampleSelector
from langchain_erase.core import FixedPointProjection, QKMeansParams, QuantizedKMeans
from langchain_erase.core.buckets import DEFAULT_CELLS, DEFAULT_EXACT_BELOW, BucketIndex
from langchain_erase.core.hashing import id_hash64
from langchain_erase.core.projection import normalize_rows
from langchain_erase.example_selectors import DEFAULT_EPSILON, DEFAULT_P


def tiled(pool: np.ndarray, n: int, noise: float, seed: int) -> np.ndarray:
    """n unit vectors: the pool, then noisy copies of it (chunked to bound memory)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, pool.shape[1]), dtype=np.float32)
    for start in range(0, n, 65536):
        stop = min(n, start + 65536)
        rows = np.arange(start, stop)
        block = pool[rows % len(pool)].astype(np.float32)
        copies = rows >= len(pool)
        jitter = rng.standard_normal((stop - start, pool.shape[1])).astype(np.float32)
        block[copies] += jitter[copies] * np.float32(noise / np.sqrt(pool.shape[1]))
        out[start:stop] = normalize_rows(block)
    return out


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def blas_setting() -> str:
    pools = [f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()]
    return ", ".join(pools)


def run_similar(args: argparse.Namespace) -> dict[str, Any]:
    _, pool = load()
    pool = normalize_rows(pool)
    vectors = tiled(pool, args.n, args.noise, seed=1)
    rng = np.random.default_rng(2)
    queries = normalize_rows(
        pool[rng.choice(len(pool), args.queries, replace=False)]
        + rng.standard_normal((args.queries, pool.shape[1])).astype(np.float32)
        * np.float32(args.noise / np.sqrt(pool.shape[1]))
    )
    ids = [f"x{i:08d}" for i in range(args.n)]
    fit_s, (labels, k_eff) = timed(lambda: cluster(vectors, ids, args))
    row: dict[str, Any] = {"n": args.n, "pool": len(pool), "noise": args.noise, "fit_core_s": fit_s}
    row["bucket_sizes"] = np.bincount(labels, minlength=k_eff).tolist()
    row["load_before"] = load_average()
    zeros = np.zeros(args.n, dtype=np.int64)

    hashes = id_hash64(0, ids)

    def build(exact_below: int, cells: int, nprobe: int, screen: bool = True) -> BucketIndex:
        return BucketIndex.build(
            k_eff,
            "similar",
            vectors.shape[1],
            ids,
            labels,
            zeros,
            vectors,
            exact_below=exact_below,
            cells=cells,
            nprobe=nprobe,
            screen=screen,
            id_hashes=hashes,
        )

    def select_times(index: BucketIndex) -> tuple[list[float], list[list[tuple[int, str]]]]:
        times, picks = [], []
        for q in queries:
            t, pick = timed(lambda q=q: index.pick(0, q))
            times.append(t)
            picks.append(pick)
        return times, picks

    build_s, exact = timed(lambda: build(exact_below=args.n + 1, cells=1, nprobe=1))
    times, truth = select_times(exact)
    row.update(
        exact_build_s=build_s,
        exact_p50_s=percentile(times, 50),
        exact_p99_s=percentile(times, 99),
    )
    del exact
    row["cells"], row["by_nprobe"] = args.cells, []
    built = {}
    for screen in (True, False):
        build_s, built[screen] = timed(
            lambda screen=screen: build(
                exact_below=DEFAULT_EXACT_BELOW,
                cells=args.cells,
                nprobe=args.nprobe[0],
                screen=screen,
            )
        )
        row[f"cells_build_s_screen_{screen}"] = build_s
    for nprobe in args.nprobe:
        picked = {}
        for screen, cells in built.items():
            cells.set_nprobe(nprobe)
            times, picked[screen] = select_times(cells)
            row["by_nprobe"].append(
                {
                    "nprobe": nprobe,
                    "screen": screen,
                    "p50_s": percentile(times, 50),
                    "p99_s": percentile(times, 99),
                    "recall_at_1": matches(picked[screen], truth),
                }
            )
        row["by_nprobe"][-1]["agree"] = matches(picked[True], picked[False])
    row["load_after"] = load_average()
    row["blas"] = blas_setting()
    return row


def matches(picks: list[list[tuple[int, str]]], truth: list[list[tuple[int, str]]]) -> float:
    """Fraction of (query, bucket) picks equal to the reference picks."""
    hits = sum(
        a == b
        for got, want in zip(picks, truth, strict=True)
        for a, b in zip(got, want, strict=True)
    )
    return hits / sum(len(t) for t in truth)


def cluster(
    vectors: np.ndarray, ids: list[str], args: argparse.Namespace
) -> tuple[np.ndarray, int]:
    """Final cluster labels of the core fit with the selector's defaults."""
    params = QKMeansParams(k=args.k, epsilon=DEFAULT_EPSILON)
    projection = FixedPointProjection(0, vectors.shape[1], DEFAULT_P)
    km = QuantizedKMeans(params, projection.p)
    km.fit(ids, projection.project(vectors), id_hash64(0, ids))
    _, labels, _ = km.alive()
    return labels, km.n_clusters


def selector(vectors: np.ndarray, ids: list[str], **params: Any) -> ERASEExampleSelector:
    emb = LookupEmbeddings(vectors, vectors)
    examples = [{"input": f"doc {i}"} for i in range(len(ids))]
    return ERASEExampleSelector.from_examples(examples, emb, ids=ids, vectors=vectors, **params)


def run_deletions(args: argparse.Namespace) -> list[dict[str, Any]]:
    _, pool = load()
    pool = normalize_rows(pool)
    rows = []
    sizes = [n for n in args.sizes if n < len(pool)] + [len(pool)]
    for n in sizes:
        rng = np.random.default_rng(n)
        vectors = pool[rng.choice(len(pool), n, replace=False)]
        ids = [f"x{i:08d}" for i in range(n)]
        sel = selector(vectors, ids, k=args.k)
        victims = rng.choice(n, min(args.deletions, n // 2), replace=False)
        receipts = [sel.delete_example(ids[v]) for v in victims.tolist()]
        seconds = [r.seconds for r in receipts]
        kept = np.setdiff1d(np.arange(n), victims)
        kept_vectors, kept_ids = vectors[kept], [ids[i] for i in kept]
        start = time.perf_counter()
        selector(kept_vectors, kept_ids, k=args.k)
        refit_s = time.perf_counter() - start
        row = {
            "n": n,
            "deletions": len(receipts),
            "refits": sum(r.refit for r in receipts),
            "delete_mean_s": statistics.fmean(seconds),
            "delete_p99_s": percentile(seconds, 99),
            "refit_s": refit_s,
            "load": load_average(),
        }
        row["refit_rate"] = row["refits"] / row["deletions"]
        row["speedup"] = refit_s / row["delete_mean_s"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def run_threads(args: argparse.Namespace) -> list[dict[str, Any]]:
    _, pool = load()
    pool = normalize_rows(pool)
    n = args.threads_n
    ids = [f"x{i:08d}" for i in range(n)]
    sel = selector(tiled(pool, n, args.noise, seed=5), ids, k=args.k, selection="similar")
    queries = [{"input": f"doc {i}"} for i in range(args.queries)]
    rows = []
    limited = buckets_module.query_threads
    for limit in (1, None):
        # The selector limits BLAS to one thread per `similar` query (core/threads.py); the
        # "process default" arm swaps that public helper for one that leaves the pools alone.
        buckets_module.query_threads = limited if limit else (lambda _threads: nullcontext())
        for callers in (1, 4):
            times = concurrent_select_times(sel, queries, callers)
            row = {
                "n": n,
                "blas_threads_per_query": limit or "process default",
                "callers": callers,
                "p50_s": percentile(times, 50),
                "p99_s": percentile(times, 99),
                "load": load_average(),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    buckets_module.query_threads = limited
    return rows


def concurrent_select_times(
    sel: ERASEExampleSelector, queries: list[dict[str, str]], callers: int
) -> list[float]:
    """Latency of each select when `callers` threads split the queries and run at once."""
    times: list[float] = []
    lock = threading.Lock()

    def caller(offset: int) -> None:
        local = []
        for q in queries[offset::callers]:
            t, _ = timed(lambda q=q: sel.select_examples(q))
            local.append(t)
        with lock:
            times.extend(local)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", choices=["similar", "deletions", "threads"])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--noise", type=float, default=0.3, help="norm of the tiling noise")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--cells", type=int, default=DEFAULT_CELLS)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 24, 48])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 5000, 20000])
    parser.add_argument("--deletions", type=int, default=300)
    parser.add_argument("--threads-n", type=int, default=20_000)
    args = parser.parse_args()
    print(f"load average before: {load_average()}; BLAS: {blas_setting()}", flush=True)
    if args.run == "similar":
        print(json.dumps(run_similar(args)), flush=True)
    elif args.run == "deletions":
        run_deletions(args)
    else:
        run_threads(args)
    print(f"load average after: {load_average()}", flush=True)


if __name__ == "__main__":
    main()

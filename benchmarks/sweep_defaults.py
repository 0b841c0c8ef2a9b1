"""Sweep p and epsilon on the core: refit rate, iterations and cluster sizes at one n.

Usage:  python benchmarks/sweep_defaults.py --n 100000 --deletions 200 --k 8
Uses the same synthetic generator as bench_selector.py; prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_selector import clustered_unit_vectors

from langchain_erase.core import FixedPointProjection, QKMeansParams, QuantizedKMeans
from langchain_erase.core.hashing import id_hash64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--deletions", type=int, default=200)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--p", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--epsilon", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    args = parser.parse_args()
    vectors = clustered_unit_vectors(args.n, 384, 16, 1.0, seed=args.n)
    ids = [f"id{i:08d}" for i in range(args.n)]
    hashes = id_hash64(0, ids)
    print("| p | ε | fit | iterations | refits | cluster sizes |\n|---|---|---|---|---|---|")
    for p in args.p:
        coords = FixedPointProjection(0, 384, p).project(vectors)
        for eps in args.epsilon:
            km = QuantizedKMeans(QKMeansParams(k=args.k, epsilon=eps, seed=0), p)
            start = time.perf_counter()
            km.fit(ids, coords, hashes)
            fit_s = time.perf_counter() - start
            victims = np.random.default_rng(0).choice(args.n, args.deletions, replace=False)
            refits = sum(km.delete(ids[v]).refit for v in victims.tolist())
            _, labels, _ = km.alive()
            sizes = np.bincount(labels)
            print(
                f"| {p} | {eps} | {fit_s:.2f} s | {km.iterations} | {refits}/{args.deletions} "
                f"| {sizes.min():,}–{sizes.max():,} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

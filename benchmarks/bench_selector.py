"""Selector benchmark: fit, deletion and selection cost of ERASE against its baselines.

On pre-embedded synthetic clustered data (unit vectors in D dims drawn around a few random
directions, like sentence embeddings of a handful of topics) at each n it measures:
- fit time of ERASEExampleSelector and of faiss.Kmeans with the same k and iterations;
- deletion latency (p50/p99/mean, refits included) and refit rate over random deletions;
- the same deletion done by refitting from scratch, and by LangChain's
  SemanticSimilarityExampleSelector on the FAISS vectorstore (`vectorstore.delete`);
- select latency per selection mode.

Usage:  python benchmarks/bench_selector.py --sizes 1000 10000 100000 1000000 \
            --out docs/benchmarks.json
Writes JSON and prints a markdown table (docs/benchmarks.md quotes it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_erase import ERASEExampleSelector
from langchain_erase.example_selectors import DEFAULT_EPSILON, DEFAULT_MAX_ITER, DEFAULT_P


class LookupEmbeddings(Embeddings):
    """Pre-embedded data: text 'q<i>' or 'doc <i>' maps to a stored vector (no model cost)."""

    def __init__(self, docs: np.ndarray, queries: np.ndarray) -> None:
        self.docs, self.queries = docs, queries

    def _lookup(self, text: str) -> list[float]:
        kind, index = text.split(" ")
        table = self.queries if kind == "q" else self.docs
        return table[int(index)].tolist()  # type: ignore[no-any-return]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._lookup(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._lookup(text)


def clustered_unit_vectors(n: int, dim: int, topics: int, spread: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((topics, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        topic = rng.integers(0, topics, stop - start)
        noise = rng.standard_normal((stop - start, dim)).astype(np.float32) * (
            spread / np.sqrt(dim)
        )
        block = centers[topic] + noise
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def workload(
    n: int, args: argparse.Namespace
) -> tuple[np.ndarray, LookupEmbeddings, list[dict[str, str]], list[str]]:
    """n clustered unit vectors (seeded by n), lookup embeddings answering `args.queries`
    queries, and the matching examples and ids."""
    vectors = clustered_unit_vectors(n, args.dim, args.topics, args.spread, seed=n)
    queries = clustered_unit_vectors(args.queries, args.dim, args.topics, args.spread, seed=n + 1)
    examples = [{"input": f"doc {i}", "output": str(i)} for i in range(n)]
    return vectors, LookupEmbeddings(vectors, queries), examples, [f"id{i:08d}" for i in range(n)]


def bench_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    vectors, emb, examples, ids = workload(n, args)
    row: dict[str, Any] = {"n": n}
    params = {"k": args.k, "epsilon": args.epsilon, "p": args.p, "max_iter": args.max_iter}

    fit_s, sel = timed(
        lambda: ERASEExampleSelector.from_examples(
            examples, emb, ids=ids, vectors=vectors, input_keys=["input"], **params
        )
    )
    row["fit_s"] = fit_s
    row["iterations"] = sel.view().iterations
    # faiss subsamples to 256 points per centroid by default; train on all points as ERASE does
    km = faiss.Kmeans(
        args.dim,
        args.k,
        niter=max(1, sel.view().iterations),
        seed=1,
        verbose=False,
        max_points_per_centroid=n,
    )
    row["faiss_kmeans_fit_s"], _ = timed(lambda: km.train(vectors))

    rng = np.random.default_rng(0)
    victims = rng.choice(n, size=min(args.deletions, n // 2), replace=False)
    latencies, refits = [], 0
    for v in victims.tolist():
        receipt = sel.delete_example(ids[v])
        latencies.append(receipt.seconds)
        refits += receipt.refit
    row.update(
        deletions=len(latencies),
        refits=refits,
        refit_rate=refits / len(latencies),
        delete_p50_s=percentile(latencies, 50),
        delete_p99_s=percentile(latencies, 99),
        delete_mean_s=statistics.fmean(latencies),
    )
    kept = np.setdiff1d(np.arange(n), victims)
    refit_s, _ = timed(
        lambda: ERASEExampleSelector.from_examples(
            [examples[i] for i in kept[1:]],
            emb,
            ids=[ids[i] for i in kept[1:]],
            vectors=vectors[kept[1:]],
            input_keys=["input"],
            **params,
        )
    )
    row["refit_from_scratch_s"] = refit_s
    row["speedup_vs_refit"] = refit_s / row["delete_mean_s"]

    for mode in ("random", "centroid", "similar"):
        mode_sel = sel if mode == "random" else None
        if mode_sel is None:
            mode_sel = ERASEExampleSelector.from_examples(
                [examples[i] for i in kept],
                emb,
                ids=[ids[i] for i in kept],
                vectors=vectors[kept],
                input_keys=["input"],
                selection=mode,
                **params,
            )
        times = []
        for q in range(args.queries):
            t, _ = timed(lambda q=q, s=mode_sel: s.select_examples({"input": f"q {q}"}))
            times.append(t)
        row[f"select_{mode}_p50_s"] = percentile(times, 50)
        row[f"select_{mode}_p99_s"] = percentile(times, 99)
        del mode_sel

    if n <= args.faiss_selector_max_n:
        row.update(bench_langchain_faiss(examples, ids, vectors, emb, victims, args))
    return row


def bench_langchain_faiss(
    examples: list[dict[str, str]],
    ids: list[str],
    vectors: np.ndarray,
    emb: Embeddings,
    victims: np.ndarray,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """LangChain's kNN selector on FAISS: deletion is `vectorstore.delete([id])`."""
    from langchain_community.docstore.in_memory import InMemoryDocstore
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_core.example_selectors import SemanticSimilarityExampleSelector

    def build() -> FAISS:
        # The vectorstore LangChain's FAISS.from_embeddings would build, without first
        # turning n x D floats into Python lists (which does not fit in memory at 1M).
        index = faiss.IndexFlatL2(vectors.shape[1])
        index.add(vectors)
        pairs = zip(ids, examples, strict=True)
        docs = {i: Document(page_content=e["input"], metadata=e) for i, e in pairs}
        return FAISS(emb, index, InMemoryDocstore(docs), dict(enumerate(ids)))

    build_s, store = timed(build)
    selector = SemanticSimilarityExampleSelector(vectorstore=store, k=args.k, input_keys=["input"])
    times = []
    for v in victims[: args.faiss_deletions].tolist():
        t, _ = timed(lambda v=v: store.delete([ids[v]]))
        times.append(t)
    select_times = []
    for q in range(args.queries):
        t, _ = timed(lambda q=q: selector.select_examples({"input": f"q {q}"}))
        select_times.append(t)
    return {
        "lc_faiss_build_s": build_s,
        "lc_faiss_delete_mean_s": statistics.fmean(times),
        "lc_faiss_select_p50_s": percentile(select_times, 50),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    def us(x: float | None) -> str:
        return "—" if x is None else f"{x * 1e6:,.0f} µs"

    def sec(x: float | None) -> str:
        return "—" if x is None else f"{x:,.2f} s"

    lines = [
        "| n | fit | faiss.Kmeans | iters | delete p50 | delete p99 | delete mean | refit rate "
        "| refit from scratch | speed-up | LC FAISS delete | select random p50 | centroid p50 "
        "| similar p50 | LC FAISS select p50 |",
        "|" + "---|" * 15,
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {sec(r['fit_s'])} | {sec(r['faiss_kmeans_fit_s'])} "
            f"| {r['iterations']} "
            f"| {us(r['delete_p50_s'])} | {us(r['delete_p99_s'])} | {us(r['delete_mean_s'])} "
            f"| {r['refits']}/{r['deletions']} ({r['refit_rate']:.1%}) "
            f"| {sec(r['refit_from_scratch_s'])} | {r['speedup_vs_refit']:,.0f}x "
            f"| {us(r.get('lc_faiss_delete_mean_s'))} | {us(r['select_random_p50_s'])} "
            f"| {us(r['select_centroid_p50_s'])} | {us(r['select_similar_p50_s'])} "
            f"| {us(r.get('lc_faiss_select_p50_s'))} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--dim", type=int, default=384, help="embedding dimension (MiniLM: 384)")
    parser.add_argument("--topics", type=int, default=16)
    parser.add_argument("--spread", type=float, default=1.0, help="noise norm around a topic")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--p", type=int, default=DEFAULT_P)
    parser.add_argument("--epsilon", type=float, default=DEFAULT_EPSILON)
    parser.add_argument("--max-iter", type=int, default=DEFAULT_MAX_ITER)
    parser.add_argument("--deletions", type=int, default=1000)
    parser.add_argument("--faiss-deletions", type=int, default=50)
    parser.add_argument("--faiss-selector-max-n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = []
    for n in args.sizes:
        row = bench_size(n, args)
        print(json.dumps(row), flush=True)
        rows.append(row)
    table = markdown(rows)
    print(table)
    if args.out:
        meta = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        }
        args.out.write_text(json.dumps({"meta": meta, "rows": rows, "table": table}, indent=2))


if __name__ == "__main__":
    main()

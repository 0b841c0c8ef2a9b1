"""`ERASEVectorStore` side by side with FAISS IVFFlat, FAISS HNSW, LangChain's
`InMemoryVectorStore` and pgvector HNSW: add throughput, search p50/p99 (one thread),
recall@10 against exact search, deletion cost, and whether the index after deletions
equals a fresh build of the survivors.

Data: `--n` synthetic clustered 384-d unit vectors (`--clusters` Gaussian clusters, seeded),
or `--real PATH` (an .npz with a float32 ``vectors`` array, e.g. `.bench/real_pool.npz` from
benchmarks/real_pool.py), tiled with noise up to `--n`. Queries are fresh points of the same
distribution. Every system runs with one BLAS/OpenMP thread (set before numpy loads).

"Equals a fresh build" is checked per system: ours by state digest against a store built
from the survivors; FAISS IVFFlat by retraining on the survivors (same seed) and comparing
centroids and top-10 results; pgvector by comparing top-10 results before and after
``REINDEX`` (a fresh graph of the surviving rows); InMemoryVectorStore by results against a
fresh store. FAISS HNSW cannot delete (``remove_ids`` is unsupported).

Usage:
    nice python benchmarks/bench_vectorstore.py --n 100000 --out docs/bench_vectorstore.json
    nice python benchmarks/bench_vectorstore.py --n 1000000 --systems erase ivf
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

DIM = 384
K = 10


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def stats(seconds: list[float]) -> dict[str, float]:
    a = np.asarray(seconds)
    return {
        "p50_ms": round(float(np.percentile(a, 50)) * 1e3, 3),
        "p99_ms": round(float(np.percentile(a, 99)) * 1e3, 3),
        "mean_ms": round(float(a.mean()) * 1e3, 3),
    }


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def dataset(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """(n vectors, queries), float32 unit rows."""
    rng = np.random.default_rng(args.seed)
    total = args.n + args.queries
    if args.real:
        pool = unit(np.load(args.real)["vectors"].astype(np.float32))
        base = pool[np.arange(total) % len(pool)]
        spread = args.noise
    else:
        centers = unit(rng.standard_normal((args.clusters, DIM)).astype(np.float32))
        base = centers[rng.integers(0, args.clusters, total)]
        spread = args.spread
    out = np.empty((total, base.shape[1]), dtype=np.float32)
    for start in range(0, total, 65536):
        stop = min(total, start + 65536)
        noise = rng.standard_normal((stop - start, base.shape[1])).astype(np.float32)
        out[start:stop] = unit(base[start:stop] + noise * np.float32(spread / np.sqrt(DIM)))
    order = rng.permutation(total)
    return out[order[: args.n]], out[order[args.n :]]


def exact_top(
    data: np.ndarray, queries: np.ndarray, alive: np.ndarray | None = None
) -> list[set[int]]:
    """Exact top-K row numbers per query (float64 scores; deleted rows masked)."""
    out = []
    for q in queries:
        scores = data @ q.astype(np.float32)
        if alive is not None:
            scores = np.where(alive, scores, -np.inf)
        out.append(set(np.argpartition(-scores, K)[:K].tolist()))
    return out


def recall(found: list[list[int]], truth: list[set[int]]) -> float:
    return round(
        float(np.mean([len(set(f) & t) / K for f, t in zip(found, truth, strict=True)])), 4
    )


def timed_searches(
    search: Callable[[np.ndarray], list[int]], queries: np.ndarray
) -> tuple[list[list[int]], list[float]]:
    found, times = [], []
    for q in queries:
        start = time.perf_counter()
        hits = search(q)
        times.append(time.perf_counter() - start)
        found.append(hits)
    return found, times


def measured(
    search: Callable[[np.ndarray], list[int]],
    queries: np.ndarray,
    data: np.ndarray,
    added: float,
) -> dict[str, Any]:
    """Add throughput (rows per second of `added` seconds), search p50/p99 and recall@10."""
    found, times = timed_searches(search, queries)
    return {
        "add_per_s": round(len(data) / added),
        "search": stats(times),
        "recall@10": recall(found, exact_top(data, queries)),
    }


def timed_each(delete: Callable[[int], object], victims: np.ndarray) -> dict[str, float]:
    """p50/p99/mean of deleting each victim on its own."""
    seconds = []
    for v in victims.tolist():
        start = time.perf_counter()
        delete(v)
        seconds.append(time.perf_counter() - start)
    return stats(seconds)


# ---------------------------------------------------------------------------- systems
def run_erase(
    data: np.ndarray, queries: np.ndarray, victims: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from langchain_erase import ERASEVectorStore

    params = {"nprobe": args.nprobe, "cells": args.cells}
    ids = [f"d{i:08d}" for i in range(len(data))]
    texts = [f"document {i}" for i in range(len(data))]
    metadatas = [{"row": i} for i in range(len(data))]
    store = ERASEVectorStore(DeterministicFakeEmbedding(size=DIM), **params)
    start = time.perf_counter()
    store.add_embeddings(texts, data, metadatas, ids)
    add_s = time.perf_counter() - start

    def search(q: np.ndarray) -> list[int]:
        return [int(d.id[1:]) for d in store.similarity_search_by_vector(q.tolist(), k=K)]  # type: ignore[index]

    row = measured(search, queries, data, add_s)
    receipts: list[Any] = []
    row["delete"] = timed_each(
        lambda v: receipts.extend(store.delete_with_receipts([ids[v]])), victims
    )
    refits = sum(r.refit for r in receipts)
    row["delete_refits"] = refits
    alive = np.ones(len(data), dtype=bool)
    alive[victims] = False
    keep = np.flatnonzero(alive)
    digest = store.state_digest()
    found_after, _ = timed_searches(search, queries[: args.check_queries])
    del store
    gc.collect()
    fresh = ERASEVectorStore(DeterministicFakeEmbedding(size=DIM), **params)
    fresh.add_embeddings(
        [texts[i] for i in keep], data[keep], [metadatas[i] for i in keep], [ids[i] for i in keep]
    )
    row["equals_fresh_build"] = fresh.state_digest() == digest
    store = fresh
    fresh_found, _ = timed_searches(search, queries[: args.check_queries])
    row["same_results_as_fresh"] = fresh_found == found_after
    row["params"] = params
    return row


def run_ivf(
    data: np.ndarray, queries: np.ndarray, victims: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    import faiss

    faiss.omp_set_num_threads(1)
    nlist = args.ivf_nlist

    def build(rows: np.ndarray, labels: np.ndarray) -> Any:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = 1234
        index.train(rows[: min(len(rows), 64 * nlist)])
        index.add_with_ids(rows, labels)
        index.nprobe = args.ivf_nprobe
        return index

    labels = np.arange(len(data), dtype=np.int64)
    start = time.perf_counter()
    index = build(data, labels)
    add_s = time.perf_counter() - start
    row = measured(lambda q: index.search(q[None, :], K)[1][0].tolist(), queries, data, add_s)
    row["add_includes"] = "k-means training"
    row["delete"] = timed_each(lambda v: index.remove_ids(np.array([v], dtype=np.int64)), victims)
    alive = np.ones(len(data), dtype=bool)
    alive[victims] = False
    keep = np.flatnonzero(alive)
    check = queries[: args.check_queries]
    after = [index.search(q[None, :], K)[1][0].tolist() for q in check]
    old_centroids = index.quantizer.reconstruct_n(0, nlist)
    fresh = build(data[keep], labels[keep])
    fresh_centroids = fresh.quantizer.reconstruct_n(0, nlist)
    row["centroid_max_abs_diff"] = float(np.abs(old_centroids - fresh_centroids).max())
    fresh_after = [fresh.search(q[None, :], K)[1][0].tolist() for q in check]
    row["same_results_as_fresh"] = round(
        float(np.mean([a == b for a, b in zip(after, fresh_after, strict=True)])), 3
    )
    row["equals_fresh_build"] = bool(np.array_equal(old_centroids, fresh_centroids))
    row["params"] = {"nlist": nlist, "nprobe": args.ivf_nprobe}
    return row


def run_hnsw(
    data: np.ndarray, queries: np.ndarray, victims: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    import faiss

    faiss.omp_set_num_threads(1)
    index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    start = time.perf_counter()
    index.add(data)
    add_s = time.perf_counter() - start
    index.hnsw.efSearch = args.ef_search
    row = measured(lambda q: index.search(q[None, :], K)[1][0].tolist(), queries, data, add_s)
    try:
        index.remove_ids(np.array(victims[:1], dtype=np.int64))
        row["delete"] = "supported"
    except RuntimeError as err:
        row["delete"] = f"unsupported ({str(err).splitlines()[0][:60]})"
    row["equals_fresh_build"] = False
    row["params"] = {"M": 32, "efConstruction": 64, "efSearch": args.ef_search}
    return row


class _Lookup:
    """Embeddings that look vectors up by text (the benchmark's precomputed rows)."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.data[int(t.split()[1])].tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        raise NotImplementedError


def run_inmemory(
    data: np.ndarray, queries: np.ndarray, victims: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

    n = len(data)
    docs = [Document(page_content=f"document {i}", id=str(i)) for i in range(n)]
    store = InMemoryVectorStore(_Lookup(data))  # type: ignore[arg-type]
    start = time.perf_counter()
    store.add_documents(docs)
    add_s = time.perf_counter() - start
    few = queries[: args.slow_queries]

    def search(q: np.ndarray) -> list[int]:
        return [int(d.id) for d in store.similarity_search_by_vector(q.tolist(), k=K)]  # type: ignore[arg-type]

    row = measured(search, few, data, add_s)
    row["queries"] = len(few)
    row["delete"] = timed_each(lambda v: store.delete([str(v)]), victims)
    after, _ = timed_searches(search, few[: args.check_queries])
    alive = np.ones(n, dtype=bool)
    alive[victims] = False
    store = InMemoryVectorStore(_Lookup(data))  # type: ignore[arg-type]
    store.add_documents([d for d, a in zip(docs, alive, strict=True) if a])
    fresh, _ = timed_searches(search, few[: args.check_queries])
    row["same_results_as_fresh"] = after == fresh
    row["equals_fresh_build"] = "by results only (brute force, no index)"
    return row


def run_pgvector(
    data: np.ndarray, queries: np.ndarray, victims: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    import sys

    import psycopg

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from pg_helpers import PgTestServer, create_database

    server = PgTestServer.start()
    try:
        url = create_database(server.url())
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(f"CREATE TABLE docs (id bigint PRIMARY KEY, embedding vector({DIM}))")
            conn.execute("SET max_parallel_maintenance_workers = 0")
            conn.execute("SET maintenance_work_mem = '1GB'")
            start = time.perf_counter()
            with conn.cursor() as cur, cur.copy("COPY docs (id, embedding) FROM STDIN") as copy:
                for i, row in enumerate(data):
                    copy.write_row((i, "[" + ",".join(f"{x:.7g}" for x in row) + "]"))
            conn.execute(
                "CREATE INDEX docs_hnsw ON docs USING hnsw (embedding vector_ip_ops)"
                " WITH (m = 16, ef_construction = 64)"
            )
            add_s = time.perf_counter() - start
            conn.execute(f"SET hnsw.ef_search = {args.ef_search}")

            def search(q: np.ndarray) -> list[int]:
                literal = "[" + ",".join(f"{x:.7g}" for x in q) + "]"
                rows = conn.execute(
                    "SELECT id FROM docs ORDER BY embedding <#> %s::vector LIMIT %s", (literal, K)
                ).fetchall()
                return [int(r[0]) for r in rows]

            row = measured(search, queries, data, add_s)
            row["add_includes"] = "COPY and the HNSW index build"
            row["delete"] = timed_each(
                lambda v: conn.execute("DELETE FROM docs WHERE id = %s", (v,)), victims
            )
            check = queries[: args.check_queries]
            after = [search(q) for q in check]
            conn.execute("REINDEX INDEX docs_hnsw")
            fresh = [search(q) for q in check]
            row["same_results_as_fresh"] = round(
                float(np.mean([a == b for a, b in zip(after, fresh, strict=True)])), 3
            )
            row["equals_fresh_build"] = (
                False  # the graph keeps edges shaped by deleted rows until REINDEX
            )
            row["params"] = {"m": 16, "ef_construction": 64, "ef_search": args.ef_search}
            return row
    finally:
        server.stop()


def nprobe_sweep(data: np.ndarray, queries: np.ndarray, args: argparse.Namespace) -> list[Any]:
    """The recall knob: one keyed-sample cell index (`core.cells.CellIndex`, the structure
    behind the store's search, float16 screen on) queried at each of `--sweep-nprobe`."""
    from langchain_erase.core.cells import CellIndex
    from langchain_erase.core.hashing import id_hash64, keyed_hash64

    ids = [f"d{i:08d}" for i in range(len(data))]
    index = CellIndex(
        DIM,
        cells=args.cells,
        nprobe=1,
        exact_below=args.cells + 1,
        salt=keyed_hash64(0, "vector-cells"),
    )
    index.build(ids, id_hash64(0, ids), data)
    truth = exact_top(data, queries)
    rows = []
    for nprobe in args.sweep_nprobe:
        index.nprobe = nprobe

        def search(q: np.ndarray) -> list[int]:
            q64 = q.astype(np.float64)
            return [int(i[1:]) for i, _ in index.top(q, q64, K)]

        found, times = timed_searches(search, queries)
        row = {"cells": args.cells, "nprobe": nprobe, "search": stats(times)}
        row.update({"recall@10": recall(found, truth), "load": load_average()})
        print("sweep", json.dumps(row), flush=True)
        rows.append(row)
    return rows


def table(reports: list[dict[str, Any]]) -> str:
    """Markdown rows: one per (n, system) of the saved reports."""
    lines = [
        "| n | system | settings | add/s | search p50 ms | p99 ms | recall@10 | delete p50 ms |"
        " p99 ms | equals fresh build after deletions | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for report in reports:
        for name, row in report.get("systems", {}).items():
            delete = row["delete"]
            dp50, dp99 = (
                (delete["p50_ms"], delete["p99_ms"]) if isinstance(delete, dict) else ("n/a", "")
            )
            adds = next(v for k, v in row.items() if k.startswith("add_per_s"))
            settings = " ".join(f"{k}={v}" for k, v in row.get("params", {}).items())
            lines.append(
                f"| {report['n']:,} | {name} | {settings} | {adds:,} | {row['search']['p50_ms']} |"
                f" {row['search']['p99_ms']} | {row['recall@10']} | {dp50} | {dp99} |"
                f" {row['equals_fresh_build']} | {row['load_before'][0]} |"
            )
    return "\n".join(lines)


def sweep_table(reports: list[dict[str, Any]]) -> str:
    """Markdown rows of the saved `--sweep-nprobe` runs."""
    lines = [
        "| n | cells | nprobe | search p50 ms | p99 ms | recall@10 | load |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for report in reports:
        for row in report.get("sweep", []):
            lines.append(
                f"| {report['n']:,} | {row['cells']} | {row['nprobe']} |"
                f" {row['search']['p50_ms']} | {row['search']['p99_ms']} | {row['recall@10']} |"
                f" {row['load'][0]} |"
            )
    return "\n".join(lines)


SYSTEMS = {
    "erase": run_erase,
    "ivf": run_ivf,
    "hnsw": run_hnsw,
    "inmemory": run_inmemory,
    "pgvector": run_pgvector,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--slow-queries", type=int, default=20, help="queries for brute-force InMemoryVectorStore"
    )
    parser.add_argument(
        "--check-queries", type=int, default=50, help="queries compared with a fresh build"
    )
    parser.add_argument("--deletions", type=int, default=200)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument(
        "--spread", type=float, default=0.6, help="cluster noise (norm) of synthetic points"
    )
    parser.add_argument("--real", type=Path, help=".npz with a float32 `vectors` array")
    parser.add_argument("--noise", type=float, default=0.3, help="noise of tiled real vectors")
    parser.add_argument("--cells", type=int, default=4096, help="ours: keyed-sample cells")
    parser.add_argument("--nprobe", type=int, default=32, help="ours: cells read per query")
    parser.add_argument("--ivf-nlist", type=int, default=1024)
    parser.add_argument("--ivf-nprobe", type=int, default=32)
    parser.add_argument("--ef-search", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--table", type=Path, help="print the table of a saved --out file")
    parser.add_argument("--sweep-nprobe", type=int, nargs="+", help="only sweep the recall knob")
    args = parser.parse_args()
    if args.table:
        saved = json.loads(args.table.read_text())
        print(table(saved), sweep_table(saved), sep="\n\n")
        return
    data, queries = dataset(args)
    victims = np.random.default_rng(args.seed + 1).choice(args.n, args.deletions, replace=False)
    if args.sweep_nprobe:
        sweep = {"n": args.n, "sweep": nprobe_sweep(data, queries, args)}
        if args.out:
            previous = json.loads(args.out.read_text()) if args.out.exists() else []
            args.out.write_text(json.dumps([*previous, sweep], indent=1) + "\n")
        return
    report: dict[str, Any] = {
        "n": args.n,
        "dim": DIM,
        "data": str(args.real or "synthetic"),
        "threads": 1,
        "systems": {},
    }
    for name in args.systems:
        load = load_average()
        row = SYSTEMS[name](data, queries, victims, args)
        row["load_before"], row["load_after"] = load, load_average()
        report["systems"][name] = row
        print(name, json.dumps(row), flush=True)
        gc.collect()
    if args.out:
        previous = json.loads(args.out.read_text()) if args.out.exists() else []
        args.out.write_text(json.dumps([*previous, report], indent=1) + "\n")


if __name__ == "__main__":
    main()

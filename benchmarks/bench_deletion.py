"""Deletion under load on every backend: what forgetting costs as the set grows.

The workload of issue #17, with 384-d vectors (DeterministicFakeEmbedding: no model cost):
one process deletes (one id every 0.2 s), one strong reader process selects in a loop, one
adder process adds an example every 0.3 s. For each backend and set size it reports:

- deletion latency p50/p99 (``delete_example`` until it returns: COMMIT, no erasure);
- the time from a deletion's return until the store says its erasure is complete
  (``erasure_pending()`` polled every 5 ms), p50/p99/max;
- the reader's and the adder's longest call that overlapped a deletion or its erasure
  (their stall), next to their p50 outside those windows;
- with ``--snapshot``, the same deletions while another session holds a REPEATABLE READ
  snapshot open (PostgreSQL): deletions must not wait for it; erasure waits.

Usage:
    python benchmarks/bench_deletion.py [--backends sqlite postgres] [--sizes 1000 10000 100000]
        [--deletes 30] [--snapshot] [--out FILE.json]

PostgreSQL runs on a private pgserver (PostgreSQL 16, Unix socket, fsync on) in a temporary
directory. BLAS/OpenMP threads are set to 1. Prints JSON and a markdown table with the load
average; docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402

from langchain_erase import ERASEExampleSelector  # noqa: E402

DIM = 384
PARAMS: dict[str, Any] = {"k": 4, "seed": 0}
KEY = "bench-deletion-log-key"
FILL_BATCH = 5_000
DELETE_EVERY_S = 0.2
ADD_EVERY_S = 0.3


def example(uid: str) -> dict[str, str]:
    return {"input": f"<{uid}> benchmark text {uid[::-1]}", "output": uid[-1]}


def opened(target: str) -> ERASEExampleSelector:
    return ERASEExampleSelector.open(
        target, DeterministicFakeEmbedding(size=DIM), log_key=KEY, **PARAMS
    )


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def _worker(kind: str, target: str, stop: Any, out: Any) -> None:
    """The strong reader (selects in a loop) or the adder (one add every ADD_EVERY_S)."""
    sel = opened(target)
    out.put(("ready", []))
    calls = []
    i = 0
    while not stop.is_set():
        start = time.time()
        if kind == "reader":
            sel.select_examples({"input": f"query {i}"})
        else:
            uid = f"added-{os.getpid()}-{i}"
            sel.add_examples([example(uid)], ids=[uid])
        calls.append((start, time.time() - start))
        i += 1
        if kind == "adder":
            stop.wait(ADD_EVERY_S)
    sel.close()
    out.put((kind, calls))


def fill(target: str, n: int) -> float:
    start = time.perf_counter()
    sel = opened(target)
    for lo in range(len(sel), n, FILL_BATCH):
        hi = min(n, lo + FILL_BATCH)
        ids = [f"ex-{j:07d}" for j in range(lo, hi)]
        sel.add_examples([example(i) for i in ids], ids=ids)
    sel.close()
    return time.perf_counter() - start


def stall(calls: list[tuple[float, float]], windows: list[tuple[float, float]]) -> dict[str, float]:
    """Longest call overlapping a window, and p50 of calls overlapping none."""
    inside, outside = [], []
    for start, took in calls:
        end = start + took
        hit = any(start < w_end and end > w_start for w_start, w_end in windows)
        (inside if hit else outside).append(took)
    return {
        "max_overlapping_ms": 1000 * max(inside, default=0.0),
        "p50_outside_ms": pct(outside, 0.5),
        "p99_outside_ms": pct(outside, 0.99),
        "max_outside_ms": 1000 * max(outside, default=0.0),
        "calls": len(calls),
    }


def run_case(target: str, n: int, deletes: int, snapshot_url: str | None) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(kind, target, stop, out)) for kind in ("reader", "adder")
    ]
    for w in workers:
        w.start()
    sel = opened(target)
    for _ in workers:  # both workers have opened the store
        assert out.get(timeout=600)[0] == "ready"
    time.sleep(0.5)
    victims = [i for i in sel.ids if i.startswith("ex-")][:: max(1, n // deletes)][:deletes]
    holder = None
    if snapshot_url is not None:
        import psycopg

        holder = psycopg.connect(snapshot_url)
        holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM erase_sets").fetchone()
    latencies, in_memory, erasures, windows, pending_at_end, refits = [], [], [], [], 0, 0
    store = sel.store
    assert store is not None
    for victim in victims:
        start = time.time()
        receipt = sel.delete_example(victim)
        returned = time.time()
        latencies.append(returned - start)
        in_memory.append(receipt.seconds)
        refits += receipt.refit
        deadline = returned + (1.0 if holder is not None else 30.0)
        while store.erasure_pending() and time.time() < deadline:
            time.sleep(0.005)
        erased = time.time()
        if store.erasure_pending():
            pending_at_end += 1
        else:
            erasures.append(erased - returned)
        windows.append((start, erased))
        time.sleep(DELETE_EVERY_S)
    if holder is not None:
        holder.rollback()
        holder.close()
        t0 = time.time()
        store.complete_erasure(30.0)
        released = time.time() - t0
    stop.set()
    results = dict(out.get(timeout=120) for _ in workers)
    for w in workers:
        w.join()
    sel.close()
    row: dict[str, Any] = {
        "n": n,
        "deletes": len(latencies),
        "delete_p50_ms": pct(latencies, 0.5),
        "delete_p99_ms": pct(latencies, 0.99),
        "delete_max_ms": 1000 * max(latencies),
        "store_p50_ms": pct([t - m for t, m in zip(latencies, in_memory, strict=True)], 0.5),
        "store_p99_ms": pct([t - m for t, m in zip(latencies, in_memory, strict=True)], 0.99),
        "in_memory_p99_ms": pct(in_memory, 0.99),
        "refits": refits,
        "erasure_p50_ms": pct(erasures, 0.5),
        "erasure_p99_ms": pct(erasures, 0.99),
        "erasure_max_ms": 1000 * max(erasures, default=0.0),
        "reader": stall(results["reader"], windows),
        "adder": stall(results["adder"], windows),
    }
    if holder is not None:
        row["erasures_pending_while_snapshot_open"] = pending_at_end
        row["erasure_after_snapshot_ended_ms"] = 1000 * released
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1_000, 10_000, 100_000])
    parser.add_argument("--deletes", type=int, default=30)
    parser.add_argument("--snapshot", action="store_true", help="also with an open snapshot")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("LANGCHAIN_ERASE_LOG_KEY", KEY)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "loadavg_before": os.getloadavg(),
        "dim": DIM,
        "params": PARAMS,
        "rows": [],
    }
    server = None
    try:
        for backend in args.backends:
            for n in args.sizes:
                work = Path(tempfile.mkdtemp(prefix="erase-bench-del-"))
                snapshot_url = None
                if backend == "sqlite":
                    target = str(work / "store.db")
                else:
                    import pgserver
                    import psycopg

                    if server is None:
                        server = pgserver.get_server(work / "pg", cleanup_mode="delete")
                    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                        conn.execute(f"CREATE DATABASE bench_{n}")
                    target = server.get_uri(f"bench_{n}")
                    snapshot_url = target if args.snapshot else None
                seconds = fill(target, n)
                row = run_case(target, n, args.deletes, None)
                row.update(backend=backend, fill_s=seconds, loadavg=os.getloadavg())
                report["rows"].append(row)
                print(json.dumps(row), flush=True)
                if snapshot_url is not None:
                    row = run_case(target, n, min(args.deletes, 10), snapshot_url)
                    row.update(backend=backend + "+snapshot", loadavg=os.getloadavg())
                    report["rows"].append(row)
                    print(json.dumps(row), flush=True)
    finally:
        if server is not None:
            server.cleanup()
    report["loadavg_after"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    print(table(report))


def table(report: dict[str, Any]) -> str:
    lines = [
        f"{report['machine']}; load average before {report['loadavg_before'][0]:.2f}, "
        f"after {report['loadavg_after'][0]:.2f}; {report['dim']}-d vectors",
        "",
        "| backend | rows | delete p50 / p99 (ms) | of which store p50 / p99 (ms) | refits "
        "| erasure done after p50 / max (ms) | reader max during / outside deletions (ms) "
        "| adder max during / outside (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["rows"]:
        rd, ad = r["reader"], r["adder"]
        lines.append(
            f"| {r['backend']} | {r['n']:,} | {r['delete_p50_ms']:.1f} / {r['delete_p99_ms']:.1f} "
            f"| {r['store_p50_ms']:.1f} / {r['store_p99_ms']:.1f} | {r['refits']} "
            f"| {r['erasure_p50_ms']:.1f} / {r['erasure_max_ms']:.1f} "
            f"| {rd['max_overlapping_ms']:.0f} / {rd['max_outside_ms']:.0f} "
            f"| {ad['max_overlapping_ms']:.0f} / {ad['max_outside_ms']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

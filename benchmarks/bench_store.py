"""Shared-store benchmark: what following a store costs, on SQLite or any other backend.

Measures, with DeterministicFakeEmbedding (no model cost) and n examples:
- select latency p50/p99 of an in-memory selector and of store-backed selectors in strong
  mode (each select checks the committed log head first) and eventual mode;
- end-to-end deletion latency (commit plus the erasure step) against in memory;
- catch-up time of an idle selector's `sync()` over 10,000 logged changes (holding none,
  or holding the deleted examples), and of reopening (loading the rows) after them;
- follower lag in eventual mode (a deletion's return until a follower has applied it);
- throughput of 4 processes doing 70% selects, 20% adds and 10% deletes.

Usage:  python benchmarks/bench_store.py [--target PATH_OR_URL] [--n 2000] [--out FILE.json]
(default target: a SQLite file in a temporary directory). Prints JSON and a markdown table
(docs/benchmarks.md quotes it) with the load average.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_erase import ERASEExampleSelector
from langchain_erase.example_selectors import FOLLOW_INTERVAL_S

PARAMS: dict[str, Any] = {"k": 4, "seed": 0}
DIM = 64
CHANGES = 10_000


def fake() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=DIM)


def example(uid: str) -> dict[str, str]:
    return {"input": f"<{uid}> benchmark text {uid[::-1]}", "output": uid[-1]}


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p99 and mean in milliseconds."""
    ordered = sorted(samples)
    return {
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "mean_ms": 1000 * statistics.fmean(ordered),
    }


def timed(call: Callable[[int], object], repeats: int) -> list[float]:
    out = []
    for i in range(repeats):
        start = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - start)
    return out


def bench_select_and_delete(target: str, n: int, repeats: int) -> dict[str, Any]:
    ids = [f"s-{i:06d}" for i in range(n)]
    rows = [example(i) for i in ids]
    memory = ERASEExampleSelector.from_examples(rows, fake(), ids=ids, **PARAMS)
    strong = ERASEExampleSelector.open(target, fake(), name="select", **PARAMS)
    strong.add_examples(rows, ids=ids)
    query = [{"input": f"query {i}"} for i in range(repeats)]

    def selects(sel: ERASEExampleSelector) -> dict[str, float]:
        sel.select_examples(query[0])  # warm up
        return percentiles(timed(lambda i: sel.select_examples(query[i]), repeats))

    out: dict[str, Any] = {"select_memory": selects(memory), "select_strong": selects(strong)}
    # Opened only now: its follower thread would compete for the GIL with the runs above.
    eventual = ERASEExampleSelector.open(target, fake(), name="select", consistency="eventual")
    out["select_eventual"] = selects(eventual)
    out["strong_overhead_p50_ms"] = out["select_strong"]["p50_ms"] - out["select_memory"]["p50_ms"]
    victims = ids[: min(repeats, n // 2)]
    out["delete_memory"] = percentiles(
        timed(lambda i: memory.delete_example(victims[i]), len(victims))
    )
    out["delete_store"] = percentiles(
        timed(lambda i: strong.delete_example(victims[i]), len(victims))
    )
    lags = []
    for i in range(50):
        receipt = strong.delete_example(ids[len(victims) + i])
        returned = time.perf_counter()
        while eventual.log_position != receipt.position:
            time.sleep(0.0005)
        lags.append(time.perf_counter() - returned)
    out["follower_lag"] = percentiles(lags)
    out["follower_interval_ms"] = 1000 * FOLLOW_INTERVAL_S
    for sel in (strong, eventual):
        sel.close()
    return out


def bench_catch_up(target: str) -> dict[str, Any]:
    """`sync()` over 10,000 changes by a selector that held none of the changed examples
    (6,000 adds, 4,000 deletions), and by one that held the 6,000 (4,000 deletions of
    its examples, then 6,000 new adds); then a reopen after them."""
    idle = ERASEExampleSelector.open(target, fake(), name="catchup", **PARAMS)
    writer = ERASEExampleSelector.open(target, fake(), name="catchup")
    ids = [f"c-{i:06d}" for i in range(12_000)]

    def add(lo: int, hi: int) -> None:
        for start in range(lo, hi, 500):
            writer.add_examples(
                [example(i) for i in ids[start : start + 500]], ids=ids[start : start + 500]
            )

    add(0, 6000)
    holder = ERASEExampleSelector.open(target, fake(), name="catchup")
    for lo in range(0, 4000, 500):
        writer.delete_examples(ids[lo : lo + 500])
    start = time.perf_counter()
    idle.sync()
    sync_s = time.perf_counter() - start
    add(6000, 12_000)
    start = time.perf_counter()
    holder.sync()
    sync_held_s = time.perf_counter() - start
    for sel in (idle, holder):
        assert sel.state_digest() == writer.state_digest() and sel.consistency_repairs == 0
    start = time.perf_counter()
    reopened = ERASEExampleSelector.open(target, fake(), name="catchup")
    reopen_s = time.perf_counter() - start
    for sel in (idle, holder, writer, reopened):
        sel.close()
    return {
        "changes": CHANGES,
        "sync_s": sync_s,
        "sync_held_s": sync_held_s,
        "reopen_s": reopen_s,
        "reopen_rows": len(ids) - 4000,
    }


def _mixed(target: str, proc: int, ops: int, out: Any) -> None:
    sel = ERASEExampleSelector.open(target, fake(), name="mixed")
    mine: list[str] = []
    start = time.perf_counter()
    for step in range(ops):
        kind = step % 10
        if kind < 2 or not mine:
            uid = f"m-{proc}-{step}"
            sel.add_examples([example(uid)], ids=[uid])
            mine.append(uid)
        elif kind == 2:
            sel.delete_example(mine.pop())
        else:
            sel.select_examples({"input": f"q {proc} {step}"})
    out.put(time.perf_counter() - start)
    sel.close()


def bench_throughput(target: str, processes: int, ops: int) -> dict[str, Any]:
    seed = ERASEExampleSelector.open(target, fake(), name="mixed", **PARAMS)
    seed.add_examples(
        [example(f"seed-{i}") for i in range(500)], ids=[f"seed-{i}" for i in range(500)]
    )
    seed.close()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [
        context.Process(target=_mixed, args=(target, p, ops, queue)) for p in range(processes)
    ]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    seconds = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    check = ERASEExampleSelector.open(target, fake(), name="mixed")
    assert check.verify()
    check.close()
    return {
        "processes": processes,
        "ops_per_process": ops,
        "ops_per_s": processes * ops / wall,
        "slowest_s": max(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default=None, help="SQLite path or postgresql:// URL")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        target = args.target or str(Path(tmp) / "bench.db")
        load_before = os.getloadavg()
        report: dict[str, Any] = {
            "target": "sqlite (temporary file)" if args.target is None else "given",
            "n": args.n,
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            **bench_select_and_delete(target, args.n, args.repeats),
            "catch_up": bench_catch_up(target),
            "throughput": bench_throughput(target, args.processes, args.ops),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    rows = [
        ("select, in memory", report["select_memory"]),
        ("select, strong (store)", report["select_strong"]),
        ("select, eventual (store)", report["select_eventual"]),
        ("delete, in memory", report["delete_memory"]),
        ("delete, store (commit + erasure)", report["delete_store"]),
        ("eventual follower lag", report["follower_lag"]),
    ]
    print("\n| operation | p50 ms | p99 ms |\n|---|---|---|")
    for label, figures in rows:
        print(f"| {label} | {figures['p50_ms']:.3f} | {figures['p99_ms']:.3f} |")


if __name__ == "__main__":
    main()

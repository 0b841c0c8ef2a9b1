"""What serving concurrent requests on one local model costs: a shared context with a lock
versus a pool of contexts.

``local_llm`` serializes calls on its one llama.cpp context with a lock. The alternative is a
pool of contexts (one ``local_llm`` each, a request takes whichever is free), which decodes
requests in parallel but splits the cores between contexts and holds one KV cache per context.
This sends ``--requests`` concurrent few-shot requests (threads, as ``batch`` does) ``--rounds``
times per configuration and prints throughput, per-request latency (p50/p99 over every request
of every round), the process's CPU seconds per request and mean busy cores (which, unlike
wall-clock figures, hold up on a machine shared with other work), and the resident memory of
the models. Run:

    .venv/bin/python benchmarks/bench_concurrency.py --model gemma-3-270m --cores 2
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from langchain_erase.llms import local_llm
from langchain_erase.models.local_models import LocalLlamaCpp

__all__ = ["main"]

# Few-shot sentiment requests, shared with integration_tests/test_concurrent_llms.py.
_REVIEWS = json.loads((Path(__file__).with_name("reviews.json")).read_text())
_EXAMPLES: list[list[str]] = _REVIEWS["examples"]
_QUERIES: list[str] = _REVIEWS["queries"]


def _prompt(query: str) -> str:
    shots = "".join(f"Review: {r}\nSentiment: {s}\n\n" for r, s in _EXAMPLES)
    return f"{shots}Review: {query}\nSentiment:"


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _serve(
    models: list[LocalLlamaCpp], prompts: list[str], rounds: int
) -> tuple[list[float], list[float], float]:
    """Latencies of every request, wall time of every round and the process's CPU seconds;
    a request uses whichever model is free."""
    free: queue.Queue[LocalLlamaCpp] = queue.Queue()
    for model in models:
        free.put(model)

    def request(prompt: str, submitted: float) -> float:
        model = free.get()
        try:
            model.invoke(prompt)
        finally:
            free.put(model)
        return time.perf_counter() - submitted

    latencies: list[float] = []
    walls: list[float] = []
    cpu = 0.0
    with ThreadPoolExecutor(len(prompts)) as pool:
        for _ in range(rounds):
            start, cpu_start = time.perf_counter(), time.process_time()
            futures = [pool.submit(request, p, start) for p in prompts]
            latencies += [f.result() for f in futures]
            walls.append(time.perf_counter() - start)
            cpu += time.process_time() - cpu_start
    return latencies, walls, cpu


def _row(
    name: str, make: Callable[[], list[LocalLlamaCpp]], prompts: list[str], rounds: int
) -> list[str]:
    before = _rss_mib()
    models = make()
    for model in models:  # warm each context up once, outside the timing
        model.invoke(prompts[0])
    resident = _rss_mib() - before
    latencies, walls, cpu = _serve(models, prompts, rounds)
    n_requests = len(prompts) * rounds
    return [
        name,
        f"{n_requests / sum(walls):.2f}",
        f"{cpu / n_requests:.2f}",
        f"{cpu / sum(walls):.2f}",
        f"{statistics.median(latencies):.2f}",
        f"{_percentile(latencies, 0.99):.2f}",
        f"{resident:.0f}",
    ]


def main() -> None:
    """Print a Markdown table: requests/s, latency p50/p99 (s), resident MiB per setup."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--cores", type=int, default=2, help="llama.cpp threads in all")
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=8)
    args = parser.parse_args()
    prompts = [_prompt(_QUERIES[i % len(_QUERIES)]) for i in range(args.requests)]

    def models(contexts: int, threads: int) -> Callable[[], list[LocalLlamaCpp]]:
        return lambda: [
            local_llm(args.model, n_ctx=512, n_threads=threads, max_tokens=args.max_tokens)
            for _ in range(contexts)
        ]

    setups = [
        ("lock: 1 context x 1 thread", models(1, 1)),
        (f"lock: 1 context x {args.cores} threads", models(1, args.cores)),
        (f"pool: {args.cores} contexts x 1 thread", models(args.cores, 1)),
        (f"pool: {args.cores} contexts x {args.cores} threads", models(args.cores, args.cores)),
    ]
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    n_prompt = max(local_llm(args.model, n_ctx=512).get_num_tokens(p) for p in prompts)
    print(
        f"{args.requests} concurrent requests x {args.rounds} rounds, {args.model}, "
        f"prompts of at most {n_prompt} tokens, {args.max_tokens} generated tokens max\n"
    )
    print(
        "| setup | requests/s | CPU s/request | cores busy | latency p50 (s) "
        "| latency p99 (s) | model RSS (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, make in setups:
        print("| " + " | ".join(_row(name, make, prompts, args.rounds)) + " |", flush=True)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

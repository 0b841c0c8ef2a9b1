"""Hooks that register the `eval` and `bench` subcommands on the CLI's argparse parser.

`langchain_erase.cli` owns the parser; it calls `add_eval_parser(subparsers)` and
`add_bench_parser(subparsers)`, then dispatches to `args.func(args)` (returns an exit code).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from langchain_erase.evaluation.runner import DEFAULT_TASKS, SELECTOR_NAMES, EvalConfig
from langchain_erase.evaluation.tasks import DEFAULT_DATA_DIR

__all__ = ["add_bench_parser", "add_eval_parser", "run_bench_command", "run_eval_command"]


def _common(parser: argparse.ArgumentParser, out: str) -> None:
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=list(DEFAULT_TASKS),
        help="task names or paths (BIG-bench .json / instruction-induction dir)",
    )
    parser.add_argument(
        "--model", default="gemma-3-270m", help="gemma-3-270m, smollm2-135m or a GGUF path"
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, default=Path(out), help="output directory")
    parser.add_argument("--n-threads", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="test queries per task/seed")


def add_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `eval`: accuracy of zero-shot, random, kNN, MMR and ERASE selectors."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "eval", help="compare demonstration selectors' accuracy on real tasks"
    )
    _common(parser, "results/eval")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8], dest="ks")
    parser.add_argument(
        "--selectors", nargs="+", choices=SELECTOR_NAMES, default=list(SELECTOR_NAMES)
    )
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run_eval_command)
    return parser


def run_eval_command(args: argparse.Namespace) -> int:
    """Run `eval` and print the markdown table."""
    from langchain_erase.evaluation.runner import run_eval

    config = EvalConfig(
        tasks=tuple(args.tasks),
        model=args.model,
        ks=tuple(args.ks),
        seeds=tuple(args.seeds),
        limit=args.limit,
        selectors=tuple(args.selectors),
        out_dir=args.out,
        data_dir=args.data_dir,
        n_ctx=args.n_ctx,
        n_threads=args.n_threads,
        bootstrap=args.bootstrap,
        progress=not args.no_progress,
    )
    run_eval(config, command=["langchain-erase", *sys.argv[1:]])
    print((args.out / "results.md").read_text(encoding="utf-8"))
    return 0


def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `bench`: deletion cost vs n, SISA accuracy, LLM query cost, holistic cost."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="measure unlearning and inference cost of ERASE vs SISA and kNN"
    )
    _common(parser, "results/bench")
    parser.add_argument(
        "--pool-task",
        default="first_word_letter",
        help="task whose pool is used for deletion cost vs n",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000, 2000, 3000])
    parser.add_argument("--deletions", type=int, default=30, help="deletions per size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--llm-queries", type=int, default=20)
    parser.add_argument(
        "--eval-results",
        type=Path,
        default=Path("results/eval/results.json"),
        help="an `eval` results file whose ERASE accuracy is shown beside SISA",
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run_bench_command)
    return parser


def run_bench_command(args: argparse.Namespace) -> int:
    """Run `bench` and print its markdown report."""
    from langchain_erase.evaluation.bench import BenchConfig, run_bench
    from langchain_erase.sisa import SISAConfig

    config = BenchConfig(
        model=args.model,
        pool_task=args.pool_task,
        sizes=tuple(args.sizes),
        deletions=args.deletions,
        k=args.k,
        seed=args.seed,
        tasks=tuple(args.tasks),
        limit=args.limit,
        llm_queries=args.llm_queries,
        sisa=SISAConfig(shards=args.shards, slices=args.slices, seed=args.seed),
        out_dir=args.out,
        eval_results=args.eval_results,
        data_dir=args.data_dir,
        n_threads=args.n_threads,
        progress=not args.no_progress,
    )
    run_bench(config, command=["langchain-erase", *sys.argv[1:]])
    print((args.out / "bench.md").read_text(encoding="utf-8"))
    return 0

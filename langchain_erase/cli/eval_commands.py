"""Hooks that register the `eval` and `bench` subcommands on the CLI's argparse parser.

`langchain_erase.cli` owns the parser; it calls `add_eval_parser(subparsers)` and
`add_bench_parser(subparsers)`, then dispatches to `args.func(args)` (returns an exit code).
Options are range-checked while parsing; before any model loads or anything is written, the
commands also load every task, check the model path and (bench) the pool sizes, so that a
mistake is a typed error the CLI prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_erase.cli.args import check_model, existing_dir, int_at_least, output_dir
from langchain_erase.errors import InvalidParameterError
from langchain_erase.evaluation.runner import DEFAULT_TASKS, SELECTOR_NAMES, EvalConfig
from langchain_erase.evaluation.tasks import (
    DATA_DIR_ENV,
    DEFAULT_DATA_DIR,
    Split,
    expand_tasks,
    load_task,
    split_task,
)

_POSITIVE = int_at_least(1)
_NON_NEGATIVE = int_at_least(0)

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
    parser.add_argument(
        "--data-dir",
        type=existing_dir,
        default=DEFAULT_DATA_DIR,
        help=f"where task names are looked up (default: ${DATA_DIR_ENV}, else shared/datasets "
        "beside the repository)",
    )
    # a string default goes through `type` too, so the default directory is checked as well
    parser.add_argument("--out", type=output_dir, default=out, help="output directory")
    parser.add_argument("--n-threads", type=_POSITIVE, default=None)
    parser.add_argument("--limit", type=_POSITIVE, default=None, help="test queries per task/seed")


def _distinct(option: str, values: Sequence[object]) -> None:
    repeated = [v for i, v in enumerate(values) if v in values[:i]]
    if repeated:
        raise InvalidParameterError(f"argument {option}: {repeated[0]} is given twice")


def _check_tasks(
    names: Sequence[str], data_dir: Path, seeds: Sequence[int], limit: int | None
) -> list[Split]:
    """Every task (groups such as `all` expanded) loaded and split now, so a missing or broken
    one is refused up front."""
    _distinct("--tasks", names)
    return [
        split_task(load_task(name, data_dir), seed, limit=limit)
        for name in expand_tasks(names, data_dir)
        for seed in seeds
    ]


def add_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `eval`: accuracy of zero-shot, random, kNN, MMR and ERASE selectors.

    Args:
        subparsers: The CLI parser's subparsers action.

    Returns:
        The `eval` parser.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "eval", help="compare demonstration selectors' accuracy on real tasks"
    )
    _common(parser, "results/eval")
    parser.add_argument("--seeds", type=_NON_NEGATIVE, nargs="+", default=[0])
    parser.add_argument("--k", type=_POSITIVE, nargs="+", default=[1, 2, 4, 8], dest="ks")
    parser.add_argument(
        "--selectors", nargs="+", choices=SELECTOR_NAMES, default=list(SELECTOR_NAMES)
    )
    parser.add_argument("--n-ctx", type=_POSITIVE, default=4096)
    parser.add_argument("--bootstrap", type=_POSITIVE, default=2000, help="bootstrap resamples")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run_eval_command)
    return parser


def run_eval_command(args: argparse.Namespace) -> int:
    """Check the tasks and model, run `eval` and print the markdown table.

    Args:
        args: The parsed `eval` arguments.

    Returns:
        The exit code (0); mistakes raise typed errors, which the CLI prints.
    """
    from langchain_erase.evaluation.runner import run_eval

    for option, values in (
        ("--seeds", args.seeds),
        ("--k", args.ks),
        ("--selectors", args.selectors),
    ):
        _distinct(option, values)
    _check_tasks(args.tasks, args.data_dir, args.seeds, args.limit)
    check_model(args.model)
    config = EvalConfig(
        tasks=expand_tasks(args.tasks, args.data_dir),
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
    """Register `bench`: deletion cost vs n, SISA accuracy, LLM query cost, holistic cost.

    Args:
        subparsers: The CLI parser's subparsers action.

    Returns:
        The `bench` parser.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="measure unlearning and inference cost of ERASE vs SISA and kNN"
    )
    _common(parser, "results/bench")
    parser.add_argument(
        "--pool-task",
        default="first_word_letter",
        help="task whose pool is used for deletion cost vs n",
    )
    parser.add_argument(
        "--sizes",
        type=int_at_least(2),  # a deletion must leave at least one example
        nargs="+",
        default=[250, 500, 1000, 2000, 3000],
    )
    parser.add_argument("--deletions", type=_POSITIVE, default=30, help="deletions per size")
    parser.add_argument("--seed", type=_NON_NEGATIVE, default=0)
    parser.add_argument("--k", type=_POSITIVE, default=4)
    parser.add_argument("--shards", type=_POSITIVE, default=4)
    parser.add_argument("--slices", type=_POSITIVE, default=4)
    parser.add_argument("--llm-queries", type=_POSITIVE, default=20)
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
    """Check the tasks, pool sizes, `--eval-results` and model, run `bench` and print its
    markdown report.

    Args:
        args: The parsed `bench` arguments.

    Returns:
        The exit code (0); mistakes raise typed errors, which the CLI prints.
    """
    from langchain_erase.evaluation.bench import BenchConfig, run_bench
    from langchain_erase.evaluation.sisa import SISAConfig

    _distinct("--sizes", args.sizes)
    _check_tasks(args.tasks, args.data_dir, [args.seed], args.limit)
    (pool,) = _check_tasks([args.pool_task], args.data_dir, [args.seed], None)
    if max(args.sizes) > len(pool.train):
        raise InvalidParameterError(
            f"argument --sizes: {max(args.sizes)} is more than the {len(pool.train)} "
            f"training examples of --pool-task {args.pool_task}"
        )
    _check_eval_results(args.eval_results)
    check_model(args.model)
    config = BenchConfig(
        model=args.model,
        pool_task=args.pool_task,
        sizes=tuple(args.sizes),
        deletions=args.deletions,
        k=args.k,
        seed=args.seed,
        tasks=expand_tasks(args.tasks, args.data_dir),
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


def _check_eval_results(path: Path) -> None:
    """An `--eval-results` file that exists must be an `eval` results.json (bench reads it
    last, after the measurements)."""
    if not path.exists():
        return
    try:
        rows = json.loads(path.read_text(encoding="utf-8")).get("rows")
    except (OSError, ValueError, RecursionError, AttributeError):
        rows = None
    keys = {"task", "selector", "k", "per_seed_accuracy"}
    if not isinstance(rows, list) or not all(
        isinstance(r, dict) and keys <= r.keys() and isinstance(r["per_seed_accuracy"], dict)
        for r in rows
    ):
        raise InvalidParameterError(f"argument --eval-results: {path} is not an eval results file")

"""The `eval` and `bench` hooks register their subcommands with a `func` to dispatch to."""

from __future__ import annotations

import argparse
from pathlib import Path

from langchain_erase.cli.eval_commands import (
    add_bench_parser,
    add_eval_parser,
    run_bench_command,
    run_eval_command,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langchain-erase")
    sub = parser.add_subparsers(required=True)
    add_eval_parser(sub)
    add_bench_parser(sub)
    return parser


def test_eval_arguments() -> None:
    args = _parser().parse_args(
        [
            "eval",
            "--tasks",
            "sentiment",
            "--k",
            "1",
            "4",
            "--seeds",
            "0",
            "1",
            "--limit",
            "5",
            "--model",
            "smollm2-135m",
            "--selectors",
            "random",
            "erase-centroid",
        ]
    )
    assert args.func is run_eval_command
    assert args.ks == [1, 4] and args.seeds == [0, 1] and args.limit == 5
    assert args.selectors == ["random", "erase-centroid"]
    assert args.out == Path("results/eval")


def test_bench_arguments_and_defaults() -> None:
    args = _parser().parse_args(["bench", "--sizes", "100", "200", "--shards", "8"])
    assert args.func is run_bench_command
    assert args.sizes == [100, 200] and args.shards == 8 and args.slices == 4
    assert args.model == "gemma-3-270m" and args.k == 4

"""The command line: parser, subcommands, and the demo's data fallback (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DATASETS

from langchain_erase.cli import build_parser, load_demo_examples, main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(cmd in out for cmd in ("demo", "eval", "bench"))


def test_demo_arguments_have_sensible_defaults() -> None:
    args = build_parser().parse_args(["demo"])
    assert (args.model, args.k, args.selection, args.n_gpu_layers) == (
        "gemma-3-270m",
        4,
        "random",
        0,
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--selection", "nearest"])


def test_demo_data_comes_from_shared_datasets_or_the_bundled_set(tmp_path: Path) -> None:
    source, examples = load_demo_examples(DATASETS, limit=50)
    assert "shared" in source and len(examples) == 50
    source, examples = load_demo_examples(tmp_path, limit=1000)
    assert "bundled" in source and len(examples) == 40
    assert {e["output"] for e in examples} == {"positive", "negative"}


def test_typed_errors_become_a_message_and_exit_code_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # k = 0 is refused by the selector before any model is loaded
    assert main(["demo", "--k", "0", "--data-dir", str(tmp_path)]) == 2
    assert "error: k must be a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--limit", "-1"])

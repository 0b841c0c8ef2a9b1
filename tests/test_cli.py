"""The command line: parser, subcommands, and the demo's data fallback (no model needed)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATASETS
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import FakeListLLM
from task_files import (
    INCOMPLETE_BIGBENCH,
    INCOMPLETE_INSTRUCTION_INDUCTION,
    MALFORMED_TASK_FILES,
    write_parity_task,
)

from langchain_erase import ERASEExampleSelector, InvalidParameterError, __version__
from langchain_erase.cli import build_parser, load_demo_examples, main

# the module (the package's `main` attribute is the function of that name)
cli_main = importlib.import_module("langchain_erase.cli.main")


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(cmd in out for cmd in ("demo", "eval", "bench"))


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"langchain-erase {__version__}\n"


def test_demo_arguments_have_sensible_defaults() -> None:
    args = build_parser().parse_args(["demo"])
    assert (args.model, args.k, args.selection, args.n_gpu_layers, args.data_dir) == (
        "gemma-3-270m",
        4,
        "similar",
        0,
        None,
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--selection", "nearest"])


def test_demo_data_comes_from_the_data_dir_or_the_bundled_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, examples = load_demo_examples(DATASETS, limit=50)
    assert "shared" in source and len(examples) == 50
    assert load_demo_examples(None, limit=50) == (source, examples)  # the default data dir
    monkeypatch.setattr(cli_main, "DEFAULT_DATA_DIR", tmp_path)  # a default without the task
    source, examples = load_demo_examples(None, limit=1000)
    assert "bundled" in source and len(examples) == 40
    assert {e["output"] for e in examples} == {"positive", "negative"}
    # a directory the user names must hold the task: no quiet fallback to the bundled set
    with pytest.raises(InvalidParameterError, match="has no instruction_induction/sentiment"):
        load_demo_examples(tmp_path, limit=1000)


NO_MODEL = "/nonexistent/model.gguf"  # commands must fail on their arguments before this


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory with a valid task in data/ (so `--out` defaults land here)."""
    monkeypatch.chdir(tmp_path)
    write_parity_task(tmp_path / "data")
    return tmp_path


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], workdir: Path) -> str:
    """Run the CLI; it must exit 2 with one line on stderr and write nothing."""
    before = sorted(workdir.rglob("*"))
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("langchain-erase"), err
    assert sorted(workdir.rglob("*")) == before
    return err


@pytest.fixture
def no_model_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tripwire: constructing the demo's embedder or LLM fails the test, so a refusal that
    passes came before any model was loaded."""

    def tripwire(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr("langchain_erase.embeddings.LlamaCppEmbeddings", tripwire)
    monkeypatch.setattr("langchain_erase.llms.local_llm", tripwire)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--model", "nosuch"], "argument --model: 'nosuch' is neither a known model"),
        (["demo", "--k", "0"], "argument --k: must be >= 1, got 0"),
        (["demo", "--limit", "0"], "argument --limit: must be >= 1, got 0"),
        (["demo", "--n-gpu-layers", "-2"], "argument --n-gpu-layers: must be >= -1"),
        (["demo", "--data-dir", "/nonexistent"], "argument --data-dir: '/nonexistent' does not"),
        (["demo", "--data-dir", "a_file"], "argument --data-dir: 'a_file' is not a directory"),
        (["demo", "--data-dir", "."], "argument --data-dir: . has no instruction_induction/"),
        (["eval", "--data-dir", "/nonexistent"], "argument --data-dir: '/nonexistent' does not"),
        (["bench", "--data-dir", "/nonexistent"], "argument --data-dir: '/nonexistent' does not"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_demo_refuses_a_bad_argument_before_loading_a_model(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    workdir: Path,
    no_model_loaded: None,
) -> None:
    (workdir / "a_file").write_text("x")
    assert message in _refused(argv, capsys, workdir)


def test_demo_with_good_arguments_goes_on_to_load_the_models(
    workdir: Path, no_model_loaded: None
) -> None:
    # the tripwire above is where the demo loads its models: checked arguments reach it
    write_parity_task(workdir / "data", "sentiment")
    with pytest.raises(AssertionError, match="a model was loaded"):
        main(["demo", "--data-dir", "data", "--limit", "1", "--k", "1"])


def _bad_task(workdir: Path, raw: bytes) -> str:
    path = workdir / "data" / "broken.json"
    path.write_bytes(raw)
    return str(path)


@pytest.mark.parametrize("raw", MALFORMED_TASK_FILES.values(), ids=MALFORMED_TASK_FILES.keys())
def test_malformed_dataset_json_is_a_usage_error(
    raw: bytes, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    task = _bad_task(workdir, raw)
    for argv in (
        ["eval", "--tasks", task, "--model", NO_MODEL],
        ["bench", "--pool-task", task, "--tasks", "parity", "--data-dir", "data"],
        ["bench", "--tasks", task, "--model", NO_MODEL],
    ):
        assert "broken.json" in _refused(argv, capsys, workdir)


@pytest.mark.parametrize("data", INCOMPLETE_BIGBENCH.values(), ids=INCOMPLETE_BIGBENCH.keys())
def test_incomplete_dataset_json_is_a_usage_error(
    data: object, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    task = _bad_task(workdir, json.dumps(data).encode())
    assert "broken.json" in _refused(
        ["eval", "--tasks", task, "--model", NO_MODEL], capsys, workdir
    )


@pytest.mark.parametrize(
    "data", INCOMPLETE_INSTRUCTION_INDUCTION.values(), ids=INCOMPLETE_INSTRUCTION_INDUCTION.keys()
)
def test_incomplete_demo_dataset_is_a_usage_error(
    data: object, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    directory = write_parity_task(workdir / "data", "sentiment")
    (directory / "induce.json").write_text(json.dumps(data), encoding="utf-8")
    argv = ["demo", "--data-dir", "data", "--model", NO_MODEL]
    assert "induce.json" in _refused(argv, capsys, workdir)
    argv = ["eval", "--tasks", "sentiment", "--data-dir", "data", "--model", NO_MODEL]
    assert "induce.json" in _refused(argv, capsys, workdir)


def test_unknown_task_is_a_usage_error(capsys: pytest.CaptureFixture[str], workdir: Path) -> None:
    for argv in (
        ["eval", "--tasks", "parity", "no_such_task", "--data-dir", "data", "--model", NO_MODEL],
        ["bench", "--pool-task", "no_such_task", "--data-dir", "data", "--tasks", "parity"],
        ["bench", "--tasks", "no_such_task", "--data-dir", "data", "--model", NO_MODEL],
        ["eval", "--tasks", "x" * 300, "--model", NO_MODEL],
    ):
        assert "no task" in _refused(argv, capsys, workdir)


def test_out_that_cannot_be_created_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    (workdir / "a_file").write_text("x")
    for out in ("a_file", "a_file/results", "results/" + "x" * 300, "/proc/no/such/dir"):
        for command in ("eval", "bench"):
            argv = [command, "--tasks", "parity", "--data-dir", "data", "--out", out]
            assert "cannot create output directory" in _refused(
                [*argv, "--model", NO_MODEL], capsys, workdir
            )


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--sizes", "0"],
        ["bench", "--sizes", "-5"],
        ["bench", "--sizes", "100", "1"],
        ["bench", "--sizes", "ten"],
        ["bench", "--shards", "0"],
        ["bench", "--slices", "-1"],
        ["bench", "--deletions", "0"],
        ["bench", "--llm-queries", "0"],
        ["bench", "--seed", "-1"],
        ["bench", "--n-threads", "-3"],
        ["eval", "--n-threads", "-3"],
        ["eval", "--n-threads", "0"],
        ["eval", "--k", "4", "0"],
        ["eval", "--seeds", "-1"],
        ["eval", "--limit", "0"],
        ["eval", "--bootstrap", "0"],
        ["eval", "--n-ctx", "-1"],
        ["demo", "--n-threads", "-3"],
        ["demo", "--seed", "-2"],
    ],
    ids=" ".join,
)
def test_out_of_range_option_is_a_one_line_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    err = _refused([*argv, "--model", NO_MODEL], capsys, workdir)
    assert f"argument {argv[1]}" in err


def test_repeated_list_values_and_oversized_pool_are_usage_errors(
    capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    common = ["--data-dir", "data", "--model", NO_MODEL, "--tasks", "parity"]
    assert "--k" in _refused(["eval", *common, "--k", "2", "2"], capsys, workdir)
    assert "--tasks" in _refused(["eval", *common, "parity"], capsys, workdir)
    argv = ["bench", *common, "--pool-task", "parity", "--sizes", "41"]
    assert "--sizes" in _refused(argv, capsys, workdir)
    (workdir / "results.json").write_text('{"rows": [{"k": 1}]}')
    argv = ["bench", *common, "--pool-task", "parity", "--sizes", "5"]
    assert "--eval-results" in _refused([*argv, "--eval-results", "results.json"], capsys, workdir)


def _cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    repo = Path(__file__).resolve().parents[1]
    environ = {**os.environ, "PYTHONPATH": str(repo), **env}
    return subprocess.run(
        [sys.executable, "-m", "langchain_erase.cli", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_eval_finds_the_shared_data_when_run_outside_the_repository(tmp_path: Path) -> None:
    # the data directory was ../shared relative to the working directory: from elsewhere no
    # task name was found. Tasks are checked in order, so reaching the second means the
    # first was found.
    args = ["eval", "--tasks", "sentiment", "no_such_task", "--model", NO_MODEL]
    result = _cli(args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "no task 'no_such_task'" in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_data_dir_environment_variable_is_where_task_names_are_found(tmp_path: Path) -> None:
    write_parity_task(tmp_path / "data")
    (tmp_path / "run").mkdir()
    args = ["bench", "--pool-task", "parity", "--tasks", "parity", "--sizes", "1000"]
    result = _cli(args, cwd=tmp_path / "run", LANGCHAIN_ERASE_DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 2, result.stderr
    assert "more than the 40 training examples of --pool-task parity" in result.stderr
    assert list((tmp_path / "run").iterdir()) == []


@pytest.mark.parametrize("command", ["eval", "bench"])
def test_task_groups_are_expanded_before_the_tasks_are_checked(
    command: str, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    # `--tasks all` names every task in the data dir: the check goes past the tasks (a broken
    # one among them is named) instead of refusing "all" as a task that does not exist
    write_parity_task(workdir / "data", "second")
    argv = [command, "--tasks", "all", "--data-dir", "data", "--model", NO_MODEL]
    argv += ["--pool-task", "parity", "--sizes", "20"] if command == "bench" else []
    assert "model.gguf" in _refused(argv, capsys, workdir)
    (workdir / "data" / "instruction_induction" / "second" / "execute.json").write_text("{")
    assert "execute.json" in _refused(argv, capsys, workdir)


def test_demo_chain_asks_for_a_label_after_the_selected_demonstrations() -> None:
    _, examples = load_demo_examples(DATASETS, limit=40)
    selector = ERASEExampleSelector.from_examples(
        examples, DeterministicFakeEmbedding(size=16), k=2, input_keys=["input"]
    )
    prompt, chain = cli_main.demo_chain(selector, FakeListLLM(responses=[" Negative\n"]))
    query, expected = cli_main.DEMO_QUERIES[1]
    text = prompt.format(input=query)
    assert text.endswith(f"Review: {query}\nSentiment:")
    for example in selector.select_examples({"input": query}):
        assert f"Review: {example['input']}\nSentiment: {example['output']}\n" in text
    answer = chain.invoke({"input": query})
    assert answer == "Negative" and cli_main.is_right(answer, expected)
    assert not cli_main.is_right("positive", expected)

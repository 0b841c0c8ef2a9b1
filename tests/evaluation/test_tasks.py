"""Task loading, seeded splits and the majority baseline, on small synthetic task files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from task_files import (
    INCOMPLETE_BIGBENCH,
    INCOMPLETE_INSTRUCTION_INDUCTION,
    MALFORMED_TASK_FILES,
)

from langchain_erase.errors import ERASEError, InvalidParameterError
from langchain_erase.evaluation.tasks import (
    DEFAULT_DATA_DIR,
    TaskFormatError,
    expand_tasks,
    load_task,
    majority_baseline,
    split_task,
)


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def mc_task_file(tmp_path: Path) -> Path:
    examples = [
        {"input": f"q{i}", "target_scores": {"Yes": int(i % 3 == 0), "No": int(i % 3 != 0)}}
        for i in range(20)
    ]
    return _write(
        tmp_path / "yn.json",
        {
            "name": "yn",
            "preferred_score": "multiple_choice_grade",
            "task_prefix": "Answer.\n",
            "example_input_prefix": "\nQ: ",
            "example_output_prefix": "\nA: ",
            "examples": examples,
        },
    )


@pytest.fixture
def ii_task_dir(tmp_path: Path) -> Path:
    d = tmp_path / "plural"
    d.mkdir()
    words = ["cat", "dog", "box", "car", "pen", "cup"]
    _write(
        d / "induce.json",
        {"examples": {str(i): {"input": w, "output": w + "s"} for i, w in enumerate(words)}},
    )
    _write(
        d / "execute.json",
        {
            "examples": {
                "1": {"input": "hat", "output": "hats"},
                "2": {"input": "map", "output": "maps"},
            }
        },
    )
    return d


def test_multiple_choice_task_appends_choices_and_keeps_best_answers(mc_task_file: Path) -> None:
    task = load_task(mc_task_file)
    assert task.kind == "multiple_choice"
    first = task.examples[0]
    assert first.options == ("Yes", "No")
    assert first.answers == ("Yes",)
    assert first.input == "q0\n  choice: Yes\n  choice: No"


def test_prompt_follows_bigbench_prefixes(mc_task_file: Path) -> None:
    task = load_task(mc_task_file)
    demo = {"input": "d", "output": "No"}
    prompt = task.prompt([demo], task.examples[1])
    assert prompt.startswith("Answer.\n\nQ: d\nA: No\n\nQ: q1")
    assert prompt.endswith("\nA: ")


def test_exact_match_target_lists_are_all_accepted(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "count.json",
        {
            "preferred_score": "exact_str_match",
            "examples": [
                {"input": "a b c", "target": ["three", "3"]},
                {"input": "a", "target": "1"},
            ],
        },
    )
    task = load_task(path)
    assert task.kind == "exact_match"
    assert task.examples[0].answers == ("three", "3")
    assert task.examples[0].output == "three"


def test_seeded_split_is_reproducible_and_disjoint(mc_task_file: Path) -> None:
    task = load_task(mc_task_file)
    a, b = split_task(task, seed=3), split_task(task, seed=3)
    assert a.record() == b.record()
    assert {e.id for e in a.train}.isdisjoint(e.id for e in a.test)
    assert len(a.train) + len(a.test) == 20
    assert split_task(task, seed=4).record()["test_ids"] != a.record()["test_ids"]


def test_predefined_test_set_is_kept_and_limited(ii_task_dir: Path) -> None:
    task = load_task(ii_task_dir)
    split = split_task(task, seed=0)
    assert [e.input for e in split.test] == ["hat", "map"]
    assert len(split.train) == 6
    assert split.record()["predefined_test"] is True
    assert len(split_task(task, seed=0, limit=1).test) == 1


def test_majority_baseline_uses_train_majority(mc_task_file: Path) -> None:
    split = split_task(load_task(mc_task_file), seed=0)
    majority_is_no = sum(e.output == "No" for e in split.train) > len(split.train) / 2
    assert majority_is_no
    expected = sum(e.output == "No" for e in split.test) / len(split.test)
    assert majority_baseline(split) == pytest.approx(expected)


def test_bad_files_raise_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(TaskFormatError):
        load_task(_write(tmp_path / "empty.json", {"examples": []}))
    with pytest.raises(TaskFormatError):
        load_task("no-such-task", data_dir=tmp_path)


def test_real_instruction_induction_task_loads_by_name() -> None:
    # CI runs with ../shared beside the checkout: a missing data set is a failure, not a skip

    split = split_task(load_task("sentiment"), seed=0, limit=10)
    assert len(split.test) == 10
    assert {e.output for e in split.train} == {"positive", "negative"}


@pytest.mark.parametrize("raw", MALFORMED_TASK_FILES.values(), ids=MALFORMED_TASK_FILES.keys())
def test_malformed_task_file_is_a_task_format_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(raw)
    with pytest.raises(TaskFormatError):
        load_task(path)
    (tmp_path / "ii").mkdir()
    (tmp_path / "ii" / "induce.json").write_bytes(raw)
    (tmp_path / "ii" / "execute.json").write_bytes(raw)
    with pytest.raises(TaskFormatError):
        load_task(tmp_path / "ii")


@pytest.mark.parametrize("data", INCOMPLETE_BIGBENCH.values(), ids=INCOMPLETE_BIGBENCH.keys())
def test_incomplete_bigbench_task_is_a_task_format_error(tmp_path: Path, data: object) -> None:
    with pytest.raises(TaskFormatError):
        load_task(_write(tmp_path / "incomplete.json", data))


@pytest.mark.parametrize(
    "data", INCOMPLETE_INSTRUCTION_INDUCTION.values(), ids=INCOMPLETE_INSTRUCTION_INDUCTION.keys()
)
def test_incomplete_instruction_induction_task_is_a_task_format_error(
    ii_task_dir: Path, data: object
) -> None:
    _write(ii_task_dir / "execute.json", data)
    with pytest.raises(TaskFormatError):
        load_task(ii_task_dir)


def test_task_name_too_long_for_the_file_system_is_a_task_format_error(tmp_path: Path) -> None:
    with pytest.raises(TaskFormatError):
        load_task("x" * 300, data_dir=tmp_path)


def test_task_format_error_is_one_of_the_packages_typed_errors() -> None:
    # the CLI turns ERASEError into a one-line usage error; a TaskFormatError was a traceback
    assert issubclass(TaskFormatError, ERASEError)


@pytest.mark.parametrize("seed, limit", [(-1, None), (0, 0), (0, -2)])
def test_negative_seed_or_non_positive_limit_is_a_typed_error(
    mc_task_file: Path, seed: int, limit: int | None
) -> None:
    with pytest.raises(InvalidParameterError):
        split_task(load_task(mc_task_file), seed, limit=limit)


def test_default_data_dir_does_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `eval` run outside the repository looked for ../shared relative to where it ran
    assert DEFAULT_DATA_DIR.is_absolute()
    monkeypatch.chdir(tmp_path)
    assert load_task("sentiment").name == "sentiment"


@pytest.mark.parametrize("name", ["cause_and_effect", "common_concept", "translation_en-de"])
def test_instruction_induction_tasks_without_input_output_or_with_alternatives(name: str) -> None:
    task = load_task(name)
    assert all(e.input and e.output and e.output == e.answers[0] for e in task.examples)
    if name == "cause_and_effect":
        first = task.examples[0]  # cause "It started raining." shown with its effect
        assert first.output == "It started raining." and first.input.startswith("Sentence 1: ")
        orders = {e.input.startswith(f"Sentence 1: {e.output}") for e in task.examples}
        assert orders == {True, False}
    else:
        assert any(len(e.answers) > 1 for e in task.examples)


def test_every_shared_task_loads() -> None:
    for name in expand_tasks(["all"], DEFAULT_DATA_DIR):
        assert load_task(name).examples

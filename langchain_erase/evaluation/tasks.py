"""Evaluation tasks read in place from BIG-bench JSON and instruction-induction files.

Both formats become one typed `Task`: examples with an input, a canonical output (what a
demonstration shows), the accepted answers (exact match) and, for multiple choice, the options
scored by log-likelihood. The train/test split is a function of the seed alone (a numpy
Generator, never global random state) and is recorded by id in the results, so every selector
is compared on the same split and a run can be reproduced exactly.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from langchain_erase.core.hashing import keyed_hash64
from langchain_erase.errors import ERASEError, InvalidParameterError

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "TASK_GROUPS",
    "Example",
    "Split",
    "Task",
    "TaskFormatError",
    "expand_tasks",
    "load_bigbench_task",
    "load_instruction_induction_task",
    "load_task",
    "majority_baseline",
    "split_task",
]

DATA_DIR_ENV = "LANGCHAIN_ERASE_DATA_DIR"
"""Environment variable that overrides `DEFAULT_DATA_DIR` (read once, at import)."""


def _default_data_dir() -> Path:
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    # ../shared/datasets beside the repository, whatever the working directory is
    return Path(__file__).resolve().parents[3] / "shared" / "datasets"


DEFAULT_DATA_DIR = _default_data_dir()
"""Where `load_task` looks for task names: `$LANGCHAIN_ERASE_DATA_DIR` if set, else
`shared/datasets` beside the repository that holds this package (data is never copied).
Absolute, so it does not depend on the working directory."""

TaskKind = Literal["multiple_choice", "exact_match"]


class TaskFormatError(ERASEError, ValueError):
    """A task file is missing, malformed, or in a layout this loader does not support."""


@dataclass(frozen=True)
class Example:
    """One task example; `input` already includes appended choices when the task asks for them."""

    id: str
    input: str
    output: str
    answers: tuple[str, ...]
    options: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, str]:
        """The form demonstration selectors store and return (`id` lets us map back)."""
        return {"id": self.id, "input": self.input, "output": self.output}


@dataclass(frozen=True)
class Task:
    """A task and its prompt format (BIG-bench's prefix conventions)."""

    name: str
    source: str
    kind: TaskKind
    examples: tuple[Example, ...]
    task_prefix: str = ""
    input_prefix: str = "\nQ: "
    output_prefix: str = "\nA: "
    separator: str = "\n"
    test_ids: tuple[str, ...] | None = None
    """Ids of a predefined test set (instruction induction's `execute.json`), else None."""

    def prompt(self, demonstrations: Sequence[dict[str, str]], query: Example) -> str:
        """Task prefix, the demonstrations with their outputs, then the query awaiting its own."""
        shots = "".join(
            f"{self.input_prefix}{d['input']}{self.output_prefix}{d['output']}{self.separator}"
            for d in demonstrations
        )
        return f"{self.task_prefix}{shots}{self.input_prefix}{query.input}{self.output_prefix}"


@dataclass(frozen=True)
class Split:
    """A seeded train/test split: train is the demonstration pool, test the scored queries."""

    task: Task
    seed: int
    train: tuple[Example, ...]
    test: tuple[Example, ...]

    def record(self) -> dict[str, Any]:
        """The split as written into results: enough to rebuild it without the code."""
        return {
            "task": self.task.name,
            "source": self.task.source,
            "seed": self.seed,
            "predefined_test": self.task.test_ids is not None,
            "train_ids": [e.id for e in self.train],
            "test_ids": [e.id for e in self.test],
        }


def _read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    # ValueError covers invalid JSON, invalid UTF-8 and integers too long to convert
    except (OSError, ValueError, RecursionError) as exc:
        raise TaskFormatError(f"cannot read task file {path}: {exc}") from exc


def _optional_str(data: dict[str, Any], key: str, default: str, path: Path) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise TaskFormatError(f"{path}: field {key!r} must be a string")
    return value


def _score(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TaskFormatError(f"{where} has a score that is not a finite number")
    return float(value)


def _bigbench_example(
    raw: object, idx: int, meta: dict[str, Any], multiple_choice: bool, path: Path
) -> Example:
    where = f"{path} example {idx}"
    if not isinstance(raw, dict):
        raise TaskFormatError(f"{where} is not an object")
    text = raw.get("input")
    if not isinstance(text, str):
        raise TaskFormatError(f"{where} has no string input")
    scores = raw.get("target_scores")
    if multiple_choice:
        if not isinstance(scores, dict) or not scores:
            raise TaskFormatError(f"{where} has no target_scores")
        values = {str(o): _score(s, where) for o, s in scores.items()}
        options = tuple(values)
        best = max(values.values())
        answers = tuple(o for o, s in values.items() if s == best)
        if meta.get("append_choices_to_input", True):
            choice_prefix = _optional_str(meta, "choice_prefix", "\n  choice: ", path)
            text += "".join(f"{choice_prefix}{o}" for o in options)
        return Example(str(idx), text, answers[0], answers, options)
    target = raw.get("target")
    targets = [target] if isinstance(target, str) else target
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise TaskFormatError(f"{where} has no string target")
    return Example(str(idx), text, targets[0], tuple(targets))


def load_bigbench_task(path: Path) -> Task:
    """A BIG-bench JSON task, scored as its `preferred_score` says (multiple-choice grade or
    exact string match)."""
    data = _read_json(path)
    raw_examples = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(raw_examples, list) or not raw_examples:
        raise TaskFormatError(f"{path} has no examples list")
    multiple_choice = data.get("preferred_score") == "multiple_choice_grade"
    return Task(
        name=_optional_str(data, "name", path.stem, path),
        source=str(path),
        kind="multiple_choice" if multiple_choice else "exact_match",
        examples=tuple(
            _bigbench_example(r, i, data, multiple_choice, path) for i, r in enumerate(raw_examples)
        ),
        task_prefix=_optional_str(data, "task_prefix", "", path),
        input_prefix=_optional_str(data, "example_input_prefix", "\nQ: ", path),
        output_prefix=_optional_str(data, "example_output_prefix", "\nA: ", path),
        separator=_optional_str(data, "few_shot_example_separator", "\n", path),
    )


def _ii_examples(path: Path, id_prefix: str) -> list[Example]:
    data = _read_json(path)
    raw = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(raw, dict):
        raise TaskFormatError(f"{path} has no examples mapping")
    out = []
    for key, ex in raw.items():
        if not isinstance(ex, dict):
            raise TaskFormatError(f"{path} example {key} is not an object")
        text, output, answers = _ii_fields(ex, f"{id_prefix}{key}")
        if not isinstance(text, str) or not isinstance(output, str):
            raise TaskFormatError(f"{path} example {key} lacks string input/output")
        out.append(Example(f"{id_prefix}{key}", text, output, answers))
    return out


#: Further accepted answers some instruction-induction tasks list beside `output`.
_II_ALTERNATIVES = ("possible_translations", "possible_outputs", "all_common_concepts")


def _ii_fields(ex: dict[str, Any], example_id: str) -> tuple[Any, Any, tuple[str, ...]]:
    """Input, output and accepted answers of one instruction-induction example. Two tasks
    store no input/output; they are built as in the instruction-induction prompts:
    `cause_and_effect` shows both sentences (in an order keyed by the id) and expects the
    cause; `common_concept` lists the items and expects the concept."""
    text, output = ex.get("input"), ex.get("output")
    if text is None and isinstance(ex.get("cause"), str) and isinstance(ex.get("effect"), str):
        pair = [ex["cause"], ex["effect"]]
        if keyed_hash64(0, "cause-order", example_id) % 2:
            pair.reverse()
        text, output = f"Sentence 1: {pair[0]} Sentence 2: {pair[1]}", ex["cause"]
    elif text is None and isinstance(ex.get("items"), list):
        text, output = ", ".join(str(i) for i in ex["items"]), ex.get("concept")
    answers = [output] if isinstance(output, str) else []
    for field in _II_ALTERNATIVES:
        extra = ex.get(field)
        if isinstance(extra, list):
            answers += [a for a in extra if isinstance(a, str) and a not in answers]
    return text, output, tuple(answers)


def load_instruction_induction_task(directory: Path) -> Task:
    """An instruction-induction task: `induce.json` is the pool, `execute.json` the test set."""
    induce = _ii_examples(directory / "induce.json", "induce-")
    execute = _ii_examples(directory / "execute.json", "execute-")
    return Task(
        name=directory.name,
        source=str(directory),
        kind="exact_match",
        examples=tuple(induce + execute),
        input_prefix="Input: ",
        output_prefix="\nOutput: ",
        separator="\n\n",
        test_ids=tuple(e.id for e in execute),
    )


def load_task(name_or_path: str | Path, data_dir: Path = DEFAULT_DATA_DIR) -> Task:
    """A task by path (a BIG-bench .json file or an instruction-induction directory) or by
    name, looked up in `data_dir/instruction_induction/` and then `data_dir/bbii/`.

    Args:
        name_or_path: A task name or path.
        data_dir: Where names are looked up.

    Returns:
        The task.

    Raises:
        TaskFormatError: No such task, or its files are unreadable, malformed or incomplete.
    """
    path = Path(name_or_path)
    candidates = [
        path,
        data_dir / "instruction_induction" / str(name_or_path),
        data_dir / "bbii" / f"{name_or_path}.json",
    ]
    for candidate in candidates:
        try:  # a name the file system refuses (too long, NUL byte) names no task
            is_dir, is_file = candidate.is_dir(), candidate.is_file()
        except (OSError, ValueError):
            continue
        if is_dir:
            return load_instruction_induction_task(candidate)
        if is_file:
            return load_bigbench_task(candidate)
    raise TaskFormatError(f"no task {str(name_or_path)!r} (looked in {data_dir})")


def split_task(
    task: Task, seed: int, *, test_fraction: float = 0.3, limit: int | None = None
) -> Split:
    """Seeded split. A predefined test set is kept (and only subsampled by `limit`);
    otherwise a seeded permutation puts `test_fraction` of the examples in the test set.

    Args:
        task: The task.
        seed: A non-negative seed.
        test_fraction: Share of the examples tested when there is no predefined test set.
        limit: At most this many (>= 1) test queries.

    Returns:
        The split.

    Raises:
        InvalidParameterError: A parameter is out of range.
        TaskFormatError: The task is too small to split.
    """
    if not 0.0 < test_fraction < 1.0:
        raise InvalidParameterError("test_fraction must be in (0, 1)")
    if seed < 0:
        raise InvalidParameterError(f"seed must be >= 0, got {seed}")
    if limit is not None and limit < 1:
        raise InvalidParameterError(f"limit must be a positive number of queries, got {limit}")
    rng = np.random.default_rng(seed)
    if task.test_ids is not None:
        test_set = set(task.test_ids)
        train = [e for e in task.examples if e.id not in test_set]
        test = [e for e in task.examples if e.id in test_set]
    else:
        order = rng.permutation(len(task.examples))
        n_test = max(1, round(test_fraction * len(task.examples)))
        test = [task.examples[i] for i in order[:n_test]]
        train = [task.examples[i] for i in order[n_test:]]
    if limit is not None and limit < len(test):
        keep = sorted(rng.choice(len(test), size=limit, replace=False).tolist())
        test = [test[i] for i in keep]
    if not train or not test:
        raise TaskFormatError(f"task {task.name} is too small to split")
    return Split(task, seed, tuple(train), tuple(test))


def majority_baseline(split: Split) -> float:
    """Accuracy of always answering the most frequent training output; for a multiple-choice
    query whose options lack that answer, the chance rate (correct options / options)."""
    majority, _ = Counter(e.output for e in split.train).most_common(1)[0]
    total = 0.0
    for e in split.test:
        if e.options and majority not in e.options:
            total += len(e.answers) / len(e.options)
        else:
            total += float(majority in e.answers)
    return total / len(split.test)


TASK_GROUPS = ("all", "instruction_induction", "bbii")


def expand_tasks(names: Sequence[str], data_dir: Path) -> tuple[str, ...]:
    """Task names with the groups `instruction_induction`, `bbii` and `all` (both) replaced
    by every task found in `data_dir` for them, sorted; duplicates dropped.

    Args:
        names: task names, paths or group names.
        data_dir: the datasets folder holding `instruction_induction/` and `bbii/`.

    Returns:
        The task names or paths to run, in order.
    """
    out: list[str] = []
    for name in names:
        if name not in TASK_GROUPS:
            found = [name]
        else:
            found = []
            if name in ("all", "instruction_induction"):
                ii = data_dir / "instruction_induction"
                found += sorted(d.name for d in ii.iterdir() if d.is_dir()) if ii.is_dir() else []
            if name in ("all", "bbii"):
                bb = data_dir / "bbii"
                found += sorted(f.stem for f in bb.glob("*.json")) if bb.is_dir() else []
        out += [f for f in found if f not in out]
    return tuple(out)

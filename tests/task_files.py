"""Broken task files an operator can point `eval --tasks` at (shared by the loader and CLI
tests): every one must be refused with a `TaskFormatError`, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = [
    "INCOMPLETE_BIGBENCH",
    "INCOMPLETE_INSTRUCTION_INDUCTION",
    "MALFORMED_TASK_FILES",
    "write_parity_task",
]


def _bigbench(examples: object, **meta: object) -> dict[str, object]:
    return {"preferred_score": "multiple_choice_grade", **meta, "examples": examples}


MALFORMED_TASK_FILES: dict[str, bytes] = {
    "truncated JSON": b'{"examples": [{"input": "a", "tar',
    "empty file": b"",
    "not UTF-8": b'{"examples": [{"input": "caf\xe9", "target": "x"}]}',
    "nested 100k deep": b"[" * 100_000 + b"]" * 100_000,
    "integer of 5000 digits": b'{"examples": [{"input": "a", "target": "b"}], "x": '
    + b"9" * 5000
    + b"}",
    "top level is a list": b"[1, 2]",
    "top level is a string": b'"examples"',
}
"""Files that are not JSON objects at all."""

INCOMPLETE_BIGBENCH: dict[str, object] = {
    "examples is a dict": _bigbench({"0": {"input": "a"}}),
    "examples is empty": _bigbench([]),
    "example is a string": _bigbench(["q"]),
    "example is null": _bigbench([None]),
    "input missing": _bigbench([{"target_scores": {"a": 1}}]),
    "input is a number": _bigbench([{"input": 3, "target_scores": {"a": 1}}]),
    "target_scores missing": _bigbench([{"input": "a"}]),
    "target_scores is a list": _bigbench([{"input": "a", "target_scores": [1, 0]}]),
    "score is text": _bigbench([{"input": "a", "target_scores": {"a": "high"}}]),
    "score is null": _bigbench([{"input": "a", "target_scores": {"a": None}}]),
    "score is NaN": _bigbench([{"input": "a", "target_scores": {"a": float("nan")}}]),
    "score is infinite": _bigbench([{"input": "a", "target_scores": {"a": float("inf")}}]),
    "target missing": {"examples": [{"input": "a"}]},
    "target list is empty": {"examples": [{"input": "a", "target": []}]},
    "target list holds a number": {"examples": [{"input": "a", "target": ["x", 1]}]},
    "prefix is a list": {"examples": [{"input": "a", "target": "b"}], "task_prefix": ["x"]},
    "name is an object": {"examples": [{"input": "a", "target": "b"}], "name": {"x": 1}},
}
"""BIG-bench JSON objects with a missing or mistyped field."""

INCOMPLETE_INSTRUCTION_INDUCTION: dict[str, object] = {
    "examples is a list": {"examples": [{"input": "a", "output": "b"}]},
    "examples missing": {"Examples": {}},
    "example is a string": {"examples": {"1": "a -> b"}},
    "example is null": {"examples": {"1": None}},
    "output missing": {"examples": {"1": {"input": "a"}}},
    "output is a number": {"examples": {"1": {"input": "a", "output": 2}}},
}
"""Instruction-induction `induce.json` / `execute.json` objects with a missing or mistyped
field."""


def write_parity_task(data_dir: Path, name: str = "parity") -> Path:
    """A small valid instruction-induction task under `data_dir/instruction_induction/name`."""
    directory = data_dir / "instruction_induction" / name
    directory.mkdir(parents=True)
    pool = {str(i): {"input": f"number {i}", "output": ("even", "odd")[i % 2]} for i in range(40)}
    test = {str(i): {"input": f"number {i}", "output": "even"} for i in range(100, 106)}
    (directory / "induce.json").write_text(json.dumps({"examples": pool}), encoding="utf-8")
    (directory / "execute.json").write_text(json.dumps({"examples": test}), encoding="utf-8")
    return directory

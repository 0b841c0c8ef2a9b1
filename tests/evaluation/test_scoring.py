"""Scoring rules on a fake log-probability backend (no model needed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from langchain_erase.evaluation.scoring import log_softmax_at, normalize_answer, score_example
from langchain_erase.evaluation.tasks import Example, Task


class FakeLM:
    """Scores options by a fixed table and answers generation from a table; records calls."""

    def __init__(self, logprobs: dict[str, float], answers: dict[str, str]) -> None:
        self.logprobs, self.answers = logprobs, answers
        self.option_calls: list[tuple[str, list[str]]] = []

    def option_logprobs(self, prompt: str, options: Sequence[str]) -> list[float]:
        self.option_calls.append((prompt, list(options)))
        return [self.logprobs.get(o, -100.0) for o in options]

    def generate(self, prompt: str, *, max_tokens: int) -> str:
        return self.answers[prompt.rsplit("Input: ", 1)[1].split("\n", 1)[0]]

    def count_tokens(self, text: str) -> int:
        return len(text.split())


MC = Task("mc", "mem", "multiple_choice", ())
EM = Task("em", "mem", "exact_match", (), input_prefix="Input: ", output_prefix="\nOutput: ")


def test_multiple_choice_picks_highest_loglikelihood_and_moves_trailing_space() -> None:
    lm = FakeLM({" Yes": -3.0, " No": -1.0}, {})
    ex = Example("1", "q", "No", ("No",), ("Yes", "No"))
    score = score_example(MC, lm, [{"input": "d", "output": "Yes"}], ex)
    assert score.correct and score.prediction == "No"
    prompt, options = lm.option_calls[0]
    assert options == [" Yes", " No"] and prompt.endswith("\nA:")


def test_multiple_choice_ties_go_to_the_first_option() -> None:
    lm = FakeLM({" Yes": -1.0, " No": -1.0}, {})
    ex = Example("1", "q", "No", ("No",), ("Yes", "No"))
    assert score_example(MC, lm, [], ex).prediction == "Yes"


def test_exact_match_normalizes_first_line() -> None:
    lm = FakeLM({}, {"cat": " cats\nInput: dog", "box": "boxs\n"})
    assert score_example(EM, lm, [], Example("1", "cat", "cats", ("cats",))).correct
    assert not score_example(EM, lm, [], Example("2", "box", "boxes", ("boxes",))).correct


def test_normalize_answer() -> None:
    assert normalize_answer("  positive \n more") == "positive"
    assert normalize_answer("\n\nx") == "x"


def test_log_softmax_at_matches_definition() -> None:
    logits = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    expected = 2.0 - np.log(np.exp(logits.astype(np.float64)).sum())
    assert log_softmax_at(logits, 1) == pytest.approx(expected)

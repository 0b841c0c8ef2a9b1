"""Across-task summary: ICL-signal rule, normalized score, ranks and stratified intervals."""

from __future__ import annotations

from pathlib import Path

import pytest

from langchain_erase.evaluation.aggregate import aggregate, average_ranks, normalized_score
from langchain_erase.evaluation.tasks import expand_tasks


def test_normalized_score_is_bigbench_s() -> None:
    assert normalized_score(0.5, 0.5) == 0.0
    assert normalized_score(1.0, 0.25) == 100.0
    assert normalized_score(0.25, 0.5) == pytest.approx(-50.0)


def test_average_ranks_share_ties() -> None:
    assert average_ranks({"a": 0.9, "b": 0.5, "c": 0.9}) == {"a": 1.5, "b": 3.0, "c": 1.5}


def test_signal_only_where_few_shot_clears_zero_shot() -> None:
    n = 60
    correct = {
        ("copy", "zero-shot"): [False] * n,
        ("copy", "knn"): [True] * 50 + [False] * 10,
        ("copy", "random"): [True] * 30 + [False] * 30,
        ("mc", "zero-shot"): [True] * 30 + [False] * 30,
        ("mc", "knn"): [True] * 33 + [False] * 27,
        ("mc", "random"): [True] * 29 + [False] * 31,
    }
    agg = aggregate(correct, {"copy": None, "mc": 0.5}, "zero-shot", 500)
    assert agg["tasks"]["copy"]["icl_signal"] and agg["tasks"]["copy"]["best_few_shot"] == "knn"
    assert not agg["tasks"]["mc"]["icl_signal"]
    assert agg["tasks"]["mc"]["selectors"]["knn"]["normalized"] == pytest.approx(10.0)
    assert "normalized" not in agg["tasks"]["copy"]["selectors"]["knn"]
    assert agg["signal"]["tasks"] == ["copy"] and agg["overall"]["tasks"] == ["copy", "mc"]
    knn = agg["overall"]["selectors"]["knn"]
    assert knn["mean_rank"] == 1.0
    assert knn["mean_accuracy"] == pytest.approx((50 / 60 + 33 / 60) / 2)
    assert knn["ci95"][0] < knn["mean_accuracy"] < knn["ci95"][1]
    assert agg["signal"]["selectors"]["zero-shot"]["mean_rank"] == 3.0


def test_expand_tasks_lists_groups_in_the_data_dir(tmp_path: Path) -> None:
    (tmp_path / "instruction_induction" / "b_task").mkdir(parents=True)
    (tmp_path / "instruction_induction" / "a_task").mkdir()
    (tmp_path / "bbii").mkdir()
    (tmp_path / "bbii" / "mc.json").write_text("{}")
    assert expand_tasks(["all"], tmp_path) == ("a_task", "b_task", "mc")
    assert expand_tasks(["bbii", "x", "mc"], tmp_path) == ("mc", "x")

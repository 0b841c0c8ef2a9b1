"""Across-task summary of a selector comparison: which tasks carry an in-context-learning
signal, per-task BIG-bench normalized scores, mean rank and mean accuracy with intervals.

The ICL-signal rule: a task carries a signal at demonstration count k when the best few-shot
selector's 95% bootstrap lower bound is above zero-shot's upper bound. Conclusions about
selectors are drawn from those tasks only; on the others every selector is at the level the
model reaches without demonstrations, so their ranking is noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from langchain_erase.evaluation.tasks import Split

__all__ = ["aggregate", "average_ranks", "normalized_score", "random_score"]


def random_score(split: Split) -> float | None:
    """Expected accuracy of a uniform guess among each query's options (multiple choice);
    None for exact-match tasks, which have no such baseline."""
    if split.task.kind != "multiple_choice":
        return None
    return float(np.mean([len(e.answers) / len(e.options) for e in split.test]))


def normalized_score(accuracy: float, random: float, maximum: float = 1.0) -> float:
    """BIG-bench's normalized score: 100 * (score - random) / (max - random)."""
    return 100.0 * (accuracy - random) / (maximum - random)


def average_ranks(values: Mapping[str, float]) -> dict[str, float]:
    """Rank 1 for the highest value; tied values share the mean of their ranks."""
    ordered = sorted(values.values(), reverse=True)
    return {
        name: float(np.mean([i + 1 for i, x in enumerate(ordered) if x == v]))
        for name, v in values.items()
    }


def _interval(samples: np.ndarray) -> list[float]:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return [float(lo), float(hi)]


def aggregate(
    correct: Mapping[tuple[str, str], Sequence[bool]],
    random_scores: Mapping[str, float | None],
    zero_shot: str,
    resamples: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Summarize per-query outcomes `correct[(task, selector)]` (one k, seeds pooled).

    Args:
        correct: outcome of every scored query, per task and selector.
        random_scores: per task, the multiple-choice random score (None: exact match).
        zero_shot: the selector name of the no-demonstration baseline.
        resamples: bootstrap resamples (queries resampled within each task).
        seed: seeds the bootstrap generator.

    Returns:
        `tasks`: per task, accuracy and CI per selector, normalized scores and whether it
        carries an ICL signal; `overall` and `signal`: mean accuracy (stratified bootstrap CI)
        and mean rank per selector over all tasks and over the tasks with a signal.
    """
    rng = np.random.default_rng(seed)
    tasks = sorted({t for t, _ in correct})
    selectors = sorted({s for _, s in correct})
    boot: dict[tuple[str, str], np.ndarray] = {}
    per_task: dict[str, dict[str, Any]] = {}
    for task in tasks:
        rows: dict[str, dict[str, Any]] = {}
        for sel in selectors:
            values = np.asarray(correct.get((task, sel), ()), dtype=np.float64)
            if len(values) == 0:
                continue
            draws = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
            boot[(task, sel)] = draws
            acc = float(values.mean())
            rows[sel] = {"n": len(values), "accuracy": acc, "ci95": _interval(draws)}
            if random_scores.get(task) is not None:
                rows[sel]["normalized"] = normalized_score(acc, float(random_scores[task] or 0))
        few_shot = {s: r for s, r in rows.items() if s != zero_shot}
        best = max(few_shot, key=lambda s: (few_shot[s]["ci95"][0], s), default=None)
        signal = (
            best is not None
            and zero_shot in rows
            and few_shot[best]["ci95"][0] > rows[zero_shot]["ci95"][1]
        )
        per_task[task] = {
            "random_score": random_scores.get(task),
            "selectors": rows,
            "icl_signal": bool(signal),
            "best_few_shot": best,
        }

    def summary(names: list[str]) -> dict[str, Any]:
        complete = [s for s in selectors if all((t, s) in boot for t in names)]
        if not names or not complete:
            return {"tasks": names, "selectors": {}}
        ranks = [
            average_ranks({s: per_task[t]["selectors"][s]["accuracy"] for s in complete})
            for t in names
        ]
        out = {}
        for sel in complete:
            stacked = np.mean([boot[(t, sel)] for t in names], axis=0)
            out[sel] = {
                "mean_accuracy": float(
                    np.mean([per_task[t]["selectors"][sel]["accuracy"] for t in names])
                ),
                "ci95": _interval(stacked),
                "mean_rank": float(np.mean([r[sel] for r in ranks])),
            }
        return {"tasks": names, "selectors": out}

    return {
        "rule": "ICL signal: best few-shot selector's 95% CI lower bound > zero-shot's upper bound",
        "tasks": per_task,
        "overall": summary(tasks),
        "signal": summary([t for t in tasks if per_task[t]["icl_signal"]]),
    }

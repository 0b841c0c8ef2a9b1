"""Evaluation harness: tasks, scoring, the selector comparison and the CLI hooks.

Submodules are imported on demand (`langchain_erase.evaluation.runner` pulls in FAISS and
matplotlib); this package module re-exports only the light task and scoring types.
"""

from langchain_erase.evaluation.scoring import LanguageModel, LlamaCppScorer, Score, score_example
from langchain_erase.evaluation.tasks import Example, Split, Task, load_task, split_task

__all__ = [
    "Example",
    "LanguageModel",
    "LlamaCppScorer",
    "Score",
    "Split",
    "Task",
    "load_task",
    "score_example",
    "split_task",
]

"""SISA training (Bourtoule et al. 2021) as the fine-tuning baseline for unlearning cost.

The learner is multinomial logistic regression trained by full-batch gradient descent on
frozen embeddings (the same embedding model ERASE clusters with): a real model that learns
the task's labels on CPU in seconds, so deletion cost and accuracy can be measured here.

Examples go to shards and, within a shard, to slices by a keyed hash of their id, so the
layout does not depend on insertion order. Each shard trains on slice 1, then on slices 1-2,
... checkpointing after each; deleting an example restarts its shard from the checkpoint
before its slice and retrains only from there. Training is deterministic (zero init, full
batch), so a deletion gives exactly the model trained without the example. Prediction is a
majority vote of the shards (ties to the larger summed probability), costing S model
evaluations per query.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from langchain_erase.core.hashing import keyed_hash64
from langchain_erase.errors import UnknownExampleError

__all__ = ["SISAConfig", "SISADeletion", "SISAEnsemble", "train_softmax_regression"]

Array = npt.NDArray[np.float64]


class SISAConfig(BaseModel):
    """Shards x slices layout and the learner's training schedule."""

    model_config = ConfigDict(frozen=True)

    shards: int = Field(default=4, ge=1)
    slices: int = Field(default=4, ge=1)
    epochs_per_slice: int = Field(default=30, ge=1)
    learning_rate: float = Field(default=2.0, gt=0)
    l2: float = Field(default=1e-3, ge=0)
    seed: int = 0


@dataclass(frozen=True)
class SISADeletion:
    """What one deletion cost: the shard retrained, from which slice, and the seconds taken."""

    example_id: str
    shard: int
    slice: int
    slices_retrained: int
    seconds: float


def train_softmax_regression(
    weights: Array, x: Array, y: npt.NDArray[np.int64], epochs: int, lr: float, l2: float
) -> Array:
    """Continue training `weights` (d+1 x classes, last row the bias) on (x, y) by full-batch
    gradient descent on the L2-regularized cross-entropy; returns new weights."""
    w = weights.copy()
    if len(y) == 0:
        return w
    xb = np.hstack([x, np.ones((len(x), 1))])
    onehot = np.zeros((len(y), w.shape[1]))
    onehot[np.arange(len(y)), y] = 1.0
    for _ in range(epochs):
        logits = xb @ w
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        grad = xb.T @ (p - onehot) / len(y) + l2 * w
        w -= lr * grad
    return w


class SISAEnsemble:
    """Sharded, isolated, sliced, aggregated training of softmax regressions."""

    def __init__(self, config: SISAConfig, classes: Sequence[str]) -> None:
        if not classes:
            raise ValueError("SISA needs at least one class")
        self.config = config
        self.classes = tuple(sorted(set(classes)))
        self._class_index = {c: i for i, c in enumerate(self.classes)}
        self._x: dict[str, Array] = {}
        self._y: dict[str, int] = {}
        self._place: dict[str, tuple[int, int]] = {}
        self._members: list[list[set[str]]] = [
            [set() for _ in range(config.slices)] for _ in range(config.shards)
        ]
        self._checkpoints: list[list[Array]] = []
        self._dim = 0

    def __len__(self) -> int:
        return len(self._x)

    def _placement(self, example_id: str) -> tuple[int, int]:
        h = keyed_hash64(self.config.seed, "sisa", example_id)
        return h % self.config.shards, (h // self.config.shards) % self.config.slices

    def fit(self, ids: Sequence[str], x: Array, labels: Sequence[str]) -> None:
        """Train every shard from scratch on (ids, embeddings, labels)."""
        if not len(ids) == len(x) == len(labels):
            raise ValueError("ids, embeddings and labels differ in length")
        self._dim = x.shape[1]
        for i, (example_id, label) in enumerate(zip(ids, labels, strict=True)):
            self._x[example_id] = np.asarray(x[i], dtype=np.float64)
            self._y[example_id] = self._class_index[label]
            shard, piece = self._place[example_id] = self._placement(example_id)
            self._members[shard][piece].add(example_id)
        self._checkpoints = [self._train_shard(s, 0, []) for s in range(self.config.shards)]

    def _train_shard(self, shard: int, start: int, done: list[Array]) -> list[Array]:
        """Checkpoints of `shard` after each slice, retraining from slice `start` on top of
        `done` (the checkpoints of the slices before it)."""
        cfg = self.config
        checkpoints = list(done[:start])
        w = checkpoints[-1] if checkpoints else np.zeros((self._dim + 1, len(self.classes)))
        for piece in range(start, cfg.slices):
            ids = sorted(i for p in range(piece + 1) for i in self._members[shard][p])
            x = np.array([self._x[i] for i in ids]).reshape(len(ids), self._dim)
            y = np.array([self._y[i] for i in ids], dtype=np.int64)
            w = train_softmax_regression(w, x, y, cfg.epochs_per_slice, cfg.learning_rate, cfg.l2)
            checkpoints.append(w)
        return checkpoints

    def delete(self, example_id: str) -> SISADeletion:
        """Forget one example: retrain its shard from the checkpoint before its slice."""
        if example_id not in self._place:
            raise UnknownExampleError(f"unknown example id {example_id!r}")
        start = time.perf_counter()
        shard, piece = self._place.pop(example_id)
        self._members[shard][piece].discard(example_id)
        del self._x[example_id], self._y[example_id]
        self._checkpoints[shard] = self._train_shard(shard, piece, self._checkpoints[shard])
        return SISADeletion(
            example_id, shard, piece, self.config.slices - piece, time.perf_counter() - start
        )

    def shard_probabilities(self, x: Array) -> Array:
        """Per-shard class probabilities, shape (shards, queries, classes): S model runs."""
        xb = np.hstack([x, np.ones((len(x), 1))])
        logits = np.stack([xb @ ckpt[-1] for ckpt in self._checkpoints])
        logits -= logits.max(axis=2, keepdims=True)
        p: Array = np.exp(logits)
        p /= p.sum(axis=2, keepdims=True)
        return p

    def predict(self, x: Array, options: Sequence[Sequence[str]] | None = None) -> list[str]:
        """Majority vote of the shards; with `options`, each query votes among its own."""
        probs = self.shard_probabilities(x)
        if options is not None:
            allowed = np.zeros((len(x), len(self.classes)), dtype=bool)
            for q, opts in enumerate(options):
                allowed[q, [self._class_index[o] for o in opts if o in self._class_index]] = True
            probs = np.where(allowed[None, :, :], probs, -1.0)
        votes = np.zeros((len(x), len(self.classes)))
        for shard_probs in probs:
            votes[np.arange(len(x)), shard_probs.argmax(axis=1)] += 1.0
        score = votes + 1e-3 * np.clip(probs, 0.0, None).sum(axis=0) / len(probs)
        return [self.classes[i] for i in score.argmax(axis=1)]

"""SISA: deletion retrains one shard from one slice and equals training without the example."""

from __future__ import annotations

import numpy as np
import pytest

from langchain_erase.errors import UnknownExampleError
from langchain_erase.evaluation.sisa import SISAConfig, SISAEnsemble, train_softmax_regression


def _blobs(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    labels = ["neg" if i % 2 else "pos" for i in range(n)]
    centers = {"pos": np.array([2.0, 0.0, 0.0]), "neg": np.array([-2.0, 0.0, 0.0])}
    x = np.array([centers[lab] + rng.normal(size=3) for lab in labels])
    return [f"id{i}" for i in range(n)], x, labels


CONFIG = SISAConfig(shards=3, slices=4, epochs_per_slice=10)


def test_learner_fits_separable_data() -> None:
    ids, x, labels = _blobs(80)
    model = SISAEnsemble(CONFIG, labels)
    model.fit(ids, x, labels)
    accuracy = np.mean([p == t for p, t in zip(model.predict(x), labels, strict=True)])
    assert accuracy > 0.9


def test_deletion_equals_training_without_the_example() -> None:
    ids, x, labels = _blobs(60)
    model = SISAEnsemble(CONFIG, labels)
    model.fit(ids, x, labels)
    receipt = model.delete("id7")
    assert receipt.slices_retrained == CONFIG.slices - receipt.slice
    fresh = SISAEnsemble(CONFIG, labels)
    keep = [i for i, e in enumerate(ids) if e != "id7"]
    fresh.fit([ids[i] for i in keep], x[keep], [labels[i] for i in keep])
    np.testing.assert_array_equal(model.shard_probabilities(x), fresh.shard_probabilities(x))
    assert len(model) == 59


def test_deletion_touches_only_its_shard() -> None:
    ids, x, labels = _blobs(60)
    model = SISAEnsemble(CONFIG, labels)
    model.fit(ids, x, labels)
    before = model.shard_probabilities(x)
    shard = model.delete("id3").shard
    after = model.shard_probabilities(x)
    others = [s for s in range(CONFIG.shards) if s != shard]
    np.testing.assert_array_equal(before[others], after[others])


def test_layout_ignores_insertion_order() -> None:
    ids, x, labels = _blobs(40)
    a, b = SISAEnsemble(CONFIG, labels), SISAEnsemble(CONFIG, labels)
    a.fit(ids, x, labels)
    order = np.random.default_rng(1).permutation(40)
    b.fit([ids[i] for i in order], x[order], [labels[i] for i in order])
    np.testing.assert_array_equal(a.shard_probabilities(x), b.shard_probabilities(x))


def test_options_restrict_the_vote_and_unknown_ids_raise() -> None:
    ids, x, labels = _blobs(40)
    model = SISAEnsemble(CONFIG, labels)
    model.fit(ids, x, labels)
    assert model.predict(x[:2], options=[["neg"], ["neg"]]) == ["neg", "neg"]
    with pytest.raises(UnknownExampleError):
        model.delete("missing")


def test_gradient_step_with_no_data_is_identity() -> None:
    w = np.ones((3, 2))
    out = train_softmax_regression(w, np.zeros((0, 2)), np.zeros(0, dtype=np.int64), 5, 1.0, 0.0)
    np.testing.assert_array_equal(out, w)

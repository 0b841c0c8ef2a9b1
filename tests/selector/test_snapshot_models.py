"""#17 item 5: a snapshot records the embedding model's fingerprint, so loading it with
another model of the same dimension is refused (as `open` refuses it for a store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from store_helpers import PARAMS, examples, fake

from langchain_erase.errors import EmbeddingModelMismatchError, StateFileError
from langchain_erase.example_selectors import ERASEExampleSelector
from langchain_erase.storage.snapshot import read_snapshot, write_snapshot


class ScaledEmbedding(DeterministicFakeEmbedding):
    """Another model of the same dimension: the fake model's vectors, sign-flipped halfway."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._flip(v) for v in super().embed_documents(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self._flip(super().embed_query(text))

    @staticmethod
    def _flip(vector: list[float]) -> list[float]:
        half = len(vector) // 2
        return [*vector[:half], *(-x for x in vector[half:])]


def _saved(tmp_path: Path) -> Path:
    path = tmp_path / "snap.npz"
    sel = ERASEExampleSelector.from_examples(examples(12), fake(), **PARAMS)
    sel.delete_example(sel.ids[3])
    sel.save(path)
    return path


def test_a_snapshot_refuses_another_model_of_the_same_dimension(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    other = ScaledEmbedding(size=fake().size)
    with pytest.raises(EmbeddingModelMismatchError, match="another embedding model"):
        ERASEExampleSelector.load(path, other)
    with pytest.raises(EmbeddingModelMismatchError, match="dimension"):
        ERASEExampleSelector.load(path, fake(size=24))
    back = ERASEExampleSelector.load(path, fake())  # the model it was saved with
    assert back.verify() and len(back) == 11


def test_an_empty_snapshot_loads_with_any_model(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    ERASEExampleSelector(fake(), **PARAMS).save(path)
    assert read_snapshot(path).header["fingerprint"] is None
    assert len(ERASEExampleSelector.load(path, ScaledEmbedding(size=8))) == 0


def test_an_older_snapshot_without_a_fingerprint_is_checked_by_dimension(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _saved(tmp_path)
    old = read_snapshot(path)
    header = {k: v for k, v in old.header.items() if k not in ("format", "version", "fingerprint")}
    write_snapshot(path, type(old)(header, old.ids, old.texts, old.vectors, old.projection))
    with pytest.raises(EmbeddingModelMismatchError, match="dimension"):
        ERASEExampleSelector.load(path, fake(size=24))
    with caplog.at_level("WARNING", logger="langchain_erase"):
        back = ERASEExampleSelector.load(path, fake())
    assert back.verify() and "no embedding-model fingerprint" in caplog.text


def test_a_damaged_fingerprint_is_a_state_file_error(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    old = read_snapshot(path)
    header = {k: v for k, v in old.header.items() if k not in ("format", "version")}
    header["fingerprint"] = {"dimension": fake().size, "probes": "garbage"}
    write_snapshot(path, type(old)(header, old.ids, old.texts, old.vectors, old.projection))
    with pytest.raises(StateFileError, match="fingerprint"):
        ERASEExampleSelector.load(path, fake())
    assert np.isfinite(old.vectors).all()

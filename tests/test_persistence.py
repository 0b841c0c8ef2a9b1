"""Snapshots: round trip, and refusal of anything that is not exactly a saved selector."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_erase import ERASEExampleSelector, StateFileError

EMB = DeterministicFakeEmbedding(size=16)


def selector() -> ERASEExampleSelector:
    examples = [{"input": f"item {i}", "output": str(i)} for i in range(50)]
    return ERASEExampleSelector.from_examples(
        examples, EMB, k=3, seed=5, selection="centroid", input_keys=["input"]
    )


def test_round_trip_after_deletions(tmp_path: Path) -> None:
    sel = selector()
    sel.delete_examples(sel.ids[:5])
    sel.save(tmp_path / "s.npz")
    back = ERASEExampleSelector.load(tmp_path / "s.npz", EMB)
    assert back.state_digest() == sel.state_digest()
    assert back.select_examples({"input": "x"}) == sel.select_examples({"input": "x"})
    assert back.params == sel.params and back.selection == "centroid"
    with zipfile.ZipFile(tmp_path / "s.npz") as z:
        assert not any(name.endswith(".pkl") for name in z.namelist())


def test_empty_selector_round_trip(tmp_path: Path) -> None:
    ERASEExampleSelector(EMB, k=2).save(tmp_path / "e.npz")
    assert len(ERASEExampleSelector.load(tmp_path / "e.npz", EMB)) == 0


def _rewrite(src: Path, dst: Path, name: str, data: bytes) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            zout.writestr(item, data if item == name else zin.read(item))


def test_tampered_truncated_foreign_and_future_files_are_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    selector().save(good)
    raw = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "foreign.npz").write_bytes(b"hello world")
    np.savez(tmp_path / "other.npz", a=np.arange(3))
    with zipfile.ZipFile(good) as z:
        header = z.read("header.npy")
        vectors = bytearray(z.read("vectors.npy"))
    _rewrite(
        good,
        tmp_path / "future.npz",
        "header.npy",
        header.replace(b'"version": 2', b'"version": 9'),
    )
    vectors[-1] ^= 0x40  # flip one bit of one stored vector
    _rewrite(good, tmp_path / "flipped.npz", "vectors.npy", bytes(vectors))
    for name in ("trunc", "foreign", "other", "future", "flipped", "missing"):
        with pytest.raises(StateFileError):
            ERASEExampleSelector.load(tmp_path / f"{name}.npz", EMB)


def test_a_huge_projection_value_raises_overflow_error(tmp_path: Path) -> None:
    """Regression: a snapshot whose projection holds a huge value (with a matching digest)
    raised a bare OverflowError; it is a damaged file (StateFileError)."""
    from langchain_erase.storage.snapshot import read_snapshot, write_snapshot

    good = tmp_path / "good.npz"
    selector().save(good)
    snap = read_snapshot(good)
    snap.projection[0, 0] = 1e300
    write_snapshot(tmp_path / "huge.npz", snap)
    with pytest.raises(StateFileError, match="out-of-range"):
        ERASEExampleSelector.load(tmp_path / "huge.npz", EMB)

"""SQLite store: durability, reopening, several openers, refusal of bad files, atomic failures
and real erasure (the deleted text and vector bytes are in no file of the store)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from store_helpers import PARAMS, examples, fake, frozen, opened, store_bytes, stored_digest

from langchain_erase.core.qkmeans import QuantizedKMeans
from langchain_erase.errors import (
    InvalidParameterError,
    StaleSnapshotError,
    StateFileError,
    UnknownExampleError,
)
from langchain_erase.example_selectors import ERASEExampleSelector, default_example_id
from langchain_erase.storage.base import id_key
from langchain_erase.storage.sqlite import _Txn


def fresh_digest(selector: ERASEExampleSelector) -> str:
    ids = selector.ids
    fresh = ERASEExampleSelector.from_examples(
        [selector.get_example(i) for i in ids],
        fake(),
        ids=ids,
        selection=selector.selection,
        **PARAMS,
    )
    return fresh.state_digest()


def test_every_change_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    sel = opened(path, 40)
    sel.delete_example(sel.ids[3])
    sel.delete_examples(sel.ids[:4])
    sel.add_examples(examples(5, "late"))
    queries = [{"input": f"query {i}"} for i in range(5)]
    picks = [sel.select_examples(q) for q in queries]
    digest = sel.state_digest()
    sel.close()
    back = ERASEExampleSelector.open(path, fake())  # parameters come from the store
    assert back.state_digest() == digest == fresh_digest(back)
    assert back.verify() and len(back) == 40 - 5 + 5
    assert [back.select_examples(q) for q in queries] == picks
    assert back.params == sel.params
    back.close()


def test_deleting_everything_matches_a_fresh_empty_fit(tmp_path: Path) -> None:
    """Regression: the projection outlived the last example, so verify() failed."""
    plain = ERASEExampleSelector.from_examples(examples(3), fake(), **PARAMS)
    plain.delete_examples(plain.ids)
    assert plain.verify() and plain.dimension is None
    sel = opened(tmp_path / "s.db", 3)
    sel.delete_examples(sel.ids)
    sel.close()
    back = ERASEExampleSelector.open(tmp_path / "s.db", fake(24))
    assert back.state_digest() == plain.state_digest() and back.verify()
    back.add_examples(examples(2))  # an emptied store accepts a new dimension, like a fresh fit
    assert back.dimension == 24
    back.close()


def test_other_parameters_on_reopen_are_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    opened(path, 10).close()
    before = path.read_bytes()
    with pytest.raises(InvalidParameterError, match=r"k=3 \(given 5\)"):
        ERASEExampleSelector.open(path, fake(), k=5)
    with pytest.raises(InvalidParameterError, match="selection"):
        ERASEExampleSelector.open(path, fake(), selection="centroid")
    assert path.read_bytes() == before
    same = ERASEExampleSelector.open(path, fake(), **PARAMS, show_progress=True)
    assert len(same) == 10
    same.close()


def test_many_openers_at_once_in_this_and_other_processes(tmp_path: Path) -> None:
    """Regression: the store was exclusive (a second opener got StoreLockedError)."""
    path = tmp_path / "s.db"
    sel = opened(path, 5)
    other = ERASEExampleSelector.open(path, fake())
    assert other.state_digest() == sel.state_digest()
    code = (
        "import sys\n"
        "from langchain_core.embeddings import DeterministicFakeEmbedding as F\n"
        "from langchain_erase.example_selectors import ERASEExampleSelector as S\n"
        "s = S.open(sys.argv[1], F(size=16))\n"
        "s.delete_example(s.ids[0])\n"
        "s.close()\n"
    )
    assert subprocess.run([sys.executable, "-c", code, str(path)]).returncode == 0
    assert len(sel.ids) == 4 and len(other.ids) == 4  # both follow the store
    assert sel.state_digest() == other.state_digest() == fresh_digest(sel)
    sel.close()
    other.close()


def test_a_closed_store_refuses_changes_and_reads(tmp_path: Path) -> None:
    sel = opened(tmp_path / "s.db", 5)
    victim = sel.ids[0]
    sel.close()
    sel.close()  # idempotent
    with pytest.raises(StateFileError, match="closed"):
        sel.add_examples(examples(2, "more"))
    with pytest.raises(StateFileError, match="closed"):
        sel.delete_example(victim)
    # a closed selector cannot see what other processes delete: it serves nothing stale
    for read in (
        sel.state_digest,
        lambda: sel.ids,
        lambda: len(sel),
        lambda: sel.select_examples({"input": "q"}),
        lambda: sel.get_example(victim),
        sel.buckets,
        sel.deletion_log,
        sel.sync,
    ):
        with pytest.raises(StateFileError, match="closed"):
            read()
    again = ERASEExampleSelector.open(tmp_path / "s.db", fake())
    assert len(again) == 5 and again.verify()  # nothing was changed or lost
    again.close()


@pytest.mark.parametrize("selection", ["random", "centroid", "similar"])
@pytest.mark.parametrize("batch", [False, True])
def test_deleted_text_and_vector_are_in_no_file_and_no_cache(
    tmp_path: Path, selection: str, batch: bool
) -> None:
    huge = {"input": "<huge-0001> " + "confidential " * 3000, "output": "x"}  # overflow pages
    sel = opened(tmp_path / "s.db", 40, selection=selection)
    [huge_id] = sel.add_examples([huge])
    victims = [huge_id, *sel.ids[:6:2]]
    secrets = []
    for victim in victims:
        text = sel.get_example(victim)["input"]
        secrets += [text.encode(), sel.view().stored_vector(victim).astype("<f4").tobytes()]
    survivor = next(i for i in sel.ids if i not in victims)
    assert sel.get_example(survivor)["input"].encode() in store_bytes(tmp_path)
    receipts = sel.delete_examples(victims) if batch else [sel.delete_example(v) for v in victims]
    assert any(r.refit for r in receipts) or any(not r.refit for r in receipts)
    raw = store_bytes(tmp_path)
    assert not [s[:40] for s in secrets if s in raw]
    assert not any(victim.encode() in raw for victim in victims)
    blocks = sel.view().vector_memory()
    assert not [s[:40] for s in secrets[1::2] if s in blocks]
    for victim in victims:
        assert not sel.view().remembers(victim)
        assert victim not in sel
    assert sel.verify() and sel.state_digest() == fresh_digest(sel)
    sel.close()


def test_deletion_log_keeps_receipts_not_content(tmp_path: Path) -> None:
    sel = opened(tmp_path / "s.db", 12)
    victim = sel.ids[2]
    text = sel.get_example(victim)["input"]
    receipt = sel.delete_example(victim)
    assert sel.store is not None
    [entry] = sel.deletion_log()
    key = (tmp_path / "s.db.key").read_bytes()
    assert entry["id_key"] == id_key(key, victim) and entry["position"] == receipt.position
    assert entry["digest_after"] == receipt.digest_after == sel.state_digest()
    assert (entry["refit"], entry["reason"]) == (int(receipt.refit), receipt.reason)
    assert text not in repr(entry) and victim not in repr(entry)
    sel.close()


@pytest.mark.parametrize(
    ("operation", "method"),
    [
        ("add", "insert"),
        ("add", "_append"),
        ("delete", "delete"),
        ("delete", "_append"),
        ("delete_batch", "delete"),
        ("delete_batch", "_append"),
    ],
)
def test_a_failed_store_write_leaves_memory_and_store_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str, method: str
) -> None:
    sel = opened(tmp_path / "s.db", 20)
    before = frozen(sel)
    run: dict[str, Callable[[], object]] = {
        "add": lambda: sel.add_examples(examples(3, "new")),
        "delete": lambda: sel.delete_example(sel.ids[0]),
        "delete_batch": lambda: sel.delete_examples(sel.ids[:3]),
    }

    def failing(self: _Txn, *args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(_Txn, method, failing)
    with pytest.raises(StateFileError, match="could not write"):
        run[operation]()
    assert frozen(sel) == before and sel.verify()
    monkeypatch.undo()
    run[operation]()  # works again once the store does
    assert sel.verify() and stored_digest(sel) == sel.state_digest()
    sel.close()


def test_a_failure_inside_the_algorithm_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sel = opened(tmp_path / "s.db", 20)
    before = frozen(sel)

    def boom(*_: Any) -> None:
        raise RuntimeError("bug in the middle of a change")

    monkeypatch.setattr(QuantizedKMeans, "delete", boom)
    with pytest.raises(RuntimeError):
        sel.delete_examples(sel.ids[:3])  # the first deletion's change is undone too
    assert frozen(sel) == before
    monkeypatch.setattr(QuantizedKMeans, "insert_many", boom)
    with pytest.raises(RuntimeError):
        sel.add_examples(examples(30, "big"))  # a large batch is fitted in one go
    monkeypatch.undo()
    assert frozen(sel) == before and sel.verify()
    sel.close()


def _rewrite_db(path: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def _first_vector(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    blob: bytes = conn.execute("SELECT vector FROM examples ORDER BY id").fetchone()[0]
    conn.close()
    return blob


def _flip_first_vector_bit(path: Path) -> None:
    blob = _first_vector(path)
    _rewrite_db(
        path, "UPDATE examples SET vector = ? WHERE rowid = 1", (bytes([blob[0] ^ 1]) + blob[1:],)
    )


META = "UPDATE meta SET value = ? WHERE key = ?"
SETS = "UPDATE sets SET {} = ?"
ROW1 = "UPDATE examples SET {} WHERE rowid = 1"
#: name -> (SQL, parameters) run on a good store
SQL_CORRUPTIONS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "future_version": (META, ("9", "version")),
    "other_format": (META, ("x", "format")),
    "no_meta": ("DROP TABLE meta", ()),
    "tampered_digest": (SETS.format("head_digest"), ("0" * 64,)),
    "bad_params": (SETS.format("params"), ('{"k": -1}',)),
    "params_not_json": (SETS.format("params"), ("[",)),
    "projection_shape": (SETS.format("projection"), (b"\0",)),
    "projection_huge": (SETS.format("projection"), (np.full(16 * 8, 1e300).tobytes(),)),
    "tampered_example": (ROW1.format("example = ?"), ('{"input": "forged"}',)),
    "example_not_json": (ROW1.format("example = ?"), ("{",)),
    "example_not_strings": (ROW1.format("example = ?"), ('{"input": 1}',)),
    "example_not_utf8": (ROW1.format("example = CAST(? AS TEXT)"), (b'{"input":"\xff"}',)),
    "short_vector": (ROW1.format("vector = ?"), (b"\0\0",)),
    "deleted_row": ("DELETE FROM examples WHERE rowid = 2", ()),
}


def _truncate(fraction: float) -> Callable[[Path], None]:
    def cut(path: Path) -> None:
        raw = path.read_bytes()
        path.write_bytes(raw[: int(len(raw) * fraction)])

    return cut


def _sql_free_garbage(path: Path) -> None:
    path.write_bytes(b"not a database at all " * 100)


def _schema_not_utf8(path: Path) -> None:
    """A non-UTF-8 byte in the schema (regression: a bare UnicodeDecodeError)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA writable_schema=ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = CAST(? AS TEXT) WHERE name = 'meta'",
        (b"CREATE TABLE me\xffa (key TEXT PRIMARY KEY, value TEXT NOT NULL)",),
    )
    conn.commit()
    conn.close()


def _sql(sql: str, params: tuple[Any, ...]) -> Callable[[Path], None]:
    return lambda path: _rewrite_db(path, sql, params)


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "garbage": _sql_free_garbage,
    "truncated_half": _truncate(0.5),
    "truncated_to_two_pages": _truncate(8192 / (32 * 1024)),
    "truncated_header": _truncate(0.001),
    "flipped_vector_bit": _flip_first_vector_bit,
    "schema_not_utf8": _schema_not_utf8,
    **{name: _sql(sql, params) for name, (sql, params) in SQL_CORRUPTIONS.items()},
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corrupted_truncated_foreign_and_future_stores_are_refused(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / "s.db"
    opened(path, 25).close()
    CORRUPTIONS[name](path)
    with pytest.raises(StateFileError):
        ERASEExampleSelector.open(path, fake())


def test_foreign_files_are_refused_and_left_untouched(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    _rewrite_db(foreign, "CREATE TABLE people (name TEXT)")
    snapshot = tmp_path / "snap.npz"
    ERASEExampleSelector.from_examples(examples(5), fake(), **PARAMS).save(snapshot)
    for path in (foreign, snapshot):
        raw = path.read_bytes()
        with pytest.raises(StateFileError):
            ERASEExampleSelector.open(path, fake())
        assert path.read_bytes() == raw
    with pytest.raises(StateFileError):
        ERASEExampleSelector.open(tmp_path / "no" / "such" / "dir.db", fake())


def test_snapshots_of_a_store_backed_selector_still_work(tmp_path: Path) -> None:
    sel = opened(tmp_path / "s.db", 15)
    sel.delete_example(sel.ids[0])
    sel.save(tmp_path / "snap.npz")
    back = ERASEExampleSelector.load(tmp_path / "snap.npz", fake(), store=sel)
    assert back.state_digest() == sel.state_digest() and back.store is None
    assert np.array_equal(
        back.view().stored_vector(sel.ids[0]), sel.view().stored_vector(sel.ids[0])
    )
    sel.close()


def test_snapshot_resurrects_deleted_examples(tmp_path: Path) -> None:
    """Regression (snapshots resurrect deleted examples): a snapshot saved before a deletion
    in the store is refused, without the store or once the store's log moved on."""
    sel = opened(tmp_path / "s.db", 15)
    sel.save(tmp_path / "snap.npz")
    other = ERASEExampleSelector.open(tmp_path / "s.db", fake())
    other.delete_example(sel.ids[0])
    with pytest.raises(StaleSnapshotError, match="store="):
        ERASEExampleSelector.load(tmp_path / "snap.npz", fake())
    with pytest.raises(StaleSnapshotError, match="position"):
        ERASEExampleSelector.load(tmp_path / "snap.npz", fake(), store=sel)
    sel.close()
    other.close()


def test_an_interrupted_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    """Regression: a save killed mid-write left a hidden .tmp with the full texts forever."""
    sel = ERASEExampleSelector.from_examples(examples(5), fake(), **PARAMS)
    stale = tmp_path / ".snap.npz.abc123.tmp"
    stale.write_bytes(b"<ex-0001> some words")
    sel.save(tmp_path / "snap.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.npz"]


class StoreMachine(RuleBasedStateMachine):
    """Random adds, deletes, batch deletes, refused calls and reopenings: the store always
    holds exactly the selector's state, which is always a fresh fit of its set."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "s.db"
        self.sel = ERASEExampleSelector.open(self.path, fake(), **PARAMS)
        self.pool = {default_example_id(e): e for e in examples(30, "sm")}

    @rule(data=st.data())
    def add(self, data: st.DataObject) -> None:
        absent = sorted(set(self.pool) - set(self.sel.ids))
        if absent:
            chosen = data.draw(
                st.lists(st.sampled_from(absent), min_size=1, max_size=4, unique=True)
            )
            self.sel.add_examples([self.pool[i] for i in chosen])

    @rule(data=st.data(), batch=st.booleans())
    def delete(self, data: st.DataObject, batch: bool) -> None:
        if self.sel.ids:
            chosen = data.draw(
                st.lists(st.sampled_from(self.sel.ids), min_size=1, max_size=3, unique=True)
            )
            if batch:
                self.sel.delete_examples(chosen)
            else:
                self.sel.delete_example(chosen[0])

    @rule()
    def refused(self) -> None:
        before = frozen(self.sel)
        with pytest.raises(UnknownExampleError):
            self.sel.delete_examples([*self.sel.ids[:2], "missing"])
        assert frozen(self.sel) == before

    @rule()
    def reopen(self) -> None:
        digest = self.sel.state_digest()
        self.sel.close()
        self.sel = ERASEExampleSelector.open(self.path, fake())
        assert self.sel.state_digest() == digest

    @invariant()
    def store_matches_a_fresh_fit(self) -> None:
        assert stored_digest(self.sel) == self.sel.state_digest() == fresh_digest(self.sel)

    def teardown(self) -> None:
        self.sel.close()
        self.tmp.cleanup()


StoreMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
test_store_state_machine = StoreMachine.TestCase

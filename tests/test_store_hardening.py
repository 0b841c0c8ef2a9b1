"""Regression tests of the store-side hardening: each test is named after the problem it
reproduces (data loss, privacy leaks, crashes) and failed on the single-process store."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from store_helpers import PARAMS, examples, fake, opened, store_bytes

from langchain_erase import (
    DuplicateExampleError,
    EmbeddingModelMismatchError,
    ERASEExampleSelector,
    ForkedProcessError,
    InvalidParameterError,
    StateFileError,
    StoreUnavailableError,
    UnknownExampleError,
)
from langchain_erase.storage.base import id_key
from langchain_erase.storage.sqlite import ERASURE_BOUND_S, _Txn

DELETE_IN_OTHER_PROCESS = (
    "import sys\n"
    "from langchain_core.embeddings import DeterministicFakeEmbedding as F\n"
    "from langchain_erase.example_selectors import ERASEExampleSelector as S\n"
    "s = S.open(sys.argv[1], F(size=16))\n"
    "print(s.delete_example(sys.argv[2]).position)\n"
    "s.close()\n"
)


def test_a_returned_deletion_is_undone_after_a_copy_of_the_file(tmp_path: Path) -> None:
    """Issue: POSIX locks vanish when the process closes any descriptor of the file (a
    backup copy); another process's committed deletion was then overwritten."""
    path = tmp_path / "s.db"
    sel = opened(path, 20)
    victim = sel.ids[4]
    shutil.copy(path, tmp_path / "backup.db")  # opens and closes the database file
    subprocess.run([sys.executable, "-c", DELETE_IN_OTHER_PROCESS, str(path), victim], check=True)
    sel.add_examples(examples(2, "after"))  # the first process writes next
    assert victim not in sel.ids and sel.verify()
    sel.close()
    back = ERASEExampleSelector.open(path, fake())
    assert victim not in back.ids and len(back) == 21 and back.verify()
    assert len(back.deletion_log()) == 1
    back.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_after_open_corrupts_the_file(tmp_path: Path) -> None:
    """Issue: a store opened before a fork was shared by parent and child (malformed
    database). The child is now refused with ForkedProcessError and the store stays whole."""
    path = tmp_path / "s.db"
    sel = opened(path, 20)
    victim = sel.ids[0]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        for call in (
            lambda: sel.add_examples(examples(1, "child")),
            lambda: sel.select_examples({"input": "x"}),
            lambda: sel.delete_example(victim),
        ):
            try:
                call()
                code = 1
            except ForkedProcessError:
                pass
            except BaseException:
                code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    sel.add_examples(examples(2, "parent"))
    assert len(sel) == 22 and sel.verify()
    sel.close()
    back = ERASEExampleSelector.open(path, fake())
    assert len(back) == 22 and back.verify()
    back.close()


def test_the_deletion_log_can_be_reversed(tmp_path: Path) -> None:
    """Issue: the log kept unsalted sha256 of ids (reversible by hashing candidates). Now a
    keyed HMAC whose key lives outside the database (a 0600 key file or LANGCHAIN_ERASE_LOG_KEY)."""
    path = tmp_path / "s.db"
    sel = opened(path, 20)
    victim = sel.ids[0]
    sel.delete_example(victim)
    assert sel.store is not None
    [entry] = sel.deletion_log()
    key_file = tmp_path / "s.db.key"
    assert entry["id_key"] == id_key(key_file.read_bytes(), victim)
    assert entry["id_key"] != hashlib.sha256(victim.encode()).hexdigest()
    sel.close()
    raw = path.read_bytes()
    assert key_file.read_bytes() not in raw
    assert hashlib.sha256(victim.encode()).hexdigest().encode() not in raw
    keyed = opened(tmp_path / "k.db", 3, log_key="a secret from the vault")
    assert not (tmp_path / "k.db.key").exists()
    keyed.close()


def test_store_files_are_world_readable(tmp_path: Path) -> None:
    """Issue: store files were created 0644 (umask); now every file of a store is 0600."""
    path = tmp_path / "s.db"
    sel = opened(path, 20)
    for name in ("s.db", "s.db-wal", "s.db-shm", "s.db.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    sel.close()


@pytest.mark.parametrize("store", [False, True])
def test_error_messages_print_ids_verbatim(tmp_path: Path, store: bool) -> None:
    """Issue: UnknownExampleError printed the id (an e-mail address) verbatim."""
    secret = "alice.smith@example.com"
    sel = (
        opened(tmp_path / "s.db", 3)
        if store
        else ERASEExampleSelector.from_examples(examples(3), fake(), **PARAMS)
    )
    sel.add_examples([{"input": "x", "output": "y"}], ids=[secret])
    failures: list[BaseException] = []
    for call in (
        lambda: sel.delete_example(secret + "x"),
        lambda: sel.get_example(secret + "x"),
        lambda: sel.add_examples([{"input": "z", "output": "y"}], ids=[secret]),
    ):
        with pytest.raises((UnknownExampleError, DuplicateExampleError)) as info:
            call()
        failures.append(info.value)
    for failure in failures:
        assert "alice" not in str(failure) and "example.com" not in repr(failure)
    sel.close()


def test_a_refused_add_leaves_its_text_in_the_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue: a batch refused after its rows were written (pages spilled to the WAL) left
    its text in the WAL, where no deletion can reach it. Rolling back now also erases."""
    sel = opened(tmp_path / "s.db", 5)
    big = [{"input": f"<refused-{i:04d}> " + "private " * 1500, "output": "x"} for i in range(400)]

    def failing(self: _Txn, *args: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(_Txn, "_append", failing)
    with pytest.raises(StateFileError):
        sel.add_examples(big)
    raw = store_bytes(tmp_path)
    assert b"<refused-" not in raw
    assert len(sel) == 5 and sel.verify()
    sel.close()


class ReversedFake(Embeddings):
    """Another model of the same dimension: the fake model applied to reversed text."""

    def __init__(self) -> None:
        self.inner = DeterministicFakeEmbedding(size=16)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents([t[::-1] for t in texts])

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text[::-1])


def test_another_embedding_model_is_not_detected(tmp_path: Path) -> None:
    """Issue: reopening with another model of the same dimension was silently accepted,
    another dimension only failed at the first add."""
    path = tmp_path / "s.db"
    opened(path, 5).close()
    with pytest.raises(EmbeddingModelMismatchError, match="another embedding model"):
        ERASEExampleSelector.open(path, ReversedFake())
    with pytest.raises(EmbeddingModelMismatchError, match="dimension 16"):
        ERASEExampleSelector.open(path, fake(24))
    same = ERASEExampleSelector.open(path, fake())
    assert len(same) == 5
    same.close()


@pytest.mark.parametrize(
    "target", [":memory:", "file:x?mode=memory", "file:s.db?vfs=unix-none", "s.db?x=1", ""]
)
def test_memory_and_uri_stores_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    """Issue: ':memory:' and 'file:' URIs gave a "durable" store that wrote nothing or
    bypassed the lock. Only real file paths are accepted."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidParameterError, match="real file path"):
        ERASEExampleSelector.open(target, fake())
    assert list(tmp_path.iterdir()) == []


def test_a_252_character_file_name_is_called_corrupted(tmp_path: Path) -> None:
    """Issue: a name too long for SQLite's '-journal' suffix was reported as a corrupted
    store and left an empty file behind."""
    path = tmp_path / ("s" * 249 + ".db")
    with pytest.raises(InvalidParameterError, match="too long"):
        ERASEExampleSelector.open(path, fake())
    assert list(tmp_path.iterdir()) == []


def test_the_change_log_is_not_covered_by_any_integrity_check(tmp_path: Path) -> None:
    """Issue: edits of the deletion log went unnoticed, and reading a damaged log raised
    raw sqlite3 errors. Records form a hash chain ending at the set's head."""
    path = tmp_path / "s.db"
    sel = opened(path, 20)
    sel.delete_examples(sel.ids[:2])
    assert sel.store is not None
    conn = sqlite3.connect(path)
    conn.execute("UPDATE changes SET refit = 1 - refit WHERE position = 21")
    conn.commit()
    with pytest.raises(StateFileError, match="change log damaged"):
        sel.deletion_log()
    conn.execute("DROP TABLE changes")
    conn.commit()
    conn.close()
    with pytest.raises(StateFileError):
        sel.deletion_log()
    sel.close()


@pytest.mark.parametrize("store", [False, True])
def test_a_listener_raising_mid_batch_leaves_memory_and_store_disagreeing(
    tmp_path: Path, store: bool
) -> None:
    """Issue: a listener raising on the 2nd of 3 deletions left 2 deleted in memory and none
    in the store. Contract (both): the batch is done and committed, every listener runs for
    every id, then the first exception is re-raised."""
    sel = (
        opened(tmp_path / "s.db", 10)
        if store
        else ERASEExampleSelector.from_examples(examples(10), fake(), **PARAMS)
    )
    victims = sel.ids[:3]
    told: list[str] = []

    def listener(example_id: str, example: dict[str, str]) -> None:
        told.append(example_id)
        if len(told) == 2:
            raise RuntimeError("cache unavailable")

    sel.add_deletion_listener(listener)
    with pytest.raises(RuntimeError, match="cache unavailable"):
        sel.delete_examples(victims)
    assert told == victims
    assert not set(victims) & set(sel.ids) and len(sel) == 7 and sel.verify()
    if store:
        left = sel.ids
        sel.close()
        back = ERASEExampleSelector.open(tmp_path / "s.db", fake())
        assert back.ids == left
        back.close()


def test_erasure_waits_for_readers_and_says_so(tmp_path: Path) -> None:
    """A reader holding an old snapshot blocks the truncating checkpoint: the receipt says
    the erasure is incomplete, and the next write completes it once the reader is done."""
    path = tmp_path / "s.db"
    sel = opened(path, 20)
    victim = sel.ids[1]
    secret = sel.get_example(victim)["input"].encode()
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM examples").fetchone()  # holds its snapshot
    receipt = sel.delete_example(victim)
    assert receipt.erasure_complete is False and ERASURE_BOUND_S > 0
    assert secret in store_bytes(tmp_path)  # still in the database file or WAL
    reader.execute("COMMIT")
    reader.close()
    sel.add_examples(examples(1, "next"))  # the next write completes the erasure
    assert sel.store is not None and not sel.store.erasure_pending()
    assert secret not in store_bytes(tmp_path)
    assert sel.delete_example(sel.ids[0]).erasure_complete is True
    sel.close()


def _make_unwritable(path: Path) -> Callable[[], None]:
    """Make `path` unwritable (chattr +i as root, whom permissions do not stop; chmod
    otherwise); returns the undo."""
    if os.geteuid() != 0:
        path.chmod(0o400)
        return lambda: path.chmod(0o600)
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root without chattr: cannot make a file unwritable")
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


def test_an_immutable_store_is_called_corrupted(tmp_path: Path) -> None:
    """Issue: an immutable (or read-only) file on reopen said "corrupted or not a store",
    inviting an operator to throw a healthy store away."""
    path = tmp_path / "s.db"
    opened(path, 5).close()
    before = path.read_bytes()
    undo = _make_unwritable(path)
    try:
        with pytest.raises(StoreUnavailableError, match="read-only or immutable") as info:
            ERASEExampleSelector.open(path, fake())
        assert "damaged" not in str(info.value)
    finally:
        undo()
    assert path.read_bytes() == before
    back = ERASEExampleSelector.open(path, fake())
    assert len(back) == 5 and back.verify()
    back.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB file system (tmpfs; needs root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip("needs permission to mount a small tmpfs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_says_corrupted_and_keeps_the_refused_batch(small_disk: Path) -> None:
    """Issue: on a full disk the refused batch stayed in the WAL after close() and reopening
    said "corrupted". Now: StoreUnavailableError naming the full disk, nothing left behind."""
    path = small_disk / "s.db"
    sel = opened(path, 20)
    big = [{"input": f"<full-{i:03d}> " + "x" * 20_000, "output": "y"} for i in range(200)]
    with pytest.raises(StoreUnavailableError, match="disk is full"):
        sel.add_examples(big)
    assert len(sel) == 20 and sel.verify()
    assert b"<full-" not in store_bytes(small_disk)
    sel.close()
    filler = small_disk / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    with pytest.raises(StoreUnavailableError) as info:
        ERASEExampleSelector.open(small_disk / "new.db", fake())
    assert "damaged" not in str(info.value)
    assert not (small_disk / "new.db").exists()
    filler.unlink()
    back = ERASEExampleSelector.open(path, fake())
    assert len(back) == 20 and back.verify()
    back.close()


def test_a_postgres_store_without_a_log_key_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server store has no place for a key file: the key must be given (or in the
    environment), else processes could not match each other's log entries."""
    monkeypatch.delenv("LANGCHAIN_ERASE_LOG_KEY", raising=False)
    with pytest.raises(InvalidParameterError, match="log key"):
        ERASEExampleSelector.open("postgresql://nowhere.invalid/db", fake())

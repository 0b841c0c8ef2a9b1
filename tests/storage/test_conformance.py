"""The storage contract, run on every backend through the `StorageBackend` protocol.

What one backend does, every backend does: the same reads after the same writes, the same
refusals with the same typed errors (leaving nothing changed), a verified change log, the
same answer for a missing set, erasure of deleted and rolled back rows from every file,
refusal in a forked child and after `close()`. Known drift is marked `drift` (see conftest).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from store_helpers import marked_rows, markers

from langchain_erase.errors import (
    DuplicateExampleError,
    ForkedProcessError,
    InvalidParameterError,
    StateFileError,
    UnknownExampleError,
)
from langchain_erase.storage.base import (
    ChangeRecord,
    ExampleRow,
    StorageBackend,
    StoreHeader,
    id_key,
)

from .stores import (
    HEADER,
    LOG_KEY,
    Op,
    StoreUnderTest,
    add,
    delete,
    records,
    wait_for_erasure,
)

drift = pytest.mark.drift


def row(example_id: str) -> ExampleRow:
    """A row with a text naming its id and a random vector."""
    text = json.dumps({"input": f"about {example_id}", "output": "y"}, ensure_ascii=False)
    return ExampleRow(example_id, text, os.urandom(16))


def state(backend: StorageBackend) -> tuple[Any, ...]:
    """Everything a refused write must leave as it was: rows, head and log."""
    return backend.snapshot(), backend.changes_after(0)


def in_threads(work: Callable[[int], object], count: int) -> None:
    """Run `work(0)` ... `work(count - 1)` on threads released at once; re-raise a failure."""
    barrier = threading.Barrier(count)

    def run(n: int) -> object:
        barrier.wait()
        return work(n)

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(run, n) for n in range(count)]
    for future in futures:
        future.result()


def enter_write(backend: StorageBackend) -> None:
    """Open and leave a write transaction that writes nothing."""
    with backend.write():
        pass


#: Every call of the protocol, made with harmless arguments.
CALLS: dict[str, Callable[[StorageBackend], object]] = {
    "read_header": lambda b: b.read_header(),
    "create": lambda b: b.create(HEADER),
    "head": lambda b: b.head(),
    "changed": lambda b: b.changed(),
    "changes_after": lambda b: b.changes_after(0),
    "rows_added_after": lambda b: b.rows_added_after(0),
    "log_after": lambda b: b.log_after(0),
    "snapshot": lambda b: b.snapshot(),
    "write": enter_write,
    "erasure_pending": lambda b: b.erasure_pending(),
}


def calls(names: Sequence[str], drifts: dict[str, dict[str, str]]) -> list[Any]:
    """`CALLS` names as parameters, each with its known drift (backend -> reason)."""
    return [
        pytest.param(name, id=name, marks=[drift(**drifts[name])] if name in drifts else [])
        for name in names
    ]


# -- creating and reading ---------------------------------------------------------------------


def test_concurrent_creates_all_get_the_first_creators_header(store: StoreUnderTest) -> None:
    openers = [store.open() for _ in range(4)]
    assert all(o.read_header() is None for o in openers)
    got: dict[int, StoreHeader] = {}

    def create(n: int) -> None:
        got[n] = openers[n].create(StoreHeader({"opener": n}, None, None, None))

    in_threads(create, len(openers))
    first = got[0]
    assert first.params["opener"] in range(len(openers))
    assert all(header == first for header in got.values())
    assert all(o.read_header() == first for o in openers)
    assert openers[1].create(HEADER) == first  # creating an existing set changes nothing
    for opener in openers:
        opener.close()


def test_a_new_set_reads_empty(backend: StorageBackend) -> None:
    assert backend.read_header() == HEADER
    assert backend.head() == (0, "")
    assert backend.changes_after(0) == []
    assert backend.rows_added_after(0) == []
    assert backend.log_after(0) == ([], [])
    assert backend.snapshot() == ([], 0, "")
    assert backend.erasure_pending() is False


def test_rows_and_log_read_back_exactly_as_written(backend: StorageBackend) -> None:
    first = [row("b"), row("a"), row("Ä"), row("z😀")]
    late = row("c")
    log = add(backend, first) + add(backend, [late]) + delete(backend, ["a"])
    present = sorted([late, *(r for r in first if r.id != "a")], key=lambda r: r.id)
    head = (6, log[-1].digest_after)
    assert backend.head() == head
    assert backend.changes_after(0) == log
    assert backend.changes_after(4) == log[4:]
    assert backend.changes_after(6) == []
    assert backend.rows_added_after(0) == present  # ordered by id (code points = UTF-8 bytes)
    assert backend.rows_added_after(4) == [late]
    assert backend.log_after(3) == (log[3:], [late, first[3]])
    assert backend.snapshot() == (present, *head)


def test_static_fields_come_with_the_first_add_and_go_when_empty(backend: StorageBackend) -> None:
    projection = np.arange(6, dtype="<f8").tobytes()
    fingerprint = {"dimension": 3, "probes": [[0.5, -0.25, 1.0]]}
    with backend.write() as txn:
        txn.set_static(3, projection, fingerprint)
    assert backend.read_header() == StoreHeader(HEADER.params, 3, projection, fingerprint)
    other = np.ones(6, dtype="<f8").tobytes()
    with backend.write() as txn:
        txn.set_static(3, other, None)  # None keeps the stored fingerprint
    assert backend.read_header() == StoreHeader(HEADER.params, 3, other, fingerprint)
    with backend.write() as txn:
        txn.clear_static()
    assert backend.read_header() == HEADER


def test_sets_of_one_database_are_independent(
    store: StoreUnderTest, backend: StorageBackend
) -> None:
    other = store.open(store.fresh_name())
    other.create(StoreHeader({"k": 3}, None, None, None))
    mine = row("a")
    add(backend, [mine])
    add(other, [row("a"), row("b")])
    delete(other, ["a"])
    assert backend.head()[0] == 1 and other.head()[0] == 3
    assert backend.snapshot()[0] == [mine]
    assert backend.read_header() == HEADER
    assert other.read_header() == StoreHeader({"k": 3}, None, None, None)
    other.close()


def test_a_write_reads_the_latest_commit_of_another_connection(
    store: StoreUnderTest, backend: StorageBackend
) -> None:
    backend.head()
    other = store.open()
    rows = [row("a"), row("b")]
    log = add(other, rows)
    with backend.write() as txn:
        assert txn.head() == (2, log[-1].digest_after)
        assert txn.changes_after(0) == log
        assert txn.log_after(1) == (log[1:], rows[1:])
        mine = records(2, "add", ["c"])
        txn.insert([row("c")], mine)
        assert txn.head() == (3, mine[0].digest_after)  # its own write included
    assert other.head() == (3, mine[0].digest_after)
    other.close()


def test_changed_reports_a_commit_of_another_connection(
    store: StoreUnderTest, backend: StorageBackend
) -> None:
    backend.changed()
    other = store.open()
    add(other, [row("a")])
    other.close()
    assert backend.changed() is True


def test_concurrent_writers_serialize_into_one_gapless_log(
    store: StoreUnderTest, backend: StorageBackend
) -> None:
    writers = [store.open() for _ in range(3)]

    def write(n: int) -> None:
        for step in range(4):
            add(writers[n], [row(f"w{n}-{step}")])

    in_threads(write, len(writers))
    assert [c.position for c in backend.changes_after(0)] == list(range(1, 13))
    assert len(backend.rows_added_after(0)) == 12
    for writer in writers:
        writer.close()


# -- refused writes -----------------------------------------------------------------------

#: How a write's change records can fail to continue the head: (head, op, ids) -> records.
BAD_POSITIONS: dict[str, Callable[[int, Op, list[str]], list[ChangeRecord]]] = {
    "gap": lambda head, op, ids: records(head + 1, op, ids),
    "repeat": lambda head, op, ids: records(head - 1, op, ids),
    "one_short": lambda head, op, ids: records(head, op, ids[:-1]),
}


@pytest.mark.parametrize("op", ["insert", "delete"])
@pytest.mark.parametrize("bad", sorted(BAD_POSITIONS))
def test_positions_that_do_not_continue_the_head_are_refused(
    backend: StorageBackend, op: str, bad: str
) -> None:
    add(backend, [row("a"), row("b")])
    before = state(backend)
    ids = ["c", "d"] if op == "insert" else ["a", "b"]
    with pytest.raises(InvalidParameterError), backend.write() as txn:
        if op == "insert":
            txn.insert([row(i) for i in ids], BAD_POSITIONS[bad](txn.head()[0], "add", ids))
        else:
            txn.delete(ids, BAD_POSITIONS[bad](txn.head()[0], "delete", ids))
    assert state(backend) == before


@pytest.mark.parametrize("ids", [["absent-id-1"], ["a", "absent-id-1"]], ids=["alone", "mixed"])
def test_deleting_an_absent_id_is_refused_and_changes_nothing(
    backend: StorageBackend, ids: list[str]
) -> None:
    add(backend, [row("a"), row("b")])
    before = state(backend)
    with pytest.raises(UnknownExampleError) as refused:
        delete(backend, ids)
    assert "absent-id-1" not in str(refused.value)  # ids can be personal data
    assert state(backend) == before


def test_adding_a_present_id_is_refused_and_changes_nothing(backend: StorageBackend) -> None:
    add(backend, [row("a")])
    before = state(backend)
    with pytest.raises(DuplicateExampleError):
        add(backend, [row("b"), row("a")])
    assert state(backend) == before


def test_a_rolled_back_write_leaves_nothing(store: StoreUnderTest, backend: StorageBackend) -> None:
    kept = marked_rows("kept", 3)
    add(backend, kept)
    before = state(backend)
    refused = marked_rows("refused", 6)
    with pytest.raises(RuntimeError, match="after writing"), backend.write() as txn:
        txn.insert(refused, records(txn.head()[0], "add", [r.id for r in refused]))
        txn.delete([kept[0].id], records(txn.head()[0], "delete", [kept[0].id]))
        raise RuntimeError("refused after writing")
    assert state(backend) == before
    assert wait_for_erasure(backend)
    assert store.residue(markers(refused)) == []
    live = store.erasable([r.id for r in kept], markers(kept))
    assert store.residue(live) == live


# -- erasure ----------------------------------------------------------------------------------


def test_deleted_rows_are_in_no_file_once_erasure_is_complete(
    store: StoreUnderTest, backend: StorageBackend
) -> None:
    rows = marked_rows("erase", 12)
    add(backend, rows)
    gone, kept = rows[::2], rows[1::2]
    erasable = store.erasable([r.id for r in gone], markers(gone))
    live = store.erasable([r.id for r in kept], markers(kept))
    assert store.residue(erasable + live) == erasable + live  # the scan finds what is there
    delete(backend, [gone[0].id])  # one deletion ...
    delete(backend, [r.id for r in gone[1:]])  # ... and a batch
    assert wait_for_erasure(backend)
    assert store.residue(erasable + markers(gone)) == []
    assert store.residue(live) == live


# -- integrity of the change log ------------------------------------------------------------

#: Edits of the log of 3 adds (positions 1-3) and 1 delete (position 4).
LOG_DAMAGE: dict[str, Callable[[StoreUnderTest], None]] = {
    "digest_edited": lambda s: s.update_change(2, "digest_after", "0" * 64),
    "id_key_edited": lambda s: s.update_change(2, "id_key", id_key(LOG_KEY, "forged")),
    "time_edited": lambda s: s.update_change(3, "time", 0.5),
    "op_flipped": lambda s: s.update_change(4, "op", "add"),
    "record_removed": lambda s: s.delete_change(2),
    "last_record_removed": lambda s: s.delete_change(4),
}


@pytest.mark.parametrize("damage", sorted(LOG_DAMAGE))
def test_a_damaged_change_log_is_refused(
    store: StoreUnderTest, backend: StorageBackend, damage: str
) -> None:
    add(backend, [row("a"), row("b"), row("c")])
    delete(backend, ["b"])
    LOG_DAMAGE[damage](store)
    for read in (
        lambda: backend.changes_after(0),
        lambda: backend.changes_after(1),
        lambda: backend.log_after(0),
    ):
        with pytest.raises(StateFileError):
            read()


# -- a missing set ----------------------------------------------------------------------------

MISSING_DRIFT: dict[str, dict[str, str]] = {}


@pytest.mark.parametrize("how", ["never_created", "dropped"])
@pytest.mark.parametrize(
    "call",
    calls(
        ["head", "changes_after", "rows_added_after", "log_after", "snapshot", "write"],
        MISSING_DRIFT,
    ),
)
def test_a_missing_set_is_refused_by_every_read_and_write(
    store: StoreUnderTest, how: str, call: str
) -> None:
    """The contract: `read_header()` says None (so the adapter creates the set); every
    other call raises StateFileError, so a follower of a dropped set stops instead of
    serving what it held (replica.refresh asks `head()` first)."""
    backend = store.open()
    if how == "dropped":
        backend.create(HEADER)
        add(backend, [row("a")])
        store.drop_set()
    assert backend.read_header() is None
    with pytest.raises(StateFileError):
        CALLS[call](backend)
    backend.close()


# -- closed store and forked child --------------------------------------------------------

LIFECYCLE_DRIFT: dict[str, dict[str, str]] = {}


@pytest.mark.parametrize("call", calls(sorted(CALLS), LIFECYCLE_DRIFT))
def test_a_closed_backend_refuses_every_call(backend: StorageBackend, call: str) -> None:
    add(backend, [row("a")])
    backend.close()
    backend.close()  # closing twice is harmless
    assert backend.name in backend.describe()  # messages still name it
    with pytest.raises(StateFileError):
        CALLS[call](backend)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("call", calls(sorted(CALLS), LIFECYCLE_DRIFT))
def test_a_forked_child_is_refused_every_call(backend: StorageBackend, call: str) -> None:
    add(backend, [row("a")])
    head = backend.head()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child: 0 refused; 1 answered; 2, 3 another error
        try:
            CALLS[call](backend)
            code = 1
        except ForkedProcessError:
            code = 0
        except BaseException:
            code = 2
        try:
            backend.close()  # must not end the parent's connections
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert backend.head() == head  # the parent's connections still work
    add(backend, [row("b")])

"""The storage contract as the adapter sees it: `ERASEExampleSelector.open` on every backend.

Deletion listeners and receipts, erasure held back by a reader in another session, damaged
rows and change records met by a replica (when it loads and when it catches up), a dropped
set, a closed selector, a forked child, and the guarantee itself: after any history of adds
and deletes, opening the set again gives a fresh fit of what remains.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import PARAMS, examples, fake

from langchain_erase.errors import ForkedProcessError, StateFileError
from langchain_erase.example_selectors import ERASEExampleSelector

from .stores import StoreUnderTest, wait_for_erasure

QUERY = {"input": "<query> some words"}


def unique_examples(n: int, long: bool = False) -> list[dict[str, str]]:
    """`n` examples whose texts appear nowhere else in the database; with `long`, the first
    one's text is long and random (out of line: PostgreSQL TOAST, SQLite overflow pages)."""
    batch = examples(n, f"u{uuid.uuid4().hex[:10]}")
    if long:
        batch[0] = {**batch[0], "input": f"{batch[0]['input']} {secrets.token_hex(3000)}"}
    return batch


def contents(selector: ERASEExampleSelector) -> dict[str, list[bytes]]:
    """For every stored example: its id, the start of its input text and its vector, as the
    bytes an erasure scan looks for."""
    assert selector.store is not None
    return {
        row.id: [row.id.encode(), json.loads(row.example)["input"][:40].encode(), row.vector]
        for row in selector.store.snapshot()[0]
    }


# -- deletions: receipts, listeners, erasure ------------------------------------------------


def test_listeners_run_for_every_committed_deletion(store: StoreUnderTest) -> None:
    sel = store.selector()
    sel.add_examples(unique_examples(8))
    heard: list[tuple[str, dict[str, Any]]] = []
    sel.add_deletion_listener(lambda example_id, ex: heard.append((example_id, ex)))
    ids = sel.ids
    expected = [(i, sel.get_example(i)) for i in ids[:3]]
    receipts = [sel.delete_example(ids[0]), *sel.delete_examples(ids[1:3])]
    assert heard == expected
    assert [r.position for r in receipts] == [9, 10, 11]
    sel.close()


def test_a_receipt_saying_erasure_complete_means_no_file_holds_the_example(
    store: StoreUnderTest,
) -> None:
    sel = store.selector()
    ids = sel.add_examples(unique_examples(10, long=True))
    content = contents(sel)
    keys = {i: store.erasable([i], content[i]) for i in ids}
    assert store.residue(keys[ids[0]]) == keys[ids[0]]  # the scan finds what is there
    for receipts in ([sel.delete_example(ids[0])], sel.delete_examples(ids[1:4])):
        for receipt in receipts:
            if receipt.erasure_complete:
                assert store.residue(keys[receipt.example_id] + content[receipt.example_id]) == []
    assert sel.store is not None and wait_for_erasure(sel.store)
    assert store.residue([m for i in ids[:4] for m in keys[i] + content[i]]) == []
    kept = [m for i in ids[4:] for m in keys[i]]
    assert store.residue(kept) == kept
    sel.close()


def test_a_reader_holds_erasure_back_and_a_later_write_completes_it(
    store: StoreUnderTest,
) -> None:
    sel = store.selector()
    [victim, *_] = sel.add_examples(unique_examples(6, long=True))
    assert sel.store is not None
    secret = store.erasable([victim], contents(sel)[victim])
    heard: list[str] = []
    sel.add_deletion_listener(lambda example_id, _: heard.append(example_id))
    with store.hold_snapshot():
        receipt = sel.delete_example(victim)
        assert receipt.erasure_complete is False  # committed, and the receipt says pending
        assert heard == [victim]
        assert sel.store.erasure_pending() is True
    sel.add_examples(unique_examples(1))
    assert wait_for_erasure(sel.store)
    assert store.residue(secret) == []
    sel.close()


# -- damaged stores, met by the replica -------------------------------------------------------


def flip_first_bit(store: StoreUnderTest, example_id: str, vector: bytes) -> None:
    store.update_row(example_id, "vector", bytes([vector[0] ^ 1]) + vector[1:])


#: Damage to one stored row: (store, id, its stored vector) -> None.
ROW_DAMAGE: dict[str, Callable[[StoreUnderTest, str, bytes], None]] = {
    "vector_truncated": lambda s, i, _: s.update_row(i, "vector", b"\0\0"),
    "vector_bit_flipped": flip_first_bit,
    "text_not_json": lambda s, i, _: s.update_row(i, "example", "{"),
    "text_edited": lambda s, i, _: s.update_row(i, "example", '{"input":"forged","output":"l0"}'),
    "row_removed": lambda s, i, _: s.delete_row(i),
}


@pytest.mark.parametrize("when", ["open", "catch_up"])
@pytest.mark.parametrize("damage", sorted(ROW_DAMAGE))
def test_damaged_rows_are_refused_by_the_replica(
    store: StoreUnderTest, damage: str, when: str
) -> None:
    writer = store.selector()
    writer.add_examples(unique_examples(6))
    reader = store.selector() if when == "catch_up" else None
    [victim_id, *_] = writer.add_examples(unique_examples(6))  # what the reader must catch up on
    assert writer.store is not None
    [victim] = [r for r in writer.store.snapshot()[0] if r.id == victim_id]
    writer.close()
    ROW_DAMAGE[damage](store, victim.id, victim.vector)
    with pytest.raises(StateFileError):
        if reader is None:
            store.selector().close()
        else:
            reader.select_examples(QUERY)
    if reader is not None:
        reader.close()


@pytest.mark.parametrize("damage", ["digest_edited", "record_removed"])
def test_a_damaged_change_record_is_refused_when_a_replica_catches_up(
    store: StoreUnderTest, damage: str
) -> None:
    writer = store.selector()
    writer.add_examples(unique_examples(6))
    reader = store.selector()
    writer.add_examples(unique_examples(2))  # positions 7 and 8
    writer.delete_example(writer.ids[0])  # position 9
    writer.close()
    if damage == "digest_edited":
        store.update_change(8, "digest_after", "0" * 64)
    else:
        store.delete_change(8)
    with pytest.raises(StateFileError):
        reader.select_examples(QUERY)
    reader.close()


def test_a_dropped_set_is_refused_by_its_replica(store: StoreUnderTest) -> None:
    sel = store.selector()
    sel.add_examples(unique_examples(5))
    store.drop_set()
    with pytest.raises(StateFileError):
        sel.select_examples(QUERY)
    sel.close()


# -- closed selector and forked child -------------------------------------------------------

#: Calls of a store-backed selector: (selector, a present id) -> None.
SELECTOR_CALLS: dict[str, Callable[[ERASEExampleSelector, str], object]] = {
    "select_examples": lambda s, _: s.select_examples(QUERY),
    "add_examples": lambda s, _: s.add_examples(examples(1, "late")),
    "delete_example": lambda s, i: s.delete_example(i),
    "sync": lambda s, _: s.sync(),
}


@pytest.mark.parametrize("call", sorted(SELECTOR_CALLS))
def test_a_closed_selector_refuses_every_call(store: StoreUnderTest, call: str) -> None:
    sel = store.selector()
    [present, *_] = sel.add_examples(unique_examples(4))
    sel.close()
    with pytest.raises(StateFileError):
        SELECTOR_CALLS[call](sel, present)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_is_refused_by_the_selector(store: StoreUnderTest) -> None:
    sel = store.selector()
    [present, *_] = sel.add_examples(unique_examples(6))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child: bit n set = call n was not refused
        code = 0
        for n, call in enumerate(SELECTOR_CALLS.values()):
            try:
                call(sel, present)
                code |= 1 << n
            except ForkedProcessError:
                pass
            except BaseException:
                code |= 1 << n
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert len(sel) == 6 and sel.verify()  # the parent's store is whole and still works
    sel.close()


# -- the guarantee ----------------------------------------------------------------------------

POOL = {
    f"id-{n:02d}": {"input": f"<prop-{n:02d}> words {n % 5}", "output": f"l{n % 3}"}
    for n in range(16)
}
PICKS = st.lists(st.sampled_from(sorted(POOL)), min_size=1, max_size=4, unique=True)
HISTORY = st.lists(
    st.one_of(
        st.tuples(st.just("add"), PICKS),
        st.tuples(st.just("delete"), PICKS),
        st.tuples(st.just("reopen"), st.just([])),
    ),
    max_size=8,
)


def fresh_fit(ids: list[str]) -> ERASEExampleSelector:
    """An in-memory selector fitted on `ids` of `POOL` at once."""
    if not ids:
        return ERASEExampleSelector(fake(), **PARAMS)
    return ERASEExampleSelector.from_examples([POOL[i] for i in ids], fake(), ids=ids, **PARAMS)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(history=HISTORY)
def test_any_history_reopens_as_a_fresh_fit_of_what_remains(
    store: StoreUnderTest, history: list[tuple[str, list[str]]]
) -> None:
    name = store.fresh_name()  # every example starts from an empty set
    present: set[str] = set()
    sel = store.selector(name)
    try:
        for op, picks in history:
            if op == "reopen":
                sel.close()
                sel = store.selector(name)
            elif op == "add" and (new := [i for i in picks if i not in present]):
                sel.add_examples([POOL[i] for i in new], ids=new)
                present.update(new)
            elif op == "delete" and (gone := [i for i in picks if i in present]):
                if len(gone) == 1:
                    sel.delete_example(gone[0])
                else:
                    sel.delete_examples(gone)
                present.difference_update(gone)
    finally:
        sel.close()
    reopened = store.selector(name)
    try:
        fresh = fresh_fit(sorted(present))
        assert sorted(reopened.ids) == sorted(present)
        assert reopened.state_digest() == fresh.state_digest()
        if present:
            assert reopened.select_examples(QUERY) == fresh.select_examples(QUERY)
    finally:
        reopened.close()

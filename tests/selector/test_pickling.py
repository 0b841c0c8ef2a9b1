"""Pickle and deepcopy (issue #18 item 4): an in-memory selector copies to an equal one; a
store-backed one to a handle that opens the same store again, never sharing a connection;
the retriever travels with its selector."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from pathlib import Path

from store_helpers import PARAMS, examples, fake, opened

from langchain_erase.example_selectors import ERASEExampleSelector

QUERIES = [{"input": f"query {i}"} for i in range(8)]


def _selections(selector: ERASEExampleSelector) -> list[list[dict[str, object]]]:
    return [selector.select_examples(q) for q in QUERIES]


def _evicted(example_id: str, example: dict[str, object]) -> None:
    """A picklable deletion listener (module level)."""
    EVICTED.append(example_id)


EVICTED: list[str] = []


def test_an_in_memory_selector_copies_to_an_equal_one_after_deletions() -> None:
    sel = ERASEExampleSelector.from_examples(examples(30), fake(), selection="similar", **PARAMS)
    sel.delete_examples(sel.ids[:4])
    for copied in (pickle.loads(pickle.dumps(sel)), copy.deepcopy(sel)):
        assert copied.state_digest() == sel.state_digest() and copied.verify()
        assert copied.ids == sel.ids and _selections(copied) == _selections(sel)
        assert copied.parameters == sel.parameters and copied.store is None
        victim = copied.ids[0]
        copied.delete_example(victim)  # the copy is independent
        assert victim in sel and victim not in copied


def test_deletion_listeners_travel_with_the_copy() -> None:
    sel = ERASEExampleSelector.from_examples(examples(6), fake(), **PARAMS)
    sel.add_deletion_listener(_evicted)
    copied = copy.deepcopy(sel)
    EVICTED.clear()
    copied.delete_example(copied.ids[0])
    assert [sel.ids[0]] == EVICTED


def test_a_store_backed_selector_pickles_to_a_handle_with_its_own_connection(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    sel = opened(path, 12)
    data = pickle.dumps(sel)
    assert b"confidential" not in data and examples(12)[0]["input"].encode() not in data
    copied = pickle.loads(data)
    assert copied.store is not None and copied.store is not sel.store
    assert copied.store.describe() == sel.store.describe()  # same target and set
    victim = sel.ids[0]
    sel.delete_example(victim)
    assert victim not in copied and copied.state_digest() == sel.state_digest()
    sel.close()
    assert len(copied) == 11  # closing the original leaves the copy's connection open
    deep = copy.deepcopy(copied)
    assert deep.store is not copied.store and deep.state_digest() == copied.state_digest()
    deep.close()
    copied.close()


def test_a_pickled_store_selector_reopens_the_same_store_in_another_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    sel = opened(path, 10, selection="centroid")
    handle = tmp_path / "selector.pickle"
    handle.write_bytes(pickle.dumps(sel))
    code = (
        "import pickle, sys\n"
        "s = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "s.delete_example(s.ids[0])\n"
        "print(s.state_digest())\n"
        "s.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(handle)], capture_output=True, text=True, check=True
    )
    assert len(sel) == 9 and out.stdout.strip() == sel.state_digest()
    sel.close()


def test_the_retriever_pickles_with_its_selector() -> None:
    sel = ERASEExampleSelector.from_examples(examples(20), fake(), **PARAMS)
    retriever = sel.as_retriever(k=2)
    copied = pickle.loads(pickle.dumps(retriever))
    assert copied.selector.state_digest() == sel.state_digest()
    query = "query 3"
    assert [d.id for d in copied.invoke(query)] == [d.id for d in retriever.invoke(query)]

"""#17 items 2 and 5 on both backends: a committed deletion never raises because of the
store, and a closed store-backed selector refuses reads instead of serving stale state."""

from __future__ import annotations

import pickle

import pytest
from store_helpers import PARAMS, examples, fake

from langchain_erase.errors import StateFileError, StoreUnavailableError
from langchain_erase.example_selectors import ERASEExampleSelector
from langchain_erase.storage.base import ErasureStatus


@pytest.mark.parametrize("how", ["raises", "reports"])
def test_a_failing_status_query_after_commit_goes_into_the_receipts(
    backend_target: str, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    sel = ERASEExampleSelector.open(backend_target, fake(), **PARAMS)
    sel.add_examples(examples(10))
    victims = sel.ids[:3]
    told: list[str] = []
    sel.add_deletion_listener(lambda example_id, example: told.append(example_id))

    store = sel.store
    assert store is not None
    working, before = store.erasure_status, store.head()[0]

    def status_down() -> ErasureStatus:  # the server goes away right after the COMMIT
        if store.head()[0] > before:
            if how == "raises":
                raise StoreUnavailableError("lost the connection after the commit")
            return ErasureStatus(True, "lost the connection after the commit")
        return working()

    monkeypatch.setattr(store, "erasure_status", status_down)
    receipts = sel.delete_examples(victims)
    assert told == victims  # every listener ran for every deleted id
    assert [r.example_id for r in receipts] == victims
    assert all(r.position is not None and not r.erasure_complete for r in receipts)
    assert all("lost the connection" in (r.erasure_error or "") for r in receipts)
    monkeypatch.undo()
    assert not set(victims) & set(sel.ids) and sel.verify()  # the deletion stands
    again = sel.delete_examples(sel.ids[:1])[0]
    assert again.erasure_error is None  # PostgreSQL erases after the call (receipt: pending)
    assert again.erasure_complete or store.complete_erasure(10)
    sel.close()


def test_a_closed_selector_serves_nothing_stale(backend_target: str) -> None:
    sel = ERASEExampleSelector.open(backend_target, fake(), **PARAMS)
    sel.add_examples(examples(6))
    other = ERASEExampleSelector.open(backend_target, fake())
    sel.close()
    victim = other.ids[0]
    other.delete_example(victim)  # committed while `sel` is closed
    for read in (
        lambda: sel.select_examples({"input": "query"}),
        lambda: sel.select_with_ids({"input": "query"}),
        lambda: victim in sel,
        sel.state_digest,
    ):
        with pytest.raises(StateFileError, match="closed"):
            read()
    other.close()


def test_a_pickled_selector_opens_its_own_connection(backend_target: str) -> None:
    sel = ERASEExampleSelector.open(backend_target, fake(), **PARAMS)
    sel.add_examples(examples(8))
    copied = pickle.loads(pickle.dumps(sel))
    assert copied.store is not sel.store and copied.log_position == sel.log_position
    sel.delete_example(sel.ids[0])
    sel.close()
    assert len(copied) == 7 and copied.verify()  # follows the store on its own connection
    copied.close()

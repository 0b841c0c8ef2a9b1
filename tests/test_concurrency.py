"""8 threads selecting while others add, delete and verify, on a store-backed selector:
no exception, no torn state, and no selection that starts after a deletion returned ever
returns the deleted example."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from store_helpers import examples, fake

from langchain_erase.example_selectors import ERASEExampleSelector, default_example_id

SELECTORS, ROUNDS = 8, 150


@pytest.mark.parametrize("selection", ["random", "similar"])
def test_selections_never_see_a_returned_deletion(tmp_path: Path, selection: str) -> None:
    path = tmp_path / "s.db"
    sel = ERASEExampleSelector.open(path, fake(), k=4, seed=1, selection=selection)
    initial = sel.add_examples(examples(120))
    deleted: set[str] = set()  # ids whose deletion has returned
    deleted_lock = threading.Lock()
    errors: list[BaseException] = []
    stop = threading.Event()
    stats = {"selections": 0, "checked_against": 0}

    def thread(body: Callable[..., None], *args: object) -> threading.Thread:
        def run() -> None:
            try:
                body(*args)
            except BaseException as err:  # reported by the main thread
                errors.append(err)
                stop.set()

        return threading.Thread(target=run)

    def selecting(worker: int) -> None:
        for i in range(ROUNDS):
            with deleted_lock:
                gone = set(deleted)
            picked = sel.select_examples({"input": f"query {worker} {i}"})
            returned = {default_example_id(example) for example in picked}
            assert not returned & gone, "a deleted example was selected"
            assert len(picked) == len(returned) <= 4
            with deleted_lock:
                stats["selections"] += 1
                stats["checked_against"] += len(gone)

    def deleting(own: list[str], batch: int) -> None:
        for start in range(0, len(own), batch):
            chunk = own[start : start + batch]
            if batch == 1:
                sel.delete_example(chunk[0])
            else:
                sel.delete_examples(chunk)
            with deleted_lock:
                deleted.update(chunk)

    def adding(tag: str) -> None:
        for i in range(15):
            sel.add_examples(examples(3, f"{tag}{i}"))

    def verifying() -> None:
        while not stop.wait(0.05):
            assert sel.verify(), "torn state: the selector differs from a fresh fit"

    workers = [
        *(thread(selecting, worker) for worker in range(SELECTORS)),
        thread(deleting, initial[0:40], 1),
        thread(deleting, initial[40:80], 4),
        thread(adding, "a"),
        thread(adding, "b"),
    ]
    checker = thread(verifying)
    checker.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    checker.join()
    assert not errors, errors[0]
    assert stats["selections"] == SELECTORS * ROUNDS
    assert len(sel) == 120 - 80 + 2 * 15 * 3 and sel.verify()
    digest = sel.state_digest()
    sel.close()
    back = ERASEExampleSelector.open(path, fake())
    assert len(back.deletion_log()) == 80
    assert back.state_digest() == digest
    back.close()

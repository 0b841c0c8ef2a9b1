"""One example set shared by several processes: every process follows the store's change log.

Parametrized over `backend_target` (one parameter per storage backend): processes add,
delete and select at random; no select that starts after a deletion returned (in any
process) returns the deleted example; the final state is a fresh fit of the surviving set.
"""

from __future__ import annotations

import itertools
import multiprocessing
import random
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import fake

from langchain_erase import ERASEExampleSelector, UnknownExampleError
from langchain_erase.errors import StateFileError
from langchain_erase.example_selectors import FOLLOW_INTERVAL_S
from langchain_erase.storage import is_postgres_url

PARAMS: dict[str, Any] = {"k": 3, "seed": 11}
PROCESSES, STEPS = 3, 60
_FORK = multiprocessing.get_context("fork")


def example(uid: str) -> dict[str, str]:
    """An example that carries its id, so a selection maps back to ids."""
    return {
        "input": f"<{uid}> some words about {uid[-1]}",
        "output": f"label {len(uid) % 3}",
        "uid": uid,
    }


def fresh_digest(ids: list[str]) -> str:
    ids = sorted(ids)
    return ERASEExampleSelector.from_examples(
        [example(i) for i in ids], fake(), ids=ids, **PARAMS
    ).state_digest()


def _worker(target: str, proc: int, out: Any) -> None:
    sel = ERASEExampleSelector.open(target, fake())
    rng = random.Random(proc)
    mine: list[str] = []
    deletions: list[tuple[str, float]] = []
    selections: list[tuple[float, list[str]]] = []
    for step in range(STEPS):
        draw = rng.random()
        if draw < 0.4 or not mine:
            new = [f"p{proc}-{step}-{j}" for j in range(rng.randint(1, 3))]
            sel.add_examples([example(i) for i in new], ids=new)
            mine.extend(new)
        elif draw < 0.7:
            victim = mine.pop(rng.randrange(len(mine)))
            sel.delete_example(victim)
            deletions.append((victim, time.monotonic()))
        else:
            started = time.monotonic()
            picked = sel.select_examples({"input": f"query {proc} {step}"})
            selections.append((started, [e["uid"] for e in picked]))
    sel.close()
    out.put((sorted(mine), deletions, selections))


def test_processes_adding_deleting_selecting_agree_with_a_fresh_fit(backend_target: str) -> None:
    ERASEExampleSelector.open(backend_target, fake(), **PARAMS).close()
    queue = _FORK.Queue()
    workers = [_FORK.Process(target=_worker, args=(backend_target, p, queue)) for p in range(3)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    deleted_at = {uid: at for _, deletions, _ in results for uid, at in deletions}
    checked = 0
    for _, _, selections in results:
        for started, picked in selections:
            late = [uid for uid in picked if uid in deleted_at and deleted_at[uid] < started]
            assert not late, "a process selected an example after its deletion returned"
            checked += 1
    assert checked > 0
    survivors = sorted(uid for mine, _, _ in results for uid in mine)
    back = ERASEExampleSelector.open(backend_target, fake())
    assert back.ids == survivors
    assert back.state_digest() == fresh_digest(survivors) and back.verify()
    assert back.consistency_repairs == 0
    back.close()


def _race(target: str, victims: list[str], barrier: Any, out: Any) -> None:
    sel = ERASEExampleSelector.open(target, fake())
    outcome = []
    for victim in victims:
        barrier.wait(timeout=60)
        try:
            outcome.append(sel.delete_example(victim).position)
        except UnknownExampleError:
            outcome.append(None)
    sel.close()
    out.put(outcome)


def test_two_writers_racing_to_delete_the_same_id(backend_target: str) -> None:
    ids = [f"race-{i}" for i in range(8)]
    sel = ERASEExampleSelector.open(backend_target, fake(), **PARAMS)
    sel.add_examples([example(i) for i in ids], ids=ids)
    barrier, queue = _FORK.Barrier(2), _FORK.Queue()
    racers = [_FORK.Process(target=_race, args=(backend_target, ids, barrier, queue)) for _ in "ab"]
    for racer in racers:
        racer.start()
    first, second = (queue.get(timeout=120) for _ in racers)
    for racer in racers:
        racer.join(timeout=60)
    for a, b in zip(first, second, strict=True):
        assert (a is None) != (b is None), "exactly one writer gets the receipt"
    positions = sorted(p for p in first + second if p is not None)
    assert positions == list(range(positions[0], positions[0] + len(ids)))  # no gaps
    assert sel.ids == [] and sel.verify()
    sel.close()


def _first_open(target: str, barrier: Any, out: Any) -> None:
    barrier.wait(timeout=60)
    try:
        ERASEExampleSelector.open(target, fake(), **PARAMS).close()
        out.put("ok")
    except Exception as err:  # reported to the parent, which names it
        out.put(f"{type(err).__name__}: {err}")


def test_processes_opening_a_new_store_at_once_all_succeed(backend_target: str) -> None:
    # uvicorn --workers 4 on a new SQLite path: a worker read the header between another
    # worker's schema commit and its own second read, and refused the store as foreign
    for round_ in range(4):
        target = backend_target if round_ == 0 else f"{backend_target}-{round_}"
        if "://" in backend_target and round_:
            break  # one PostgreSQL database per test; the concurrent schema creation is one round
        barrier, queue = _FORK.Barrier(6), _FORK.Queue()
        openers = [
            _FORK.Process(target=_first_open, args=(target, barrier, queue)) for _ in range(6)
        ]
        for opener in openers:
            opener.start()
        outcomes = [queue.get(timeout=120) for _ in openers]
        for opener in openers:
            opener.join(timeout=60)
        assert outcomes == ["ok"] * 6


def test_a_commit_between_the_catch_up_reads_is_not_an_inconsistency(tmp_path: Path) -> None:
    # catch-up read the change log and the added rows separately: a deletion committed
    # between the two reads hid a row both views needed, and the replica "repaired" itself
    target = str(tmp_path / "store.db")
    reader = ERASEExampleSelector.open(target, fake(), **PARAMS)
    writer = ERASEExampleSelector.open(target, fake(), **PARAMS)
    ids = [f"between-{i}" for i in range(12)]
    writer.add_examples([example(i) for i in ids], ids=ids)
    backend = reader.store
    assert backend is not None
    read_changes = backend._changes_in  # type: ignore[attr-defined]
    receipts = []

    def changes_then_a_commit_elsewhere(conn: Any, position: int) -> Any:
        changes = read_changes(conn, position)
        if not receipts:
            receipts.append(writer.delete_example(ids[0]))
        return changes

    backend._changes_in = changes_then_a_commit_elsewhere  # type: ignore[attr-defined]
    reader.select_examples({"input": "query"})
    assert receipts and reader.consistency_repairs == 0
    assert reader.ids == sorted(ids[1:]) and reader.verify()
    reader.close()
    writer.close()


def test_a_selector_catches_up_on_10000_changes(backend_target: str) -> None:
    idle = ERASEExampleSelector.open(backend_target, fake(), **PARAMS)
    writer = ERASEExampleSelector.open(backend_target, fake())
    start = idle.log_position
    assert start is not None
    ids = [f"bulk-{i:05d}" for i in range(6000)]
    for lo in range(0, len(ids), 500):
        writer.add_examples([example(i) for i in ids[lo : lo + 500]], ids=ids[lo : lo + 500])
    holder = ERASEExampleSelector.open(backend_target, fake())  # holds all 6,000
    for lo in range(0, 4000, 500):
        writer.delete_examples(ids[lo : lo + 500])
    assert writer.log_position == start + 10_000
    assert idle.log_position == start  # nothing applied yet
    assert idle.sync() == start + 10_000
    assert holder.sync() == start + 10_000  # 4,000 deletions of held examples: one refit
    assert idle.state_digest() == writer.state_digest() == fresh_digest(ids[4000:])
    assert holder.state_digest() == writer.state_digest()
    assert idle.consistency_repairs == holder.consistency_repairs == 0
    reopened = ERASEExampleSelector.open(backend_target, fake())  # a process that was down
    assert reopened.state_digest() == writer.state_digest()
    for sel in (idle, holder, writer, reopened):
        sel.close()


def test_eventual_mode_applies_changes_in_the_background(backend_target: str) -> None:
    writer = ERASEExampleSelector.open(backend_target, fake(), **PARAMS)
    follower = ERASEExampleSelector.open(backend_target, fake(), consistency="eventual")
    ids = [f"ev-{i}" for i in range(10)]
    writer.add_examples([example(i) for i in ids], ids=ids)
    receipt = writer.delete_example(ids[3])
    deadline = time.monotonic() + 100 * FOLLOW_INTERVAL_S  # liveness, not a timing claim
    while follower.log_position != receipt.position and time.monotonic() < deadline:
        time.sleep(FOLLOW_INTERVAL_S / 5)
    assert follower.log_position == receipt.position  # applied without any call on it
    assert follower.state_digest() == writer.state_digest() == fresh_digest(ids[:3] + ids[4:])
    follower.close()
    writer.close()


POOL = [f"h-{i}" for i in range(12)]
_SET_NUMBERS = itertools.count()


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.booleans(), st.lists(st.sampled_from(POOL), max_size=3)),
        max_size=12,
    )
)
def test_two_selectors_on_one_store_always_equal_a_fresh_fit(
    backend_target: str, ops: list[tuple[int, bool, list[str]]]
) -> None:
    name = f"h{next(_SET_NUMBERS)}"  # a fresh example set per hypothesis example
    sels = [
        ERASEExampleSelector.open(backend_target, fake(), name=name, **PARAMS) for _ in range(2)
    ]
    present: set[str] = set()
    try:
        for which, add, chosen in ops:
            sel = sels[which]
            chosen = sorted(set(chosen))
            if add:
                new = [i for i in chosen if i not in present]
                sel.add_examples([example(i) for i in new], ids=new)
                present.update(new)
            else:
                gone = [i for i in chosen if i in present]
                sel.delete_examples(gone)
                present.difference_update(gone)
            expected = fresh_digest(sorted(present))
            assert sels[0].state_digest() == expected == sels[1].state_digest()
        assert all(s.verify() and s.consistency_repairs == 0 for s in sels)
    finally:
        for sel in sels:
            sel.close()


def test_processes_with_different_log_keys_are_repaired_and_counted(
    backend_target: str, caplog: Any
) -> None:
    """A process whose log key differs cannot match deletions by their keyed hash; the digest
    check catches it, refits from the rows, warns and counts the repair."""
    ids = [f"key-{i}" for i in range(12)]
    first = ERASEExampleSelector.open(backend_target, fake(), log_key="key one", **PARAMS)
    first.add_examples([example(i) for i in ids], ids=ids)
    if is_postgres_url(backend_target):  # rows are encrypted under the key: refused at once
        with pytest.raises(StateFileError, match="another log key"):
            ERASEExampleSelector.open(backend_target, fake(), log_key="key two")
        first.close()
        return
    second = ERASEExampleSelector.open(backend_target, fake(), log_key="key two")
    second.delete_example(ids[5])
    with caplog.at_level("WARNING", logger="langchain_erase"):
        assert ids[5] not in first.ids
    assert first.consistency_repairs == 1 and "refitting" in caplog.text
    assert first.state_digest() == second.state_digest() == fresh_digest(ids[:5] + ids[6:])
    first.close()
    second.close()

"""The write session seam: `MemorySession` and `StoreSession` behave alike (one interface),
the store one also records every change, and nothing after a commit raises."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_erase.core import QKMeansParams
from langchain_erase.core.index import ERASEIndex
from langchain_erase.errors import (
    DuplicateExampleError,
    StateFileError,
    StoreUnavailableError,
    UnknownExampleError,
)
from langchain_erase.replication import (
    ErasureStatus,
    MemorySession,
    Session,
    StoreSession,
)
from langchain_erase.storage.base import StoreHeader
from langchain_erase.storage.sqlite import SqliteBackend

KEY = b"session-test-key"


def _index() -> ERASEIndex:
    return ERASEIndex(QKMeansParams(k=3, epsilon=0.25, seed=5), 4, "random")


def _rows(n: int) -> tuple[list[str], list[str], npt.NDArray[np.float32]]:
    vectors = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"r-{i}" for i in range(n)]
    return ids, [f'{{"x":"{i}"}}' for i in ids], vectors


def _no_check(text: str) -> None:
    """Stored texts are the test's own."""


class StatusDown(SqliteBackend):
    """A real SQLite backend whose post-commit erasure status query fails."""

    def erasure_status(self) -> ErasureStatus:
        raise StoreUnavailableError("the store went away after the commit")


def _store(path: Path, backend_type: type[SqliteBackend] = SqliteBackend) -> StoreSession:
    backend = backend_type.open(path, "default")
    backend.create(StoreHeader({"test": True}, None, None, None))
    return StoreSession(_index(), backend, KEY, _no_check)


@pytest.fixture(params=["memory", "store"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    made = MemorySession(_index()) if request.param == "memory" else _store(tmp_path / "s.db")
    yield made
    made.close()


def test_both_sessions_change_the_index_exactly_and_alike(session: Session, tmp_path: Path) -> None:
    ids, texts, vectors = _rows(12)
    with session.lock, session.write() as writer:
        added = writer.add(ids, texts, vectors)
    assert added.ids == ids and len(added.outcomes) == 12
    with session.lock, session.write() as writer:
        done = writer.delete(ids[:3])
    assert [d.example_id for d in done] == ids[:3]
    assert done[0].digest_after == done[1].digest_before
    fresh = _index()
    fresh.load(ids[3:], texts[3:], vectors[3:])
    session.read()
    assert session.index.state_digest() == fresh.state_digest() == done[-1].digest_after
    if session.store is None:
        assert session.position is None and all(d.position is None for d in done)
        assert session.changes() == [] and session.describe() is None
    else:
        assert added.positions == list(range(1, 13))
        assert [d.position for d in done] == [13, 14, 15] == [c.position for c in session.changes()]
        assert session.position == 15 and session.describe()
        again = _store(tmp_path / "s.db")  # another reader of the same store agrees
        assert again.index.state_digest() == fresh.state_digest()
        again.close()
    assert session.erasure() == ErasureStatus(pending=False)


def test_writers_refuse_bad_ids_before_any_change(session: Session) -> None:
    ids, texts, vectors = _rows(6)
    with session.lock, session.write() as writer:
        writer.add(ids, texts, vectors)
    digest, position = session.index.state_digest(), session.position
    with pytest.raises(UnknownExampleError), session.write() as writer:
        writer.delete([ids[0], "absent"])
    with pytest.raises(DuplicateExampleError), session.write() as writer:
        writer.delete([ids[0], ids[0]])
    with pytest.raises(DuplicateExampleError), session.write() as writer:
        writer.add([ids[1]], texts[:1], vectors[:1])
    session.read()
    assert session.index.state_digest() == digest and session.position == position
    assert len(session.index) == 6


def test_a_failed_store_write_block_commits_nothing_and_restores_memory(tmp_path: Path) -> None:
    session = _store(tmp_path / "s.db")
    ids, texts, vectors = _rows(8)
    with session.write() as writer:
        writer.add(ids, texts, vectors)
    digest = session.index.state_digest()
    with pytest.raises(RuntimeError, match="after the change"), session.write() as writer:
        writer.delete(ids[:2])
        raise RuntimeError("after the change, before the commit")
    assert session.index.state_digest() == digest and len(session.index) == 8
    assert session.position == 8 and session.changes() == []
    session.close()


def test_a_failing_status_query_after_commit_is_reported_not_raised(tmp_path: Path) -> None:
    session = _store(tmp_path / "s.db", StatusDown)
    ids, texts, vectors = _rows(5)
    with session.write() as writer:
        writer.add(ids, texts, vectors)
    with session.write() as writer:
        writer.delete(ids[:1])
    status = session.erasure()
    assert status.pending is True
    assert status.error is not None and "StoreUnavailableError" in status.error
    session.close()


def test_a_closed_store_session_refuses_reads_and_writes(tmp_path: Path) -> None:
    session = _store(tmp_path / "s.db")
    session.close()
    session.close()
    with pytest.raises(StateFileError, match="closed"):
        session.read()
    with pytest.raises(StateFileError, match="closed"), session.write():
        pass
    with pytest.raises(StateFileError, match="closed"):
        session.sync()
    memory = MemorySession(_index())
    memory.close()
    memory.read()  # holds nothing to release: stays usable


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(st.booleans(), st.lists(st.integers(0, 39), min_size=1, max_size=5)),
        min_size=1,
        max_size=8,
    )
)
def test_after_any_sequence_of_writes_both_sessions_equal_a_fresh_build(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[bool, list[int]]]
) -> None:
    ids, texts, vectors = _rows(40)
    memory = MemorySession(_index())
    path = tmp_path_factory.mktemp("prop") / "s.db"
    store = _store(path)
    present: set[int] = set()
    for adding, rows in steps:
        chosen = sorted({r for r in rows if (r not in present) == adding})
        if not chosen:
            continue
        for session in (memory, store):
            with session.write() as writer:
                if adding:
                    writer.add(
                        [ids[r] for r in chosen], [texts[r] for r in chosen], vectors[chosen]
                    )
                else:
                    writer.delete([ids[r] for r in chosen])
        present = present | set(chosen) if adding else present - set(chosen)
        kept = sorted(present)
        fresh = _index()
        if kept:
            fresh.load([ids[r] for r in kept], [texts[r] for r in kept], vectors[kept])
        reader = _store(path)  # a fresh build from the stored rows
        assert (
            memory.index.state_digest()
            == store.index.state_digest()
            == reader.index.state_digest()
            == fresh.state_digest()
        )
        reader.close()
    store.close()

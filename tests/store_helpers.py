"""Shared helpers of the store, fault, bad-input and concurrency tests."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from langchain_erase.errors import UnknownExampleError
from langchain_erase.example_selectors import ERASEExampleSelector
from langchain_erase.storage.base import ExampleRow
from langchain_erase.storage.sqlite import SqliteBackend

__all__ = [
    "DIM",
    "PARAMS",
    "FaultyEmbeddings",
    "examples",
    "fake",
    "frozen",
    "marked_rows",
    "markers",
    "opened",
    "race_to_delete",
    "store_bytes",
    "stored_digest",
]

T = TypeVar("T")

DIM = 16
#: Selector parameters of the store tests.
PARAMS: dict[str, Any] = {"k": 3, "seed": 7}


def fake(size: int = DIM) -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=size)


def examples(n: int, tag: str = "ex") -> list[dict[str, str]]:
    """Examples with unique, searchable texts (`<tag-0007>` cannot be a prefix of another)."""
    return [{"input": f"<{tag}-{i:04d}> some words", "output": f"label {i % 3}"} for i in range(n)]


def opened(path: Path, n: int, **params: Any) -> ERASEExampleSelector:
    """The store at `path` opened with `PARAMS` (overridden by `params`), with `n` examples
    added."""
    selector = ERASEExampleSelector.open(path, fake(), **{**PARAMS, **params})
    if n:
        selector.add_examples(examples(n))
    return selector


def marked_rows(prefix: str, count: int) -> list[ExampleRow]:
    """Rows whose id, text and vector each carry a unique marker; every 4th text is long
    and random (stored out of line: PostgreSQL TOAST, SQLite overflow pages; uncompressible).

    The markers (see `markers`) are what erasure tests scan the database files for."""
    rows = []
    for i in range(count):
        tag = secrets.token_hex(8)
        long = secrets.token_hex(3000) if i % 4 == 0 else ""
        rows.append(
            ExampleRow(
                f"{prefix}-ID-{tag}",
                f'{{"q":"TXT-{tag}{long}"}}',
                b"VEC-" + tag.encode() + os.urandom(32),
            )
        )
    return rows


def markers(rows: Iterable[ExampleRow]) -> list[bytes]:
    """The unique bytes of each row's id, text and vector (see `marked_rows`)."""
    return [m for r in rows for m in (r.id.encode(), r.example[:30].encode(), r.vector[:20])]


def race_to_delete(delete: Callable[[T], object], contenders: Sequence[T]) -> list[str]:
    """Call `delete` for every contender, each on a thread of its own, all released at once.

    Returns:
        The sorted outcomes: "deleted" for a call that returned, "unknown" for one that
        raised `UnknownExampleError` (a call that raised anything else has none)."""
    barrier = threading.Barrier(len(contenders))
    outcomes: list[str] = []

    def attempt(contender: T) -> None:
        barrier.wait()
        try:
            delete(contender)
            outcomes.append("deleted")
        except UnknownExampleError:
            outcomes.append("unknown")

    threads = [threading.Thread(target=attempt, args=(c,)) for c in contenders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(outcomes)


def frozen(selector: ERASEExampleSelector) -> tuple[Any, ...]:
    """Everything a failed call must leave unchanged: the state digest, the examples and,
    for a store-backed selector, the stored rows, head, change log and database bytes."""
    state: tuple[Any, ...] = (
        selector.state_digest(),
        {i: selector.get_example(i) for i in selector.ids},
    )
    store = selector.store
    if isinstance(store, SqliteBackend):
        state += (store.snapshot(), store.changes_after(0), store.path.read_bytes())
    elif store is not None:
        state += (store.snapshot(), store.changes_after(0))
    return state


def stored_digest(selector: ERASEExampleSelector) -> str:
    """The digest the store records at its head (an empty log: a fresh empty selector's)."""
    assert selector.store is not None
    _, position, digest = selector.store.snapshot()
    if position == 0:
        return ERASEExampleSelector(
            selector.embeddings, **selector.parameters.to_json()
        ).state_digest()
    return digest


def store_bytes(directory: Path) -> bytes:
    """The raw bytes of every file of a store directory (database, WAL, shm), concatenated."""
    return b"".join(f.read_bytes() for f in sorted(directory.iterdir()) if f.is_file())


class FaultyEmbeddings(Embeddings):
    """An embedding model that misbehaves in one chosen way.

    `mode`: "nan", "inf", "zero", "wrong_dim", "ragged", "short", "raise" (on the call
    after `good_calls` good ones: mid-batch for large adds), "not_numbers".
    """

    def __init__(self, mode: str, good_calls: int = 0, size: int = DIM) -> None:
        self.mode = mode
        self.good_calls = good_calls
        self.size = size
        self.inner = fake(size)
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        rows = self.inner.embed_documents(texts)
        if self.calls <= self.good_calls:
            return rows
        bad: Any = {
            "nan": lambda: [[float("nan"), *r[1:]] for r in rows],
            "inf": lambda: [[*r[:-1], float("inf")] for r in rows],
            "zero": lambda: [[0.0] * self.size for _ in rows],
            "wrong_dim": lambda: [[*r, 0.5] for r in rows],
            "ragged": lambda: [r[: 1 + i % 2 * (self.size - 1)] for i, r in enumerate(rows)],
            "short": lambda: rows[:-1],
            "not_numbers": lambda: [["x"] * self.size for _ in rows],
        }
        if self.mode == "raise":
            raise RuntimeError("embedding service unavailable")
        result: list[list[float]] = bad[self.mode]()
        return result

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

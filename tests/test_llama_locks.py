"""The per-context lock and the async helpers the local model wrappers are built on."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator

import pytest

from langchain_erase.models.llama_locks import (
    context_lock,
    locked_iterator,
    run_in_own_thread,
    stream_in_own_thread,
)


class _Context:
    """Stands in for a ``llama_cpp.Llama``: any weak-referenceable object keys a lock."""


def test_one_lock_per_context() -> None:
    a, b = _Context(), _Context()
    assert context_lock(a) is context_lock(a)
    assert context_lock(a) is not context_lock(b)


def test_locked_iterator_holds_the_lock_from_first_item_to_the_end() -> None:
    ctx = _Context()
    stream = locked_iterator(ctx, lambda: iter([1, 2, 3]))
    assert not context_lock(ctx).locked()  # creating the stream takes nothing
    assert next(stream) == 1
    assert context_lock(ctx).locked()
    assert list(stream) == [2, 3]
    assert not context_lock(ctx).locked()


def test_locked_iterator_releases_on_close_error_and_abandon() -> None:
    ctx = _Context()
    stream = locked_iterator(ctx, lambda: iter([1, 2]))
    next(stream)
    stream.close()
    assert not context_lock(ctx).locked()

    def failing() -> Iterator[int]:
        yield 1
        raise RuntimeError("decode failed")

    stream = locked_iterator(ctx, failing)
    next(stream)
    with pytest.raises(RuntimeError, match="decode failed"):
        next(stream)
    assert not context_lock(ctx).locked()

    abandoned = locked_iterator(ctx, lambda: iter([1, 2]))
    next(abandoned)
    del abandoned
    gc.collect()
    assert not context_lock(ctx).locked()


async def test_run_in_own_thread_returns_and_raises() -> None:
    caller = threading.get_ident()
    assert await run_in_own_thread(lambda: threading.get_ident()) != caller

    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await run_in_own_thread(fail)


async def test_stream_in_own_thread_yields_all_and_raises() -> None:
    assert [x async for x in stream_in_own_thread(lambda: iter(range(5)))] == list(range(5))

    def failing() -> Iterator[int]:
        yield 1
        raise RuntimeError("decode failed")

    seen = []
    with pytest.raises(RuntimeError, match="decode failed"):
        async for x in stream_in_own_thread(failing):
            seen.append(x)
    assert seen == [1]


async def test_consumer_stopping_early_closes_the_stream() -> None:
    ctx = _Context()
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed.set()

    stream = stream_in_own_thread(lambda: locked_iterator(ctx, endless))
    async for x in stream:
        if x == 3:
            break
    await stream.aclose()
    assert await asyncio.to_thread(closed.wait, 10)
    assert await asyncio.to_thread(context_lock(ctx).acquire, True, 10)
    context_lock(ctx).release()


async def test_locked_streams_and_calls_do_not_starve_each_other() -> None:
    """A stream holding the lock keeps running while more callers than the loop's default
    executor has threads wait for that lock (LangChain's default astream deadlocks here)."""
    ctx = _Context()
    lock = context_lock(ctx)

    def call(i: int) -> int:
        with lock:
            return i

    async def streamed(i: int) -> list[int]:
        return [
            x
            async for x in stream_in_own_thread(lambda: locked_iterator(ctx, lambda: iter([i, i])))
        ]

    waiting = [run_in_own_thread(lambda i=i: call(i)) for i in range(64)]
    streams = [streamed(i) for i in range(8)]
    results = await asyncio.wait_for(asyncio.gather(*streams, *waiting), timeout=60)
    assert results[:8] == [[i, i] for i in range(8)]
    assert results[8:] == list(range(64))

"""One lock per llama.cpp context, and async calls that wait for it without starving others.

A ``llama_cpp.Llama`` object owns one llama.cpp context (KV memory, batch buffers, token
history). Two threads decoding in it at once corrupt its state and llama.cpp aborts the process
(``GGML_ASSERT``), so every user of a context takes the same lock first: the LangChain wrappers
around each call and for the whole life of a stream, and cache eviction before it clears the
context. Locks are looked up by the ``Llama`` object, so two wrappers sharing a client, or a raw
``Llama`` used next to a wrapper, share one lock; an entry goes away with its ``Llama``.

Async calls must not wait for the lock on the event loop's shared executor: LangChain's default
``astream`` resumes a stream with one executor job per chunk, so a stream holding the lock would
wait for a free executor thread while every thread waits for the lock (a deadlock seen with 8
concurrent ``ainvoke``/``astream`` calls). :func:`run_in_own_thread` and
:func:`stream_in_own_thread` run each async call on a thread of its own instead; a stream is
generated there to its end and its chunks handed to the loop as they come.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

__all__ = ["context_lock", "locked_iterator", "run_in_own_thread", "stream_in_own_thread"]

T = TypeVar("T")

_locks: weakref.WeakKeyDictionary[object, threading.Lock] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def context_lock(llama: object) -> threading.Lock:
    """The lock that serializes all work on ``llama``'s llama.cpp context.

    Args:
        llama: a ``llama_cpp.Llama`` (any weak-referenceable object works as a key).

    Returns:
        The same ``threading.Lock`` for the same object, every time (not re-entrant: holding
        it and calling the model again from the same thread deadlocks).
    """
    with _registry_lock:
        lock = _locks.get(llama)
        if lock is None:
            lock = _locks[llama] = threading.Lock()
        return lock


def locked_iterator(llama: object, make: Callable[[], Iterator[T]]) -> Iterator[T]:
    """Iterate ``make()`` while holding ``llama``'s context lock.

    The lock is taken when the first item is requested (creating the generator takes nothing)
    and released when the stream ends, raises, or is closed (``close()`` or garbage collection
    of an abandoned stream).

    Args:
        llama: the ``Llama`` whose context ``make()`` decodes in.
        make: builds the underlying iterator; called once the lock is held.

    Returns:
        A generator yielding the underlying items.
    """
    with context_lock(llama):
        yield from make()


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Complete ``future`` on its loop, unless its awaiter was cancelled meanwhile."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _call_soon(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: Any
) -> bool:
    """Schedule ``callback`` on ``loop`` from another thread; False once the loop is closed."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        return False
    return True


async def run_in_own_thread(fn: Callable[[], T]) -> T:
    """Run the blocking ``fn`` on a new thread, with the caller's context variables.

    Args:
        fn: the call (it may wait for a context lock).

    Returns:
        What ``fn`` returned; its exception is raised here.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def work() -> None:
        try:
            result = context.run(fn)
        except BaseException as exc:
            _call_soon(loop, _deliver, future, None, exc)
        else:
            _call_soon(loop, _deliver, future, result, None)

    threading.Thread(target=work, name="langchain-erase-llama", daemon=True).start()
    return await future


async def stream_in_own_thread(make: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Produce ``make()``'s items on a new thread and yield them on the event loop.

    The thread never waits for the consumer, so a stream holding a context lock always runs
    to its end; if the consumer stops early the thread closes the stream at the next item.

    Args:
        make: builds the blocking iterator (e.g. a locked model stream).

    Returns:
        An async iterator of the same items; the stream's exception is raised here.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()
    stopped = threading.Event()
    context = contextvars.copy_context()
    end = object()

    def produce() -> None:
        iterator = make()
        try:
            for item in iterator:
                if stopped.is_set() or not _call_soon(loop, queue.put_nowait, (True, item)):
                    break
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def work() -> None:
        try:
            context.run(produce)
        except BaseException as exc:
            _call_soon(loop, queue.put_nowait, (False, exc))
        else:
            _call_soon(loop, queue.put_nowait, (False, end))

    threading.Thread(target=work, name="langchain-erase-llama-stream", daemon=True).start()
    try:
        while True:
            is_item, value = await queue.get()
            if is_item:
                yield value
            elif value is end:
                return
            else:
                raise value
    finally:
        stopped.set()

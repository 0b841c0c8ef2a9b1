"""Thread settings for per-query work.

A `similar` query multiplies a few small matrices by one vector. Multi-threaded BLAS gains
nothing there and, on a machine where other work runs, waits for busy cores (measured: 19 ms
instead of 1.4 ms for 20k examples). `query_threads(1)` limits the BLAS and OpenMP thread
pools to one thread for the duration of a query, with threadpoolctl.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from threadpoolctl import ThreadpoolController

__all__ = ["query_threads"]


_cached: tuple[int, ThreadpoolController] | None = None


def _controller() -> ThreadpoolController:
    """The controller of the thread pools loaded now.

    Inspecting the loaded libraries costs ~1 ms, so the controller is kept, and made again
    only after an import (a module count that changed may have loaded another BLAS or OpenMP
    library, e.g. torch's or faiss's, which an older controller would not limit).
    """
    global _cached
    modules = len(sys.modules)
    if _cached is None or _cached[0] != modules:
        _cached = (modules, ThreadpoolController())
    return _cached[1]


def query_threads(threads: int | None) -> AbstractContextManager[Any]:
    """Context in which BLAS/OpenMP thread pools use at most `threads` threads.

    Args:
        threads: the limit, or None to leave the process's settings alone.

    Returns:
        A context manager.
    """
    if threads is None:
        return nullcontext()
    limit: AbstractContextManager[Any] = _controller().limit(limits=threads)
    return limit

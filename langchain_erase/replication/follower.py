"""`Follower`: the background thread of an eventually consistent store session.

It waits for a change (a backend's `ChangeNotifier`, e.g. PostgreSQL's LISTEN/NOTIFY) or
polls every `FOLLOW_INTERVAL_S` seconds, then catches up under the session's lock. A
failed round is logged on the "langchain_erase" logger and retried; `stop` ends the thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from langchain_erase.storage.base import ChangeNotifier, StorageBackend

__all__ = ["FOLLOW_INTERVAL_S", "Follower"]

logger = logging.getLogger("langchain_erase")

#: How often the follower of an ``consistency="eventual"`` selector polls its store.
FOLLOW_INTERVAL_S = 0.05


class Follower:
    """Calls `catch_up()` under `lock` after each change of `backend`, until `stop`."""

    def __init__(
        self,
        backend: StorageBackend,
        lock: threading.RLock,
        catch_up: Callable[[], None],
        interval: float = FOLLOW_INTERVAL_S,
    ) -> None:
        """Start following.

        Args:
            backend: The store's backend (waited on if it is a `ChangeNotifier`, else polled).
            lock: Taken around each `catch_up` (the session's lock).
            catch_up: Applies what was committed since (called under `lock`).
            interval: Seconds between polls, and the longest wait for a notification.
        """
        self._lock = lock
        self._catch_up = catch_up
        self._interval = interval
        self._notifier = backend.wait_for_change if isinstance(backend, ChangeNotifier) else None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="langchain-erase-follower", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._notifier is not None:  # wakes on a notification (PostgreSQL)
                    self._notifier(self._interval)
                elif self._stop.wait(self._interval):  # polls (SQLite)
                    return
                with self._lock:
                    if not self._stop.is_set():
                        self._catch_up()
            except Exception:  # keep following; the next round retries
                logger.exception("langchain_erase follower: catching up failed")
                self._stop.wait(self._interval)

    def stop(self) -> None:
        """Stop the thread and wait for it (unless called from it)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

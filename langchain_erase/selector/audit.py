"""What a selector tells about its changes: receipts, log lines and deletion listeners.

Logs (on the "langchain_erase" logger, INFO) never name an id or show an example: an id
appears as the first 16 hex digits of its keyed hash (`Session.key_of`: the change log's
HMAC with a store, a per-session random key without). `receipts` turns a committed batch
of deletions into `DeletionReceipt`s; `DeletionListeners` runs the callbacks that evict
deleted examples from caches outside the selector.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from langchain_erase.core.index import BATCH_FIT
from langchain_erase.core.qkmeans import ChangeOutcome
from langchain_erase.inputs import parse_example
from langchain_erase.receipts import DeletionReceipt
from langchain_erase.replication import Deletion, ErasureStatus

__all__ = ["DeletionListener", "DeletionListeners", "log_add", "log_deletions", "receipts"]

logger = logging.getLogger("langchain_erase")

#: Called with a deleted example's id and a copy of the example.
DeletionListener = Callable[[str, dict[str, Any]], object]


def receipts(done: Sequence[Deletion], erasure: ErasureStatus) -> list[DeletionReceipt]:
    """Args:
        done: The committed deletions.
        erasure: The store's erasure status after the commit.

    Returns:
        One receipt per deletion, in order."""
    return [
        DeletionReceipt(
            example_id=d.example_id,
            refit=d.outcome.refit,
            reason=d.outcome.reason.value,
            iteration=d.outcome.iteration,
            seconds=d.seconds,
            digest_before=d.digest_before,
            digest_after=d.digest_after,
            position=d.position,
            erasure_complete=not erasure.pending,
            erasure_error=erasure.error,
        )
        for d in done
    ]


def log_add(
    key_of: Callable[[str], str],
    ids: Sequence[str],
    outcomes: Sequence[ChangeOutcome],
    seconds: float,
) -> None:
    """Log an add: one line for a batch fit, else one per add that refitted.

    Args:
        key_of: How logs name an id (its keyed hash).
        ids: The added ids.
        outcomes: Their outcomes.
        seconds: Wall time of the in-memory change.
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    if outcomes and outcomes[0] is BATCH_FIT:
        logger.info("fitted %d new examples at once in %.6f s", len(ids), seconds)
        return
    for example_id, outcome in zip(ids, outcomes, strict=True):
        if outcome.refit:
            logger.info(
                "added example %s: refit (reason=%s, iteration=%s)",
                key_of(example_id)[:16],
                outcome.reason.value,
                outcome.iteration,
            )


def log_deletions(key_of: Callable[[str], str], done: Sequence[DeletionReceipt]) -> None:
    """Log one line per deletion (keyed id, refit, reason, position, digest prefix).

    Args:
        key_of: How logs name an id (its keyed hash).
        done: The receipts.
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    for receipt in done:
        logger.info(
            "deleted example %s: refit=%s reason=%s iteration=%s seconds=%.6f "
            "position=%s digest_after=%s",
            key_of(receipt.example_id)[:16],
            receipt.refit,
            receipt.reason,
            receipt.iteration,
            receipt.seconds,
            receipt.position,
            receipt.digest_after[:16],
        )


class DeletionListeners:
    """The callbacks run after every committed deletion (not thread-safe: the selector's
    lock serializes them)."""

    def __init__(self) -> None:
        self._listeners: list[DeletionListener] = []

    def add(self, listener: DeletionListener) -> None:
        """Args:
        listener: Called with each deleted id and a copy of its example."""
        self._listeners.append(listener)

    def notify(self, done: Sequence[Deletion]) -> None:
        """Run every listener for every deleted example, in order, even after one raised.

        Args:
            done: The committed deletions.

        Raises:
            Exception: The first exception a listener raised, once all have run.
        """
        failure: Exception | None = None
        for deletion in done:
            example = parse_example(deletion.text)
            for listener in self._listeners:
                try:
                    listener(deletion.example_id, dict(example))
                except Exception as err:
                    failure = failure or err
        if failure is not None:
            raise failure

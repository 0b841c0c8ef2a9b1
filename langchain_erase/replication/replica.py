"""`Replica`: an in-memory `ERASEIndex` that follows a storage backend's change log.

The store is the source of truth. A replica loads the set's rows once, then catches up from
its last applied log position: deletions of ids it holds (matched by the keyed hash in the
change records) and rows added since, applied with the exact in-place operations, after which
`state_digest()` must equal the digest logged at the head. A mismatch (another log key, a
damaged row, a race between reads) is repaired by refitting from the stored rows; it is
logged as a warning on the "langchain_erase" logger and counted in `repairs`.

The replica is the one owner of its index: writes run inside the backend's write
transaction (`write`, which catches up first), where `add` and `delete` apply the change to
the index (`replication.changes`) and write rows and change records; then the transaction
commits. If anything fails, the transaction rolls back and memory is reloaded from the
store, so memory always equals the committed store.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

from langchain_erase.core.index import ERASEIndex
from langchain_erase.core.qkmeans import ChangeOutcome
from langchain_erase.errors import ForkedProcessError, StateFileError
from langchain_erase.replication.changes import Addition, Deletion, apply_add, apply_delete
from langchain_erase.storage.base import (
    ChangeRecord,
    ExampleRow,
    StorageBackend,
    WriteTxn,
    id_key,
)

__all__ = ["Replica", "logger"]

logger = logging.getLogger("langchain_erase")
_LOAD_ATTEMPTS = 3
#: Catching up on at least this many deletions of held examples, when they are an eighth of
#: the resulting set or more, refits once from the stored rows instead (same state: it is a
#: function of the member set).
_BULK_DELETIONS = 64


class Replica:
    """An `ERASEIndex` kept equal to a backend's committed state. Not thread-safe."""

    def __init__(
        self,
        index: ERASEIndex,
        backend: StorageBackend,
        log_key: bytes,
        check_text: Callable[[str], object],
    ) -> None:
        """Load the set's rows into `index`.

        Args:
            index: An empty index with the set's parameters.
            backend: The open backend (the set exists).
            log_key: Key of the HMAC of ids in the change log.
            check_text: Raises ValueError for a stored text the adapter above would not
                accept (the replica never parses content itself).

        Raises:
            StateFileError: The stored rows are damaged or do not match their digest.
        """
        self.index = index
        self.backend = backend
        self.position = 0
        self.repairs = 0
        self._log_key = log_key
        self._check_text = check_text
        self._keys: dict[str, str] = {}
        self._pid = os.getpid()
        self._dirty = False
        self._uncommitted = 0
        self.load()

    # ---------------------------------------------------------------- reading
    def key_of(self, example_id: str) -> str:
        """Args:
            example_id: An example id.

        Returns:
            Its keyed hash as logged in change records."""
        return id_key(self._log_key, example_id)

    def check_process(self) -> None:
        """Raise ForkedProcessError in a process forked after the store was opened."""
        if os.getpid() != self._pid:
            raise ForkedProcessError(
                f"{self.backend.describe()} was opened in process {self._pid}; a forked "
                "process must open its own store"
            )

    def load(self, txn: WriteTxn | None = None) -> None:
        """Refit the index from all stored rows and check the digest at the head.

        Args:
            txn: Read through this open write transaction instead of a snapshot.
        """
        for attempt in range(_LOAD_ATTEMPTS):
            if txn is None:
                rows, position, digest = self.backend.snapshot()
            else:
                rows = txn.rows_added_after(0)
                position, digest = txn.head()
            ids, texts, vectors = self._parse(rows, empty=True)
            header = self.backend.read_header()
            projection = None
            if header is not None and header.projection is not None and ids:
                projection = self._projection(header.projection, vectors.shape[1])
            try:
                self.index.load(ids, texts, vectors, projection)
            except ValueError as err:
                raise StateFileError(
                    f"{self.backend.describe()} has invalid contents: {err}"
                ) from None
            self._keys = {self.key_of(i): i for i in ids}
            self.position = position
            self._dirty = False
            if position == 0 or self.index.state_digest() == digest:
                return
            if txn is not None or attempt + 1 == _LOAD_ATTEMPTS:
                break  # a snapshot can race with the header only outside a transaction
        self.index.clear()
        self._keys = {}
        self._dirty = True
        raise StateFileError(
            f"{self.backend.describe()} failed its integrity check (state digest mismatch)"
        )

    def refresh(self) -> None:
        """Strong consistency: catch up if anything was committed since the last check."""
        self.check_process()
        if self._dirty:
            self.load()
        if self.backend.changed():
            self._dirty = True
            if self.backend.head()[0] != self.position:
                self.catch_up()
            self._dirty = False

    def catch_up(self, txn: WriteTxn | None = None) -> None:
        """Apply every change after `position` with the exact operations, then check the
        digest logged with the last one (refit from the rows on a mismatch).

        Args:
            txn: Read through this open write transaction (whose reads are current)
                instead of the backend.
        """
        source: StorageBackend | WriteTxn = self.backend if txn is None else txn
        changes, added = source.log_after(self.position)
        if not changes:
            return
        last_op: dict[str, str] = {c.id_key: c.op for c in changes}
        gone = sorted(
            {self._keys[c.id_key] for c in changes if c.op == "delete" and c.id_key in self._keys}
        )
        rows = [r for r in added if last_op.get(self.key_of(r.id)) == "add"]
        head = changes[-1]
        survivors = len(self.index) - len(gone) + len(rows)
        if len(gone) >= _BULK_DELETIONS and len(gone) * 8 >= survivors:
            self.load(txn)  # one fit of the result is cheaper than many exact deletions
            return
        try:
            for example_id in gone:
                self.index.delete(example_id)
                del self._keys[self.key_of(example_id)]
            if rows:
                ids, texts, vectors = self._parse(rows, empty=False)
                projection = None
                if self.index.dimension is None:
                    header = self.backend.read_header()
                    if header is not None and header.projection is not None:
                        projection = self._projection(header.projection, vectors.shape[1])
                self.index.add(ids, texts, vectors, projection)
                self._keys.update((self.key_of(i), i) for i in ids)
            consistent = self.index.state_digest() == head.digest_after
        except (ValueError, KeyError, StateFileError):
            consistent = False
        self.position = head.position
        if not consistent:
            self.repairs += 1
            logger.warning(
                "%s: state digest differs from the change log at position %d; refitting from "
                "the stored rows (check that every process uses the same log key)",
                self.backend.describe(),
                head.position,
            )
            self.load(txn)

    # ---------------------------------------------------------------- writing
    @contextmanager
    def write(self) -> Iterator[WriteTxn]:
        """One write transaction: caught up on entry; memory restored if it does not commit.

        Returns:
            A context manager yielding the transaction for `add` / `delete`.
        """
        self.check_process()
        start: int | None = None
        try:
            with self.backend.write() as txn:
                if self._dirty:
                    self.load(txn)
                self.catch_up(txn)
                start = self.index.revision
                self._uncommitted = self.position
                yield txn
            self.position = self._uncommitted
        except BaseException:
            self._uncommitted = self.position
            if start is not None and self.index.revision != start:
                self._dirty = True  # memory holds a change the store rolled back
                self.load()
            raise

    def add(
        self,
        txn: WriteTxn,
        ids: Sequence[str],
        texts: Sequence[str],
        vectors: npt.NDArray[np.float32],
        fingerprint: Callable[[], dict[str, Any]] | None,
    ) -> Addition:
        """Add rows to the index exactly and write them with their change records.

        Args:
            txn: The open transaction (the index is caught up: see `write`).
            ids: New ids.
            texts: Their canonical JSON texts.
            vectors: Their float32 (n, D) unit rows.
            fingerprint: Returns the embedding-model fingerprint, recorded with the
                first add to an empty set (called only then).

        Returns:
            What the add did, with the log position of each id.
        """
        first = self.index.dimension is None
        done = apply_add(self.index, ids, texts, vectors)
        matrix = self.index.projection_matrix
        if first and matrix is not None:
            txn.set_static(
                vectors.shape[1],
                matrix.astype("<f8").tobytes(),
                None if fingerprint is None else fingerprint(),
            )
        digest = self.index.state_digest()
        changes = self._records("add", done.ids, done.outcomes, [digest] * len(ids), done.seconds)
        rows = [
            ExampleRow(i, t, v.astype("<f4").tobytes())
            for i, t, v in zip(done.ids, texts, vectors, strict=True)
        ]
        txn.insert(rows, changes)
        self._keys.update((self.key_of(i), i) for i in done.ids)
        return dataclasses.replace(done, positions=[c.position for c in changes])

    def delete(self, txn: WriteTxn, ids: Sequence[str]) -> list[Deletion]:
        """Delete ids from the index exactly and write their change records.

        Args:
            txn: The open transaction (the index is caught up: see `write`).
            ids: Present ids, each at most once.

        Returns:
            One record per id, in order, with its log position.
        """
        done = apply_delete(self.index, ids)
        changes = self._records(
            "delete",
            [d.example_id for d in done],
            [d.outcome for d in done],
            [d.digest_after for d in done],
            sum(d.seconds for d in done),
        )
        txn.delete([d.example_id for d in done], changes)
        if len(self.index) == 0:
            txn.clear_static()
        for example_id in ids:
            self._keys.pop(self.key_of(example_id), None)
        return [
            dataclasses.replace(d, position=c.position) for d, c in zip(done, changes, strict=True)
        ]

    def _records(
        self,
        op: str,
        ids: Sequence[str],
        outcomes: Sequence[ChangeOutcome],
        digests: Sequence[str],
        seconds: float,
    ) -> list[ChangeRecord]:
        now = time.time()
        start = self._uncommitted
        self._uncommitted += len(ids)
        return [
            ChangeRecord(
                position=start + n + 1,
                op="add" if op == "add" else "delete",
                id_key=self.key_of(example_id),
                digest_after=digest,
                time=now,
                refit=outcome.refit,
                reason=outcome.reason.value,
                iteration=outcome.iteration,
                seconds=seconds,
            )
            for n, (example_id, outcome, digest) in enumerate(
                zip(ids, outcomes, digests, strict=True)
            )
        ]

    # --------------------------------------------------------------- parsing
    def _parse(
        self, rows: Sequence[ExampleRow], *, empty: bool
    ) -> tuple[list[str], list[str], npt.NDArray[np.float32]]:
        """Rows as (ids, texts, float32 (n, D) vectors), or StateFileError if malformed."""
        dimension = None if empty else self.index.dimension
        try:
            for row in rows:
                self._check_text(row.example)
                if len(row.vector) % 4 or not row.vector:
                    raise ValueError("a stored vector has a wrong length")
            lengths = {len(row.vector) for row in rows}
            if len(lengths) > 1 or (dimension is not None and lengths != {4 * dimension} and rows):
                raise ValueError("stored vectors disagree in dimension")
            width = lengths.pop() // 4 if lengths else 0
            vectors = np.frombuffer(b"".join(r.vector for r in rows), dtype="<f4")
            vectors = vectors.reshape(len(rows), width).astype(np.float32)
            if not np.isfinite(vectors).all():
                raise ValueError("a stored vector is not finite")
        except ValueError as err:
            raise StateFileError(f"{self.backend.describe()} has invalid contents: {err}") from None
        return [r.id for r in rows], [r.example for r in rows], vectors

    def _projection(self, raw: bytes, dimension: int) -> npt.NDArray[np.float64]:
        try:
            flat = np.frombuffer(raw, dtype="<f8")
            return flat.reshape(dimension, -1).astype(np.float64)
        except ValueError as err:
            raise StateFileError(
                f"{self.backend.describe()} has an invalid projection: {err}"
            ) from None

"""The change log's rules, one implementation for every backend.

Every backend stores change records with a hash chain (``chain = sha256(previous chain,
record fields)``, the set's row keeping the chain at the head) and checks the same things:
positions continue the head without gaps, records have a known operation and reason, and the
chain from the caller's position to the head is intact. A damaged or edited log is refused
with StateFileError on every backend.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from langchain_erase.errors import InvalidParameterError, StateFileError
from langchain_erase.storage.base import ChangeRecord

__all__ = ["CHANGE_COLUMNS", "chain_hash", "chained_rows", "check_continues", "verified_changes"]

#: The record columns every dialect stores (then ``chain``), in this order.
CHANGE_COLUMNS = "position, op, id_key, digest_after, time, refit, reason, iteration, seconds"
_OPS = ("add", "delete")
_REASONS = ("none", "init_seed", "center_moved", "stop_rule")


def chain_hash(previous: str, record: ChangeRecord) -> str:
    """Args:
        previous: Chain value of the record before (``""`` before the first).
        record: The record.

    Returns:
        Hex SHA-256 of the previous chain value and the record's fields."""
    fields = [
        record.position,
        record.op,
        record.id_key,
        record.digest_after,
        record.time,
        record.refit,
        record.reason,
        record.iteration,
        record.seconds,
    ]
    return hashlib.sha256((previous + json.dumps(fields)).encode()).hexdigest()


def check_continues(head: int, changes: Sequence[ChangeRecord], count: int) -> None:
    """Refuse records that do not continue the log head.

    Args:
        head: Position of the head inside the write transaction.
        changes: The records to append.
        count: How many rows (ids) they describe.

    Raises:
        InvalidParameterError: Not one record per row, or a gap or repeat in positions.
    """
    if len(changes) != count:
        raise InvalidParameterError("one change record per row is required")
    for offset, change in enumerate(changes, start=1):
        if change.position != head + offset:
            raise InvalidParameterError(
                f"change positions must continue the log head {head} without gaps"
            )


def chained_rows(
    name: str, previous: str, changes: Sequence[ChangeRecord]
) -> tuple[list[tuple[Any, ...]], str]:
    """Rows to insert for `changes`: (set name, record columns..., chain).

    Args:
        name: The example set.
        previous: Chain value at the head before these records.
        changes: The records.

    Returns:
        The rows and the chain value after the last record.
    """
    rows = []
    chain = previous
    for c in changes:
        chain = chain_hash(chain, c)
        rows.append(
            (
                name,
                c.position,
                c.op,
                c.id_key,
                c.digest_after,
                c.time,
                c.refit,
                c.reason,
                c.iteration,
                c.seconds,
                chain,
            )
        )
    return rows, chain


def verified_changes(
    where: str,
    position: int,
    raw: Sequence[Sequence[Any]],
    head: tuple[Any, Any] | None,
) -> list[ChangeRecord]:
    """Parse and verify the records after `position`.

    Args:
        where: The store, for messages.
        position: Last position the caller has applied.
        raw: Stored rows (record columns, then chain) with position >= `position`, oldest
            first.
        head: (head position, head chain) of the set, read in the same snapshot.

    Returns:
        The records after `position`.

    Raises:
        StateFileError: A record is missing, malformed or edited, or the head does not end
            the chain.
    """
    rows = list(raw)
    chain = ""
    if rows and rows[0][0] == position:
        chain = str(rows[0][-1])
        rows = rows[1:]
    elif position != 0:
        raise StateFileError(f"{where}: change log damaged (position {position} missing)")
    records: list[ChangeRecord] = []
    expected = position
    try:
        for row in rows:
            expected += 1
            *fields, stored_chain = row
            if fields[1] not in _OPS or fields[6] not in _REASONS:
                raise ValueError("unknown operation or reason")
            record = ChangeRecord(
                position=int(fields[0]),
                op=fields[1],
                id_key=str(fields[2]),
                digest_after=str(fields[3]),
                time=float(fields[4]),
                refit=bool(fields[5]),
                reason=str(fields[6]),
                iteration=None if fields[7] is None else int(fields[7]),
                seconds=float(fields[8]),
            )
            chain = chain_hash(chain, record)
            if record.position != expected or chain != stored_chain:
                raise ValueError(f"record {expected} fails the hash chain")
            records.append(record)
        if head is None or int(head[0]) != expected or head[1] != chain:
            raise ValueError("the head does not match the last record")
    except (TypeError, ValueError) as err:
        raise StateFileError(f"{where}: change log damaged ({err})") from None
    return records

"""Replication: keeping in-memory ERASE state equal to a store's committed rows and log.

Sits between the pure core (below) and the LangChain adapters (above); imports only
`core`, `storage` and `errors`. `Session` (`MemorySession` / `StoreSession`) is the one
write path of an example set's index; a store session follows the change log through a
`Replica` and, for eventual consistency, a `Follower` thread. See `replication.session`
for the session API.
"""

from langchain_erase.replication.changes import Addition, Deletion
from langchain_erase.replication.follower import FOLLOW_INTERVAL_S, Follower
from langchain_erase.replication.replica import Replica, logger
from langchain_erase.replication.session import (
    Consistency,
    ErasureStatus,
    MemorySession,
    Session,
    StoreSession,
    Writer,
)

__all__ = [
    "FOLLOW_INTERVAL_S",
    "Addition",
    "Consistency",
    "Deletion",
    "ErasureStatus",
    "Follower",
    "MemorySession",
    "Replica",
    "Session",
    "StoreSession",
    "Writer",
    "logger",
]

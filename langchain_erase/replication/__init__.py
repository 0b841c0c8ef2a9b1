"""Replication: keeping in-memory ERASE state equal to a store's committed rows and log.

Sits between the pure core (below) and the LangChain adapters (above); imports only
`core`, `storage` and `errors`. `Replica` follows the change log and writes changes
through a backend's write transaction.
"""

from langchain_erase.replication.replica import Replica, logger

__all__ = ["Replica", "logger"]

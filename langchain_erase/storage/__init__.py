"""Storage backends of an example set: rows and change records in, rows and records out.

`open_backend` is the one dispatch point: a file path opens the SQLite backend
(`storage.sqlite`), a ``postgresql://`` URL the PostgreSQL backend (`storage.postgres`,
imported only for such URLs, so psycopg stays optional). It also resolves the log key that
keys the HMAC of ids in the change log (see `resolve_log_key`). The records and the backend
protocol every backend shares are in `storage.base`.
"""

from __future__ import annotations

import os

from langchain_erase.errors import InvalidParameterError
from langchain_erase.storage.base import StorageBackend

__all__ = ["LOG_KEY_ENV", "is_postgres_url", "open_backend"]

#: Environment variable holding the change-log key (any non-empty string).
LOG_KEY_ENV = "LANGCHAIN_ERASE_LOG_KEY"


def is_postgres_url(target: str | os.PathLike[str]) -> bool:
    """Args:
        target: A file path or a URL.

    Returns:
        True for ``postgresql://`` and ``postgres://`` URLs."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def open_backend(
    target: str | os.PathLike[str], name: str, log_key: bytes | None = None
) -> tuple[StorageBackend, bytes]:
    """Open the backend named by `target` and resolve its log key.

    Args:
        target: A SQLite file path, or a ``postgresql://`` URL.
        name: The example set inside that database.
        log_key: Explicit change-log key; else the LANGCHAIN_ERASE_LOG_KEY environment
            variable; else (SQLite only) the key file ``<database>.key`` beside the database.

    Returns:
        The open backend and the log key every process of this store must share.
    """
    key = log_key if log_key is not None else _env_key()
    if is_postgres_url(target):
        if key is None:
            raise InvalidParameterError(
                f"a PostgreSQL store needs a log key: pass log_key= or set {LOG_KEY_ENV}"
            )
        from langchain_erase.storage.postgres import open_postgres_backend

        return open_postgres_backend(str(target), name, key), key
    from langchain_erase.storage.sqlite import open_sqlite_backend

    return open_sqlite_backend(target, name, key)


def _env_key() -> bytes | None:
    value = os.environ.get(LOG_KEY_ENV)
    return value.encode("utf-8") if value else None

"""Connecting to PostgreSQL: fast, typed failures that name the server and never the password.

`probe` opens one direct connection with a short timeout before any pool is used: a refused
connection, an unknown host, database or role, or a wrong password fail within
`CONNECT_TIMEOUT_S` with a StoreUnavailableError naming host, port, database and role and
the server's own reason (a connection pool would retry in the background and report only
that it timed out).
"""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict

from langchain_erase.errors import StoreUnavailableError

__all__ = ["CONNECT_TIMEOUT_S", "describe_url", "first_line", "probe", "target", "unavailable"]

#: Seconds a connection attempt may take (libpq's connect_timeout; 2 is its minimum).
CONNECT_TIMEOUT_S = 2


def first_line(exc: BaseException) -> str:
    """Args:
        exc: An exception.

    Returns:
        The first line of its message (or its type's name)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def target(url: str) -> str:
    """Args:
        url: A PostgreSQL URL (possibly with a password).

    Returns:
        ``host H port P database D role R`` (libpq defaults where the URL is silent),
        never the password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unparsable PostgreSQL URL"
    return (
        f"host {info.get('host') or '(default)'} port {info.get('port') or 5432} "
        f"database {info.get('dbname') or '(default)'} role {info.get('user') or '(default)'}"
    )


def describe_url(url: str, name: str) -> str:
    """Args:
        url: A PostgreSQL URL (possibly with a password).
        name: The example set.

    Returns:
        ``postgresql://user@host:port/db (set 'name')``: never the password or other options."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return f"PostgreSQL store (set {name!r})"
    where = f"{info.get('user', '')}@{info.get('host', '')}"
    if info.get("port"):
        where += f":{info['port']}"
    return f"postgresql://{where}/{info.get('dbname', '')} (set {name!r})"


def unavailable(exc: BaseException, what: str) -> StoreUnavailableError:
    """Args:
        exc: The driver's error.
        what: The call that failed.

    Returns:
        The typed error, with the driver's first line (never a password: libpq does not
        quote it)."""
    return StoreUnavailableError(f"PostgreSQL store unavailable during {what}: {first_line(exc)}")


def probe(url: str) -> None:
    """Open and close one direct connection.

    Args:
        url: The store's URL.

    Raises:
        StoreUnavailableError: Within about CONNECT_TIMEOUT_S, naming the target and the
            server's reason.
    """
    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg.Error as exc:
        reason = first_line(exc)
        for prefix in ("connection is bad: ", "connection failed: "):
            reason = reason.removeprefix(prefix)
        raise StoreUnavailableError(
            f"cannot connect to PostgreSQL ({target(url)}): {reason}"
        ) from None

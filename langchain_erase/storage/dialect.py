"""SQL text of the steps every backend shares, written once and rendered per dialect.

The backends differ in placeholders (``?`` for SQLite, ``%s`` for psycopg), in table names
and in the name of the set column of the change log; the statements are otherwise the same,
so `Dialect.of` renders them from those four names rather than each backend spelling them.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_erase.storage.log import CHANGE_COLUMNS

__all__ = ["Dialect"]

#: Columns of one change-log row as `log.chained_rows` returns it: set, record fields, chain.
_CHANGE_ROW_WIDTH = 2 + len(CHANGE_COLUMNS.split(","))


@dataclass(frozen=True)
class Dialect:
    """The shared statements in one backend's SQL.

    Parameters of each statement, in order:

    - `changes_after`: set name, position (rows: record columns then chain, by position).
    - `insert_change`: one row of `log.chained_rows`.
    - `write_head`: head position, head digest, head chain, set name.
    - `set_static`: dimension, projection, fingerprint JSON or NULL (keeps the old one),
      set name.
    - `clear_static`: set name.
    """

    changes_after: str
    insert_change: str
    write_head: str
    set_static: str
    clear_static: str

    @classmethod
    def of(cls, placeholder: str, sets: str, changes: str, change_set_column: str) -> Dialect:
        """Render the statements.

        Args:
            placeholder: The driver's parameter marker (``?`` or ``%s``).
            sets: The table of sets (one row per set, keyed by ``name``).
            changes: The change-log table.
            change_set_column: The column of `changes` naming the set.

        Returns:
            The dialect.
        """
        p = placeholder
        return cls(
            changes_after=(
                f"SELECT {CHANGE_COLUMNS}, chain FROM {changes} "
                f"WHERE {change_set_column} = {p} AND position >= {p} ORDER BY position"
            ),
            insert_change=(
                f"INSERT INTO {changes} ({change_set_column}, {CHANGE_COLUMNS}, chain) "
                f"VALUES ({', '.join([p] * _CHANGE_ROW_WIDTH)})"
            ),
            write_head=(
                f"UPDATE {sets} SET head_position = {p}, head_digest = {p}, head_chain = {p} "
                f"WHERE name = {p}"
            ),
            set_static=(
                f"UPDATE {sets} SET dimension = {p}, projection = {p}, "
                f"fingerprint = COALESCE({p}, fingerprint) WHERE name = {p}"
            ),
            clear_static=(
                f"UPDATE {sets} SET dimension = NULL, projection = NULL, fingerprint = NULL "
                f"WHERE name = {p}"
            ),
        )

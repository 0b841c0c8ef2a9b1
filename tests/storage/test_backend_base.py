"""The shared base of the backends: one read protocol, one chained write transaction, and
the dialect hooks each backend must supply (a backend missing one cannot be created)."""

from __future__ import annotations

import numpy as np
import pytest

from langchain_erase.storage.backend import BackendBase
from langchain_erase.storage.base import ExampleRow, StorageBackend
from langchain_erase.storage.dialect import Dialect
from langchain_erase.storage.pg_rows import PG_DIALECT
from langchain_erase.storage.sqlite import SQLITE_DIALECT
from langchain_erase.storage.txn import ChainedWriteTxn

from .stores import records


def test_the_base_declares_exactly_the_dialect_hooks_and_the_rest_of_the_contract() -> None:
    assert BackendBase.__abstractmethods__ == {
        "_read_in",
        "_head_in",
        "_rows_added_in",
        "describe",
        "read_header",
        "create",
        "changed",
        "write",
        "erasure_status",
        "complete_erasure",
        "close",
    }
    assert ChainedWriteTxn.__abstractmethods__ == {
        "rows_added_after",
        "_insert_rows",
        "_delete_rows",
        "_execute_many",
    }


def test_a_backend_missing_a_hook_cannot_be_created() -> None:
    class NoRowReads(BackendBase):  # every hook but `_rows_added_in`
        dialect = SQLITE_DIALECT
        _read_in = _head_in = describe = read_header = create = changed = write = None  # type: ignore[assignment]
        erasure_status = complete_erasure = close = None  # type: ignore[assignment]

    with pytest.raises(TypeError, match="_rows_added_in"):
        NoRowReads()  # type: ignore[abstract]

    class NoDeletes(ChainedWriteTxn):
        rows_added_after = _insert_rows = _execute_many = None  # type: ignore[assignment]

    with pytest.raises(TypeError, match="_delete_rows"):
        NoDeletes(None, "set", "store", SQLITE_DIALECT, (0, "", ""))  # type: ignore[abstract]


@pytest.mark.parametrize(
    ("dialect", "marker"), [(SQLITE_DIALECT, "?"), (PG_DIALECT, "%s")], ids=["sqlite", "pg"]
)
def test_each_dialect_renders_the_shared_statements(dialect: Dialect, marker: str) -> None:
    # set name + 9 record fields + chain; the other statements as their docstring says
    assert dialect.insert_change.count(marker) == 11
    assert dialect.changes_after.count(marker) == 2
    assert dialect.write_head.count(marker) == 4
    assert dialect.set_static.count(marker) == 4
    assert dialect.clear_static.count(marker) == 1
    other = "%s" if marker == "?" else "?"
    assert not any(other in text for text in vars(dialect).values())


def test_every_backend_is_built_on_the_base(backend: StorageBackend) -> None:
    assert isinstance(backend, BackendBase)
    with backend.write() as txn:
        assert isinstance(txn, ChainedWriteTxn)


def test_a_write_reads_its_own_records_before_commit_and_others_only_after(
    backend: StorageBackend,
) -> None:
    vector = np.ones(4, dtype="<f4").tobytes()
    rows = [ExampleRow(i, f'{{"input":"{i}"}}', vector) for i in ("a", "b")]
    with backend.write() as txn:
        changes = records(txn.head()[0], "add", ["a", "b"])
        txn.insert(rows, changes)
        assert txn.head() == (2, changes[-1].digest_after)
        assert txn.changes_after(0) == changes  # verified against the chain it holds
        assert txn.log_after(1) == (changes[1:], rows[1:])
    assert backend.head() == (2, changes[-1].digest_after)
    assert backend.changes_after(0) == changes

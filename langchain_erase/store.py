"""Durable selector state in one SQLite file, with real erasure of deleted examples.

The store holds the parameters, every example (canonical JSON), its stored float32 vector,
the projection matrix, the current state digest and a deletion log (a hash of the id and the
receipt, never the deleted content). Each add or delete batch is one transaction written in
the same critical section as the in-memory change, so a crash leaves the state before or
after the change, never a mix. Reopening refits from the stored vectors and refuses the file
unless the refit's digest equals the recorded one: a corrupted, truncated, foreign or
future-version file can never become a wrong selector.

Erasure: `secure_delete` zeroes deleted rows in place, and every commit is followed by a
`wal_checkpoint(TRUNCATE)`, so once a deletion returns neither the database nor its WAL
holds the example's text or vector bytes. The file is opened in SQLite's exclusive locking
mode: one process at a time (no `-shm` file exists; a second opener gets StoreLockedError).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from langchain_erase.errors import InvalidParameterError, StateFileError, StoreLockedError
from langchain_erase.inputs import Example, canonical_json, validate_example

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from langchain_erase.example_selectors import ERASEExampleSelector
    from langchain_erase.receipts import DeletionReceipt

__all__ = [
    "APPLICATION_ID",
    "STORE_FORMAT",
    "STORE_VERSION",
    "SelectorStore",
    "StoredRows",
    "id_digest",
    "open_selector",
]

STORE_FORMAT = "langchain-erase-store"
STORE_VERSION = 1
#: SQLite header field that marks our files ("ERAS"), so foreign databases are refused
#: before anything is written to them.
APPLICATION_ID = 0x45524153
_SQLITE_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE examples (id TEXT PRIMARY KEY, example TEXT NOT NULL, vector BLOB NOT NULL)",
    "CREATE TABLE deletions (seq INTEGER PRIMARY KEY AUTOINCREMENT, id_sha256 TEXT NOT NULL, "
    "time REAL NOT NULL, refit INTEGER NOT NULL, reason TEXT NOT NULL, iteration INTEGER, "
    "seconds REAL NOT NULL, digest_before TEXT NOT NULL, digest_after TEXT NOT NULL)",
)


def id_digest(example_id: str) -> str:
    """What the deletion log keeps of an id: user-chosen ids may themselves be personal."""
    return hashlib.sha256(example_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredRows:
    """Everything needed to rebuild a selector without the embedding model."""

    ids: list[str]
    examples: list[Example]
    vectors: npt.NDArray[np.float32]
    projection: npt.NDArray[np.float64] | None
    digest: str


class SelectorStore:
    """One open SQLite store. Not thread-safe by itself: the selector's lock serializes it."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = conn

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path) -> SelectorStore:
        """Open (or create) and lock the store; StateFileError if it is not ours."""
        path = Path(path)
        try:
            conn = sqlite3.connect(path, timeout=0.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as err:
            raise StateFileError(f"cannot open store {path}: {err}") from None
        try:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")  # takes the lock; exclusive mode keeps it
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            conn.execute("COMMIT")
            if app_id != APPLICATION_ID and (app_id != 0 or tables != 0):
                raise StateFileError(f"{path} is not a langchain-erase store")
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON"):
                conn.execute(f"PRAGMA {pragma}")
            store = cls(path, conn)
            store._checkpoint()  # a crash may have left committed frames in the WAL
        except sqlite3.OperationalError as err:
            conn.close()
            if getattr(err, "sqlite_errorcode", None) in _SQLITE_BUSY_CODES:
                raise StoreLockedError(
                    f"{path} is open in another process or connection (one opener at a time)"
                ) from None
            raise StateFileError(f"{path} is corrupted or not a store: {err}") from None
        except sqlite3.DatabaseError as err:
            conn.close()
            raise StateFileError(f"{path} is corrupted or not a store: {err}") from None
        except BaseException:
            conn.close()
            raise
        return store

    def params(self) -> dict[str, Any] | None:
        """Stored selector parameters, or None for a new store."""
        meta = self._meta()
        if not meta:
            return None
        if meta.get("format") != STORE_FORMAT.encode():
            raise StateFileError(f"{self.path} is not a langchain-erase store")
        if meta.get("version") != str(STORE_VERSION).encode():
            raise StateFileError(
                f"{self.path} has store version {meta.get('version')!r}; this "
                f"langchain-erase reads version {STORE_VERSION}"
            )
        try:
            params = json.loads(meta["params"])
        except (KeyError, ValueError) as err:
            raise StateFileError(f"{self.path} has invalid parameters: {err}") from None
        if not isinstance(params, dict):
            raise StateFileError(f"{self.path} has invalid parameters")
        return params

    def initialize(self, params: Mapping[str, Any], digest: str) -> None:
        """Create the schema of a new store in one transaction."""
        with self.transaction():
            conn = self._connection()
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={STORE_VERSION}")
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("format", STORE_FORMAT.encode()),
                    ("version", str(STORE_VERSION).encode()),
                    ("params", json.dumps(dict(params), sort_keys=True).encode()),
                    ("digest", digest.encode()),
                ],
            )

    def rows(self) -> StoredRows:
        """Read every example; StateFileError if any row is malformed."""
        meta = self._meta()
        try:
            dimension = int(meta["dimension"]) if "dimension" in meta else 0
            projection = None
            if "projection" in meta:
                flat = np.frombuffer(meta["projection"], dtype="<f8")
                projection = flat.reshape(dimension, -1).astype(np.float64)
            ids: list[str] = []
            examples: list[Example] = []
            vectors = []
            for example_id, text, blob in self._connection().execute(
                "SELECT id, example, vector FROM examples ORDER BY id"
            ):
                example = validate_example(json.loads(text), ())
                if len(blob) != 4 * dimension:
                    raise ValueError(f"vector of {example_id!r} has the wrong length")
                ids.append(str(example_id))
                examples.append(example)
                vectors.append(np.frombuffer(blob, dtype="<f4"))
            digest = meta["digest"].decode("ascii")
        except sqlite3.DatabaseError as err:
            raise StateFileError(f"{self.path} is corrupted: {err}") from None
        except (KeyError, ValueError, TypeError, UnicodeDecodeError) as err:
            raise StateFileError(f"{self.path} has invalid contents: {err}") from None
        matrix = (
            np.stack(vectors).astype(np.float32)
            if vectors
            else np.zeros((0, dimension), dtype=np.float32)
        )
        return StoredRows(ids, examples, matrix, projection, digest)

    def deletion_log(self) -> list[dict[str, Any]]:
        """The audit log: one dict per deletion (id hash, time, receipt fields), oldest first."""
        cursor = self._connection().execute("SELECT * FROM deletions ORDER BY seq")
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    # ------------------------------------------------------------------ writing
    @property
    def in_transaction(self) -> bool:
        """True inside `transaction()`; StateFileError once closed, before any change."""
        return self._connection().in_transaction

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic, durable write: committed (and checkpointed) on success, else rolled back."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._checkpoint()
        except sqlite3.Error as err:
            raise StateFileError(f"could not write the store {self.path}: {err}") from err

    def add(
        self,
        ids: Sequence[str],
        examples: Sequence[Mapping[str, Any]],
        vectors: npt.NDArray[np.float32],
        projection: npt.NDArray[np.float64],
    ) -> None:
        """Insert examples; the first insert also records the dimension and projection."""
        conn = self._connection()
        conn.executemany(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
            [
                ("dimension", str(vectors.shape[1]).encode()),
                ("projection", projection.astype("<f8").tobytes()),
            ],
        )
        conn.executemany(
            "INSERT INTO examples (id, example, vector) VALUES (?, ?, ?)",
            [
                (example_id, canonical_json(example), vector.astype("<f4").tobytes())
                for example_id, example, vector in zip(ids, examples, vectors, strict=True)
            ],
        )

    def delete(self, receipt: DeletionReceipt, *, now_empty: bool) -> None:
        """Delete one example and log its receipt; an emptied store forgets its dimension."""
        conn = self._connection()
        conn.execute("DELETE FROM examples WHERE id = ?", (receipt.example_id,))
        if now_empty:
            conn.execute("DELETE FROM meta WHERE key IN ('dimension', 'projection')")
        conn.execute(
            "INSERT INTO deletions (id_sha256, time, refit, reason, iteration, seconds, "
            "digest_before, digest_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                id_digest(receipt.example_id),
                time.time(),
                int(receipt.refit),
                receipt.reason,
                receipt.iteration,
                receipt.seconds,
                receipt.digest_before,
                receipt.digest_after,
            ),
        )

    def set_digest(self, digest: str) -> None:
        self._connection().execute(
            "UPDATE meta SET value = ? WHERE key = 'digest'", (digest.encode(),)
        )

    def close(self) -> None:
        """Release the lock; later writes raise StateFileError."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ---------------------------------------------------------------- internals
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StateFileError(f"store {self.path} is closed")
        return self._conn

    def _meta(self) -> dict[str, bytes]:
        conn = self._connection()
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            return {}
        try:
            return {str(k): bytes(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        except (sqlite3.DatabaseError, TypeError) as err:
            raise StateFileError(f"{self.path} is corrupted or not a store: {err}") from None

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it, so no old page image survives."""
        busy, _, _ = self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise StateFileError(f"could not checkpoint {self.path}: the WAL is in use")


def open_selector(path: str | Path, embeddings: Embeddings, **kwargs: Any) -> ERASEExampleSelector:
    """Create or reopen the store at `path` as a selector whose every change is durable.

    On reopen, parameters given in `kwargs` must equal the stored ones (omitted ones are
    taken from the store); the state is refitted from the stored vectors and checked
    against the recorded digest.
    """
    from langchain_erase.example_selectors import ERASEExampleSelector
    from langchain_erase.persistence import selector_params

    path = Path(path)
    created = not path.exists()
    store = SelectorStore.open(path)
    try:
        stored = store.params()
        if stored is None:
            selector = ERASEExampleSelector(embeddings, **kwargs)
            store.initialize(selector_params(selector), selector.state_digest())
        else:
            try:
                ERASEExampleSelector(embeddings, **stored)
            except (InvalidParameterError, TypeError) as err:
                raise StateFileError(f"{store.path} has invalid parameters: {err}") from None
            selector = ERASEExampleSelector(embeddings, **{**stored, **kwargs})
            given = selector_params(selector)
            if given != stored:
                differ = sorted(key for key in stored if given.get(key) != stored[key])
                raise InvalidParameterError(
                    f"{store.path} was created with other parameters: "
                    + ", ".join(f"{key}={stored[key]!r} (given {given[key]!r})" for key in differ)
                )
        selector._store = store
        selector._restore_from(store)
    except BaseException:
        store.close()
        if created:  # a refused new store leaves no file behind
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        raise
    return selector

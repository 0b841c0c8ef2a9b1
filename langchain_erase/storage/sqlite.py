"""SQLite backend: many example sets in one file, shared by any number of processes on a host.

The file is in WAL mode with a busy timeout, so readers never block and writers queue. Every
write is one `BEGIN IMMEDIATE` transaction (SQLite's write lock); nothing relies on POSIX
locks outliving a foreign `open()`/`close()` of the file (a `shutil.copy` of the database
drops them), because every writer catches up from the change log inside its transaction.

Erasure: `secure_delete` zeroes deleted rows in place; `cache_spill=OFF` keeps a write's pages
in memory until COMMIT, and every commit is followed by a `wal_checkpoint(TRUNCATE)`, so the
WAL is empty between writes. After a deletion (or a write refused during COMMIT, e.g. on a
full disk) the checkpoint is retried for up to `ERASURE_BOUND_S` seconds while other processes
read; if it cannot complete, `erasure_pending()` is True and the next write retries it.

Integrity: each change record carries `chain = sha256(previous chain, record fields)`, and the
set's row keeps the chain at the head, so a damaged or edited log is refused (StateFileError).

Fork safety: a backend opened in one process refuses every call in a forked child
(ForkedProcessError); the child must open its own.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from langchain_erase.errors import (
    DuplicateExampleError,
    ERASEError,
    ForkedProcessError,
    InvalidParameterError,
    StateFileError,
    StoreLockedError,
    StoreUnavailableError,
)
from langchain_erase.storage.backend import BackendBase
from langchain_erase.storage.base import ChangeRecord, ErasureStatus, ExampleRow, StoreHeader
from langchain_erase.storage.dialect import Dialect
from langchain_erase.storage.txn import ChainedWriteTxn

__all__ = [
    "APPLICATION_ID",
    "BUSY_TIMEOUT_S",
    "ERASURE_BOUND_S",
    "STORE_FORMAT",
    "STORE_VERSION",
    "SqliteBackend",
    "check_store_path",
    "open_sqlite_backend",
]

T = TypeVar("T")

STORE_FORMAT = "langchain-erase-store"
STORE_VERSION = 2
#: SQLite header field that marks our files ("ERAS"): foreign databases are refused before
#: anything is written to them.
APPLICATION_ID = 0x45524153
#: How long a writer waits for another process's write transaction.
BUSY_TIMEOUT_S = 30.0
#: SQLITE_BUSY, SQLITE_LOCKED: another connection holds the file.
_BUSY_CODES = (5, 6)
#: How long the erasure checkpoint is retried after a deletion while others read.
ERASURE_BOUND_S = 2.0
_CHECKPOINT_RETRY_S = 0.005
_KEY_BYTES = 32
#: Longest name SQLite and the key file derive from the database's name.
_LONGEST_SUFFIX = "-journal"

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE sets (name TEXT PRIMARY KEY, params TEXT NOT NULL, dimension INTEGER, "
    "projection BLOB, fingerprint TEXT, head_position INTEGER NOT NULL, "
    "head_digest TEXT NOT NULL, head_chain TEXT NOT NULL)",
    "CREATE TABLE examples (set_name TEXT NOT NULL, id TEXT NOT NULL, example TEXT NOT NULL, "
    "vector BLOB NOT NULL, added_at INTEGER NOT NULL, PRIMARY KEY (set_name, id))",
    "CREATE INDEX examples_added_at ON examples (set_name, added_at)",
    "CREATE TABLE changes (set_name TEXT NOT NULL, position INTEGER NOT NULL, "
    "op TEXT NOT NULL, id_key TEXT NOT NULL, digest_after TEXT NOT NULL, time REAL NOT NULL, "
    "refit INTEGER NOT NULL, reason TEXT NOT NULL, iteration INTEGER, seconds REAL NOT NULL, "
    "chain TEXT NOT NULL, PRIMARY KEY (set_name, position)) WITHOUT ROWID",
)
_SQLITE_UNAVAILABLE = {
    "SQLITE_READONLY": "the file or its directory is read-only or immutable",
    "SQLITE_CANTOPEN": "the file cannot be opened (permissions or a missing directory)",
    "SQLITE_FULL": "the disk is full",
    "SQLITE_IOERR": "an I/O error (full disk, read-only or failing device)",
}
_OS_ERRNOS = {
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "the file is read-only for this user (permission denied)",
    errno.EPERM: "the file is read-only or immutable (operation not permitted)",
    errno.ENOSPC: "the disk is full",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.ENOENT: "the directory does not exist",
    errno.ENOTDIR: "a parent of the path is not a directory",
    errno.EISDIR: "the path is a directory",
}


def check_store_path(target: object) -> Path:
    """Accept real file paths only.

    Args:
        target: What the user passed as the store.

    Returns:
        The path.

    Raises:
        InvalidParameterError: For ":memory:", an empty name, a "file:" URI, a name with a
            query string, or anything that is not a str or os.PathLike.
    """
    if not isinstance(target, (str, os.PathLike)):
        raise InvalidParameterError(f"a store is a file path, got {type(target).__name__}")
    text = os.fspath(target)
    if not isinstance(text, str):
        raise InvalidParameterError("a store path must be text, not bytes")
    if text in ("", ":memory:") or text.startswith("file:") or "?" in text or "\0" in text:
        raise InvalidParameterError(
            "a store must be a real file path (no ':memory:', 'file:' URIs or query strings)"
        )
    return Path(text)


def _os_reason(err: BaseException) -> str | None:
    code = getattr(err, "errno", None)
    return _OS_ERRNOS.get(code) if isinstance(code, int) else None


def _create_private(path: Path) -> bool:
    """Create an empty `path` with mode 0600 (False if it already exists)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    return True


def _read_or_create_key(db_path: Path) -> bytes:
    """The key file `<database>.key` beside the database (mode 0600, created on first use)."""
    key_path = Path(f"{db_path}.key")
    if not key_path.exists():
        # Written whole under a temporary name, then linked into place (atomic, and refused if
        # another process linked its key first): no process ever reads a half-written key.
        fd, tmp = tempfile.mkstemp(dir=key_path.parent, prefix=f".{key_path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:  # mkstemp creates it 0600
                handle.write(os.urandom(_KEY_BYTES).hex().encode())
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, key_path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    key = key_path.read_bytes().strip()
    if len(key) != 2 * _KEY_BYTES:
        raise StateFileError(f"{key_path} is not a langchain-erase log key file")
    return key


#: The shared statements in SQLite's SQL.
SQLITE_DIALECT = Dialect.of("?", "sets", "changes", "set_name")


class _Txn(ChainedWriteTxn):
    """The `WriteTxn` of one SQLite write transaction (plain rows; `secure_delete` and the
    checkpoint after COMMIT erase)."""

    def __init__(self, backend: SqliteBackend, conn: sqlite3.Connection) -> None:
        super().__init__(
            conn, backend.name, backend.describe(), SQLITE_DIALECT, backend._head_in(conn)
        )
        self._backend = backend

    def rows_added_after(self, position: int) -> list[ExampleRow]:
        return self._backend._rows_added_in(self._conn, position)

    def _insert_rows(self, rows: Sequence[ExampleRow], changes: Sequence[ChangeRecord]) -> None:
        try:
            self._conn.executemany(
                "INSERT INTO examples (set_name, id, example, vector, added_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (self.name, row.id, row.example, row.vector, change.position)
                    for row, change in zip(rows, changes, strict=True)
                ],
            )
        except sqlite3.IntegrityError:
            raise DuplicateExampleError("an example id is already in the store") from None

    def _delete_rows(self, ids: Sequence[str]) -> int:
        cur = self._conn.executemany(
            "DELETE FROM examples WHERE set_name = ? AND id = ?",
            [(self.name, example_id) for example_id in ids],
        )
        return int(cur.rowcount)

    def _execute_many(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        self._conn.executemany(statement, rows)


class SqliteBackend(BackendBase):
    """One example set (`name`) in a SQLite file. Not thread-safe: callers serialize."""

    dialect = SQLITE_DIALECT

    def __init__(self, path: Path, name: str, conn: sqlite3.Connection) -> None:
        self.path = path
        self.name = name
        self._conn: sqlite3.Connection | None = conn
        self._pid = os.getpid()
        self._data_version: int | None = None
        self._pending = False

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, path: Path, name: str) -> SqliteBackend:
        """Open (creating if needed, mode 0600) the database and its schema.

        Args:
            path: A real file path (see `check_store_path`).
            name: The example set.

        Returns:
            The backend (the set itself is created by `create`).

        Raises:
            StateFileError: The file is damaged, foreign, of a future version, or cannot be
                opened (with the operating system's reason: read-only, full disk, ...).
        """
        created = False
        try:
            created = _create_private(path)
            os.close(os.open(path, os.O_RDWR))  # read-only, immutable: say so, not "damaged"
        except OSError as err:
            raise cls._os_error(path, err) from None
        if not os.access(path.parent, os.W_OK):
            raise StoreUnavailableError(
                f"cannot open store {path}: its directory is read-only (SQLite keeps its "
                "write-ahead log beside the database)"
            )
        conn = None
        try:
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.text_factory = cls._text
            backend = cls(path, name, conn)
            backend._initialize_retrying(conn)
        except BaseException as err:
            if conn is not None:
                conn.close()
            if created:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            if isinstance(err, sqlite3.Error):
                raise cls._sqlite_error(path, "open", err) from None
            raise
        return backend

    @staticmethod
    def _text(raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise StateFileError(f"text in the store is not UTF-8: {err}") from None

    def _initialize_retrying(self, conn: sqlite3.Connection) -> None:
        """`_initialize`, retried while other processes hold the file (within the busy timeout).

        Switching a new file to WAL needs it alone, and SQLite answers SQLITE_BUSY at once,
        without waiting, when another process is opening it too; `_initialize` is idempotent.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._initialize(conn)
                return
            except sqlite3.OperationalError as err:
                busy = getattr(err, "sqlite_errorcode", None) in _BUSY_CODES
                if not busy or time.monotonic() >= deadline:
                    raise
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                time.sleep(_CHECKPOINT_RETRY_S)

    def _initialize(self, conn: sqlite3.Connection) -> None:
        # Both reads in one read transaction: between two separate reads another process
        # may commit a new store's schema, and the pair would look like a foreign file.
        conn.execute("BEGIN")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            conn.execute("COMMIT")
        if app_id != APPLICATION_ID and (app_id != 0 or tables != 0):
            raise StateFileError(f"{self.path} is not a langchain-erase store")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise StateFileError(f"{self.path} cannot use write-ahead logging ({mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA secure_delete=ON")
        # Dirty pages stay in memory until COMMIT: a refused write never reaches the WAL.
        conn.execute("PRAGMA cache_spill=OFF")
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("format", STORE_FORMAT), ("version", str(STORE_VERSION))],
                )
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={STORE_VERSION}")
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if meta.get("format") != STORE_FORMAT:
            raise StateFileError(f"{self.path} is not a langchain-erase store")
        if meta.get("version") != str(STORE_VERSION):
            raise StateFileError(
                f"{self.path} has store version {meta.get('version')!r}; this "
                f"langchain-erase reads version {STORE_VERSION}"
            )
        # A crash may have left frames of a refused write in the WAL: erase them now, or with
        # this process's first write.
        self._pending = not self._checkpoint()

    # ----------------------------------------------------------------- protocol
    def describe(self) -> str:
        """Returns:
        The database path and the set name, for messages."""
        return f"{self.path} (set {self.name!r})"

    def read_header(self) -> StoreHeader | None:
        """Returns:
        The set's header, or None if the set does not exist yet."""
        row = self._query(
            "SELECT params, dimension, projection, fingerprint FROM sets WHERE name = ?",
            (self.name,),
        )
        if not row:
            return None
        params, dimension, projection, fingerprint = row[0]
        try:
            header = StoreHeader(
                params=json.loads(params),
                dimension=None if dimension is None else int(dimension),
                projection=None if projection is None else bytes(projection),
                fingerprint=None if fingerprint is None else json.loads(fingerprint),
            )
        except (TypeError, ValueError) as err:
            raise StateFileError(f"{self.describe()} has an invalid header: {err}") from None
        if not isinstance(header.params, dict) or not (
            header.fingerprint is None or isinstance(header.fingerprint, dict)
        ):
            raise StateFileError(f"{self.describe()} has an invalid header")
        return header

    def create(self, header: StoreHeader) -> StoreHeader:
        """Create the set unless another process did first.

        Args:
            header: Header of a new, empty set.

        Returns:
            The stored header.
        """
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO sets (name, params, dimension, projection, fingerprint, "
                "head_position, head_digest, head_chain) VALUES (?, ?, ?, ?, ?, 0, '', '')",
                (
                    self.name,
                    json.dumps(header.params, sort_keys=True),
                    header.dimension,
                    header.projection,
                    None if header.fingerprint is None else json.dumps(header.fingerprint),
                ),
            )
        stored = self.read_header()
        if stored is None:
            raise StateFileError(f"{self.describe()}: the set vanished after its creation")
        return stored

    def changed(self) -> bool:
        """Returns:
        True if another connection may have committed since the last call
        (`PRAGMA data_version`)."""
        version = int(self._query("PRAGMA data_version", ())[0][0])
        changed = version != self._data_version
        self._data_version = version
        return changed

    @contextlib.contextmanager
    def write(self) -> Iterator[_Txn]:
        """One write transaction (BEGIN IMMEDIATE), erasure step after the commit.

        Returns:
            A context manager yielding the transaction.
        """
        committed = False
        txn: _Txn | None = None
        try:
            with self._transaction() as conn:
                txn = _Txn(self, conn)  # a missing set is refused
                yield txn
                txn.finish()
            committed = True
        finally:
            if txn is not None and txn.wrote and (txn.deleted or not committed):
                self._pending = True  # a deletion, or frames of a refused write in the WAL
            if self._conn is not None:
                if self._pending:
                    self._erase()
                elif committed:
                    self._checkpoint()  # one try: keeps the WAL empty between writes

    def erasure_status(self) -> ErasureStatus:
        """Returns:
        Pending if the last erasure checkpoint could not complete (readers held the WAL)."""
        self._connection()  # closed or forked: refused
        if not self._pending:
            return ErasureStatus(pending=False)
        return ErasureStatus(pending=True, error="readers of the file held the write-ahead log")

    def complete_erasure(self, timeout: float = ERASURE_BOUND_S) -> bool:
        """Retry the erasure checkpoint for up to `timeout` seconds.

        Args:
            timeout: Most seconds to spend.

        Returns:
            True if no erasure is pending afterwards.
        """
        self._connection()
        if self._pending:
            self._erase(timeout)
        return not self._pending

    def close(self) -> None:
        """Close the connection; later calls raise StateFileError."""
        if self._conn is not None and os.getpid() == self._pid:
            self._conn.close()
        self._conn = None

    # ---------------------------------------------------------------- internals
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StateFileError(f"store {self.path} is closed")
        if os.getpid() != self._pid:
            raise ForkedProcessError(
                f"store {self.path} was opened in process {self._pid}; a forked process must "
                "open its own (open after the fork, e.g. in a worker start hook)"
            )
        return self._conn

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            return self._connection().execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise self._sqlite_error(self.path, "read", err) from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as err:
            raise self._sqlite_error(self.path, "write", err) from err

    def _read_in(
        self, what: str, fn: Callable[[sqlite3.Connection], T], *, consistent: bool = True
    ) -> T:
        conn = self._connection()
        try:
            if not consistent:
                return fn(conn)
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as err:
            raise self._sqlite_error(self.path, "read", err) from None

    def _head_in(self, conn: sqlite3.Connection) -> tuple[int, str, str]:
        try:
            row = conn.execute(
                "SELECT head_position, head_digest, head_chain FROM sets WHERE name = ?",
                (self.name,),
            ).fetchone()
        except sqlite3.Error as err:
            raise self._sqlite_error(self.path, "read", err) from None
        if row is None:
            raise StateFileError(f"{self.describe()} does not exist (was it dropped?)")
        if not (isinstance(row[0], int) and isinstance(row[1], str) and isinstance(row[2], str)):
            raise StateFileError(f"{self.describe()} has a damaged log head")
        return int(row[0]), str(row[1]), str(row[2])

    def _rows_added_in(self, conn: sqlite3.Connection, position: int) -> list[ExampleRow]:
        self._head_in(conn)  # a missing set is refused, not read as empty
        try:
            raw = conn.execute(
                "SELECT id, example, vector FROM examples "
                "WHERE set_name = ? AND added_at > ? ORDER BY id",
                (self.name, position),
            ).fetchall()
        except sqlite3.Error as err:
            raise self._sqlite_error(self.path, "read", err) from None
        rows = []
        for example_id, example, vector in raw:
            if not (
                isinstance(example_id, str)
                and isinstance(example, str)
                and isinstance(vector, bytes)
            ):
                raise StateFileError(f"{self.describe()} has a malformed example row")
            rows.append(ExampleRow(example_id, example, vector))
        return rows

    def _checkpoint(self) -> bool:
        """One truncating checkpoint attempt (no waiting); True if it completed."""
        conn = self._connection()
        conn.execute("PRAGMA busy_timeout=0")
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:  # busy, full disk, I/O error: the erasure stays pending
            busy = 1
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        return not busy

    def _erase(self, bound: float = ERASURE_BOUND_S) -> None:
        """Retry the truncating checkpoint for up to `bound` seconds."""
        deadline = time.monotonic() + bound
        while True:
            if self._checkpoint():
                self._pending = False
                return
            if time.monotonic() >= deadline:
                self._pending = True
                return
            time.sleep(_CHECKPOINT_RETRY_S)

    @staticmethod
    def _os_error(path: Path, err: OSError) -> ERASEError:
        reason = _os_reason(err) or str(err)
        if err.errno in (errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR):
            return InvalidParameterError(f"cannot create store {path}: {reason}")
        return StoreUnavailableError(f"cannot open store {path}: {reason}")

    @staticmethod
    def _sqlite_error(path: Path, action: str, err: sqlite3.Error) -> ERASEError:
        code = getattr(err, "sqlite_errorcode", None)
        name = str(getattr(err, "sqlite_errorname", ""))
        if code in _BUSY_CODES:
            return StoreLockedError(
                f"could not {action} the store {path}: another process held it longer than "
                f"{BUSY_TIMEOUT_S:.0f} s"
            )
        for prefix, detail in _SQLITE_UNAVAILABLE.items():
            if name.startswith(prefix):
                return StoreUnavailableError(f"could not {action} the store {path}: {detail}")
        return StateFileError(f"could not {action} the store {path}: damaged or foreign ({err})")


def open_sqlite_backend(
    target: str | os.PathLike[str], name: str, log_key: bytes | None
) -> tuple[SqliteBackend, bytes]:
    """Open the SQLite backend and resolve its log key.

    Args:
        target: Database file path (refused unless a real path: see `check_store_path`).
        name: Example-set name.
        log_key: The log key, or None to use (creating it, mode 0600) the key file
            ``<path>.key`` beside the database.

    Returns:
        The backend and the log key.
    """
    path = check_store_path(target)
    if path.is_dir():
        raise InvalidParameterError(f"cannot create store {path}: the path is a directory")
    try:
        name_max = os.pathconf(path.parent if str(path.parent) else ".", "PC_NAME_MAX")
    except OSError:
        name_max = 255
    if len(path.name.encode("utf-8", "surrogateescape")) + len(_LONGEST_SUFFIX) > name_max:
        raise InvalidParameterError(
            f"the store file name is too long: SQLite needs room for a {_LONGEST_SUFFIX!r} "
            f"suffix within {name_max} bytes"
        )
    backend = SqliteBackend.open(path, name)
    try:
        key = log_key if log_key is not None else _read_or_create_key(path)
    except OSError as err:
        backend.close()
        raise SqliteBackend._os_error(Path(f"{path}.key"), err) from None
    except BaseException:
        backend.close()
        raise
    return backend, key

"""Opening a store-backed session for a selector, and the handle that reopens it.

`StoreHandle` names a store (target, set name, consistency, explicit log key) without
holding a connection: `open` checks the arguments, opens the backend, creates the set if
absent (race-safe), compares the stored parameters with the given ones, checks the
embedding model's fingerprint, and returns the parameters and a `StoreSession`. Pickling a
store-backed selector pickles its handle, so the copy opens its own connection.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from langchain_erase.core.index import IndexRows
from langchain_erase.errors import InvalidParameterError
from langchain_erase.inputs import encodable, parse_example
from langchain_erase.replication import Consistency, MemorySession, Session, StoreSession
from langchain_erase.selector.fingerprint import ModelFingerprint
from langchain_erase.selector.params import SelectorParams
from langchain_erase.storage import open_backend
from langchain_erase.storage.base import StoreHeader

__all__ = ["CONSISTENCY_MODES", "MAX_NAME", "MemoryHandle", "StoreHandle", "checked_path"]

CONSISTENCY_MODES = ("strong", "eventual")
#: Longest example-set name.
MAX_NAME = 200


def checked_path(path: str | os.PathLike[str], what: str) -> os.PathLike[str] | str:
    """`path` unchanged, or InvalidParameterError if no file system can name it.

    Args:
        path: A file path.
        what: What it is, for the message.

    Returns:
        `path`.
    """
    try:
        os.fsencode(path)
    except (TypeError, UnicodeEncodeError):
        raise InvalidParameterError(
            f"{what} must be a file path of valid Unicode (no lone surrogates)"
        ) from None
    return path


@dataclass(frozen=True)
class StoreHandle:
    """Where a store-backed selector's state lives (no connection).

    Attributes:
        target: A SQLite file path or a ``postgresql://`` URL (as given: a URL may hold a
            password, and pickles of the handle carry it).
        name: The example set.
        consistency: "strong" or "eventual".
        log_key: The explicit change-log key, or None to resolve it again on open
            (environment variable, key file).
    """

    target: str | os.PathLike[str]
    name: str
    consistency: Consistency
    log_key: bytes | None

    @classmethod
    def checked(
        cls,
        target: str | os.PathLike[str],
        name: object,
        consistency: object,
        log_key: object,
    ) -> StoreHandle:
        """Validate `open`'s arguments.

        Args:
            target: A SQLite file path, or a ``postgresql://`` URL.
            name: The example set's name.
            consistency: "strong" or "eventual".
            log_key: A non-empty string or bytes, or None.

        Returns:
            The handle.

        Raises:
            InvalidParameterError: An argument is invalid.
        """
        if consistency not in CONSISTENCY_MODES:
            raise InvalidParameterError(f"consistency must be one of {CONSISTENCY_MODES}")
        if (
            not isinstance(name, str)
            or not 0 < len(name) <= MAX_NAME
            or "\0" in name
            or not encodable(name)
        ):
            raise InvalidParameterError(
                f"name must be a non-empty string of valid Unicode of at most {MAX_NAME}"
            )
        if isinstance(target, str | os.PathLike):
            checked_path(target, "target")
        if isinstance(log_key, str):
            if not encodable(log_key):
                raise InvalidParameterError("log_key must be valid Unicode (no lone surrogates)")
            log_key = log_key.encode("utf-8")
        if log_key is not None and (not isinstance(log_key, bytes) or not log_key):
            raise InvalidParameterError("log_key must be a non-empty string or bytes")
        return cls(target, name, "strong" if consistency == "strong" else "eventual", log_key)

    def open(
        self,
        given: dict[str, Any],
        fingerprint: ModelFingerprint,
        similar_screen: bool,
    ) -> tuple[SelectorParams, StoreSession]:
        """Open the store, creating the set with `given` if it is absent.

        Args:
            given: The parameters passed to `open` (omitted ones are taken from the store;
                given ones must equal the stored ones).
            fingerprint: The embedding model's fingerprint, checked against the store's.
            similar_screen: The index's "similar" screen option (not stored).

        Returns:
            The set's parameters and a session caught up with it.

        Raises:
            InvalidParameterError: The store was created with other parameters.
            EmbeddingModelMismatchError: It was built with another embedding model.
            StateFileError: It is damaged or foreign.
        """
        backend, key = open_backend(self.target, self.name, self.log_key)
        try:
            header = backend.read_header()
            if header is None:
                params = SelectorParams.create(**given).to_json()
                header = backend.create(StoreHeader(params, None, None, None))
            stored = SelectorParams.from_json(header.params, backend.describe())
            merged = stored.replace(**given)
            if merged != stored:
                raise InvalidParameterError(
                    f"{backend.describe()} was created with other parameters: "
                    + ", ".join(stored.differences(merged))
                )
            if header.fingerprint is not None:
                fingerprint.check(header.fingerprint, backend.describe())
            index = stored.new_index(similar_screen=similar_screen)
            return stored, StoreSession(index, backend, key, parse_example, self.consistency)
        except BaseException:
            backend.close()
            raise

    def contents(self, session: Session) -> None:
        """What a pickle keeps of the state besides this handle: nothing (the store has it).

        Args:
            session: The selector's session.

        Returns:
            None.
        """
        return None

    def reopen(
        self,
        params: SelectorParams,
        contents: None,
        fingerprint: ModelFingerprint,
        similar_screen: bool,
    ) -> Session:
        """Open the store again (a new connection) for an unpickled selector.

        Args:
            params: The selector's parameters (must still equal the store's).
            contents: Unused (see `contents`).
            fingerprint: The model's fingerprint.
            similar_screen: The index's "similar" screen option.

        Returns:
            A new session, caught up with the store.
        """
        return self.open(params.to_json(), fingerprint, similar_screen)[1]


@dataclass(frozen=True)
class MemoryHandle:
    """The null twin of `StoreHandle`: an in-memory selector's state travels in the pickle."""

    def contents(self, session: Session) -> tuple[IndexRows, npt.NDArray[np.float64] | None]:
        """Args:
            session: The selector's session.

        Returns:
            Its rows and projection matrix."""
        return session.index.rows(), session.index.projection_matrix

    def reopen(
        self,
        params: SelectorParams,
        contents: tuple[IndexRows, npt.NDArray[np.float64] | None],
        fingerprint: ModelFingerprint,
        similar_screen: bool,
    ) -> Session:
        """Refit the pickled rows (the same state: it is a function of the rows).

        Args:
            params: The selector's parameters.
            contents: What `contents` returned.
            fingerprint: Unused (no store to check against).
            similar_screen: The index's "similar" screen option.

        Returns:
            A new memory session.
        """
        (ids, texts, vectors), projection = contents
        index = params.new_index(similar_screen=similar_screen)
        if ids:
            index.load(ids, texts, vectors, projection)
        return MemorySession(index)

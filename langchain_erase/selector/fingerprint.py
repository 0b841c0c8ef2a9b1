"""`ModelFingerprint`: which embedding model built a store or a snapshot.

The fingerprint is the model's dimension and its embeddings of fixed probe texts. Two
models agree when every probe embedding has a cosine similarity of at least
`MIN_COSINE` (which tolerates one model's last-bit differences across hardware); a store
or snapshot built with another model is refused with `EmbeddingModelMismatchError`.
The probes are embedded once per fingerprint object, and only when first needed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_erase.errors import EmbeddingModelMismatchError, StateFileError
from langchain_erase.selector.embedder import embed_documents

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

__all__ = ["FINGERPRINT_PROBES", "MIN_COSINE", "ModelFingerprint"]

#: Fixed texts whose embeddings identify the embedding model of a store.
FINGERPRINT_PROBES = (
    "langchain-erase model fingerprint: the quick brown fox jumps over the lazy dog.",
    "Quel temps fait-il à Paris ? 3.14159 — ¿qué tal?",
    "def select(examples): return sorted(examples)[:4]",
)
#: Two models agree when every probe embedding has at least this cosine similarity.
MIN_COSINE = 0.9999


class ModelFingerprint:
    """The fingerprint of one embedding model, computed on first use (thread-safe)."""

    def __init__(self, embeddings: Embeddings) -> None:
        """Args:
        embeddings: The model."""
        self._embeddings = embeddings
        self._value: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, Any]:
        """Returns:
        ``{"dimension": D, "probes": [[...], ...]}`` (JSON-able)."""
        with self._lock:
            if self._value is None:
                probes = embed_documents(
                    self._embeddings, list(FINGERPRINT_PROBES), p=1, dimension=None
                )
                self._value = {
                    "dimension": int(probes.shape[1]),
                    "probes": [[float(x) for x in row] for row in probes],
                }
            return self._value

    def check(self, stored: Mapping[str, Any], where: str) -> None:
        """Refuse a store or snapshot built with another model.

        Args:
            stored: The fingerprint it recorded.
            where: Its path or URL, for the message.

        Raises:
            EmbeddingModelMismatchError: Another dimension or other probe embeddings.
            StateFileError: The recorded fingerprint is malformed.
        """
        mine = self()
        advice = (
            "open it with the embedding model it was built with, or build a new store "
            "(another path or name) with this model"
        )
        if stored.get("dimension") != mine["dimension"]:
            raise EmbeddingModelMismatchError(
                f"{where} was built with an embedding model of dimension "
                f"{stored.get('dimension')!r}, this one has {mine['dimension']}: {advice}"
            )
        try:
            theirs = np.asarray(stored["probes"], dtype=np.float64)
            ours = np.asarray(mine["probes"], dtype=np.float64)
            cosines = np.sum(theirs * ours, axis=1) / (
                np.linalg.norm(theirs, axis=1) * np.linalg.norm(ours, axis=1)
            )
        except (KeyError, TypeError, ValueError):
            raise StateFileError(f"{where} has an invalid model fingerprint") from None
        if theirs.shape != ours.shape or not np.all(cosines >= MIN_COSINE):
            raise EmbeddingModelMismatchError(
                f"{where} was built with another embedding model (its probe embeddings "
                f"differ): {advice}"
            )

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its lock."""
        return {"embeddings": self._embeddings, "value": self._value}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Args:
        state: What `__getstate__` returned."""
        self._embeddings = state["embeddings"]
        self._value = state["value"]
        self._lock = threading.Lock()

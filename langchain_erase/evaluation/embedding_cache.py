"""Embeddings memoized by text and persisted to disk.

Every selector in a comparison (ERASE in three modes and several k, kNN, MMR) embeds the
same pool; with this wrapper each text is embedded once per model, and a rerun or a resumed
run embeds nothing it has seen before.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_erase.errors import InputTooLongError

__all__ = ["CachedEmbeddings"]


class CachedEmbeddings(Embeddings):
    """Wraps `inner`; documents and queries are cached separately (models may embed them
    differently). With `path`, the cache is loaded from it and `save()` writes it back, in
    float64 so a resumed run sees exactly the vectors the first run used. A text longer than
    the model's window is embedded from its longest prefix that fits (`truncated` counts the
    cuts)."""

    def __init__(self, inner: Embeddings, path: Path | None = None) -> None:
        self.inner = inner
        self.path = path
        self._cache: dict[tuple[str, str], list[float]] = {}
        self.computed = 0
        self.truncated = 0
        self._saved = 0
        if path is not None and path.exists():
            self.update_from(path)

    def update_from(self, path: Path) -> int:
        """Add the vectors of another cache file (e.g. one a concurrent run writes), without
        writing anything; returns how many entries it held.

        Args:
            path: a file written by `save()`.

        Returns:
            The number of entries read.
        """
        with np.load(path) as data:
            keys = json.loads(str(data["keys"]))
            for key, row in zip(keys, data["vectors"], strict=True):
                self._cache[(key[0], key[1])] = row.tolist()
        return len(keys)

    def _lookup(self, kind: str, texts: list[str]) -> list[list[float]]:
        missing = sorted({t for t in texts if (kind, t) not in self._cache})
        if missing:
            try:
                vectors = self._embed(kind, missing)
            except InputTooLongError:
                vectors = [self._embed_prefix(kind, t) for t in missing]
            self._cache.update({(kind, t): list(v) for t, v in zip(missing, vectors, strict=True)})
            self.computed += len(missing)
        return [self._cache[(kind, t)] for t in texts]

    def _embed(self, kind: str, texts: list[str]) -> list[list[float]]:
        if kind == "doc":
            return self.inner.embed_documents(texts)
        return [self.inner.embed_query(t) for t in texts]

    def _embed_prefix(self, kind: str, text: str) -> list[float]:
        """`text`'s vector, or, when it is longer than the model's window, the vector of its
        longest prefix that fits, found by cutting 10% of the characters at a time (some
        BIG-bench inputs exceed MiniLM's 512 tokens; every selector sees the same vector)."""
        while True:
            try:
                return self._embed(kind, [text])[0]
            except InputTooLongError:
                self.truncated += 1
                text = text[: int(len(text) * 0.9)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._lookup("doc", texts)

    def embed_query(self, text: str) -> list[float]:
        return self._lookup("query", [text])[0]

    def save(self) -> None:
        """Write the cache (atomically) when it has a path and something new was computed
        since the last save (a large cache is not rewritten for nothing)."""
        if self.path is None or not self._cache or self.computed == self._saved:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self._cache)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(
            tmp,
            keys=np.array(json.dumps(keys)),
            vectors=np.array([self._cache[k] for k in keys], dtype=np.float64),
        )
        tmp.replace(self.path)
        self._saved = self.computed

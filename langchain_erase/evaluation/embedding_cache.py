"""Embeddings memoized by text and persisted to disk.

Every selector in a comparison (ERASE in three modes and several k, kNN, MMR) embeds the
same pool; with this wrapper each text is embedded once per model, and a rerun or a resumed
run embeds nothing it has seen before.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_erase.errors import InputTooLongError

__all__ = ["CachedEmbeddings"]

logger = logging.getLogger(__name__)


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
        writing anything; a text already cached keeps the vector this run has used. Returns
        how many entries the file held.

        Args:
            path: a file written by `save()`.

        Returns:
            The number of entries read.
        """
        with np.load(path) as data:
            keys = json.loads(str(data["keys"]))
            for key, row in zip(keys, data["vectors"], strict=True):
                self._cache.setdefault((key[0], key[1]), row.tolist())
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
        """Write the cache when it has a path and something new was computed since the last
        save (a large cache is not rewritten for nothing).

        Runs that share the file (two workers on different tasks) lose nothing: under an
        exclusive lock on `<path>.lock`, the entries the file holds now are merged in first,
        then the whole is written to a temporary file of this process's own and renamed over
        the path, so a reader sees the old file or the new one, never a mix. The file is
        readable by its owner only (mode 0600): it holds the pool's vectors. A file that
        cannot be read as a cache is replaced, with a warning.
        """
        if self.path is None or not self._cache or self.computed == self._saved:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.path.exists():
                try:
                    self.update_from(self.path)
                except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                    logger.warning("replacing unreadable embedding cache %s: %s", self.path, exc)
            keys = list(self._cache)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    np.savez(
                        out,
                        keys=np.array(json.dumps(keys)),
                        vectors=np.array([self._cache[k] for k in keys], dtype=np.float64),
                    )
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        self._saved = self.computed

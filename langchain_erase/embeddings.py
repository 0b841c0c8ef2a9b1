"""LangChain embeddings computed locally by llama.cpp, MiniLM by default.

ERASE embeds each example once, at add time, and stores the vector; this class gives it a
dependency-light, offline, deterministic embedder. Two choices matter for the selector:

* pooling is requested explicitly (mean, as sentence-transformers pools MiniLM), so llama.cpp
  never returns per-token vectors whatever the GGUF's metadata says;
* an input longer than the context raises :class:`InputTooLongError` instead of being silently
  truncated, which would store the embedding of a different text.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from langchain_erase.errors import EmbeddingError, InputTooLongError, ModelNotFoundError

if TYPE_CHECKING:
    import llama_cpp

__all__ = ["LlamaCppEmbeddings"]


class LlamaCppEmbeddings(BaseModel, Embeddings):
    """Sentence embeddings from a GGUF encoder run by llama-cpp-python, L2-normalized.

    The model is loaded on first use (so constructing one is free, e.g. in configs and tests)
    and then kept; calls are serialized because a llama.cpp context is not thread-safe.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_path: Path | None = None
    """GGUF file of an embedding model; None converts and caches all-MiniLM-L6-v2."""
    n_ctx: int = Field(default=512, gt=0)
    """Context (and per-text token limit); MiniLM was trained on 512 positions."""
    n_threads: int | None = Field(default=None, gt=0)
    """CPU threads; None lets llama.cpp choose."""
    n_gpu_layers: int = 0
    """Layers offloaded to a GPU build of llama.cpp; 0 runs on the CPU."""
    batch_size: int = Field(default=32, gt=0)
    """Texts per llama.cpp call."""
    verbose: bool = False
    """Let llama.cpp print its load and timing logs."""

    _llama: llama_cpp.Llama | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _client(self) -> llama_cpp.Llama:
        """The loaded model; caller holds ``_lock``."""
        if self._llama is None:
            import llama_cpp

            if self.model_path is None:
                from langchain_erase.models.gguf_convert import ensure_minilm_gguf

                path = ensure_minilm_gguf()
            elif self.model_path.is_file():
                path = self.model_path
            else:
                raise ModelNotFoundError(f"embedding model not found: {self.model_path}")
            self._llama = llama_cpp.Llama(
                model_path=str(path),
                embedding=True,
                pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                n_ctx=self.n_ctx,
                # An encoder sees a whole text in one micro-batch, so both equal the context.
                n_batch=self.n_ctx,
                n_ubatch=self.n_ctx,
                n_threads=self.n_threads,
                # Batch decoding defaults to every core, whose spinning threads stall badly
                # on a busy machine; use the same thread count as single-token work.
                n_threads_batch=self.n_threads,
                n_gpu_layers=self.n_gpu_layers,
                verbose=self.verbose,
            )
        return self._llama

    def _embed(self, texts: list[str]) -> list[list[float]]:
        import llama_cpp

        with self._lock:
            llm = self._client()
            limit = min(self.n_ctx, llama_cpp.llama_model_n_ctx_train(llm.model))
            for i, text in enumerate(texts):
                n_tokens = len(llm.tokenize(text.encode("utf-8")))
                if n_tokens > limit:
                    raise InputTooLongError(
                        f"text {i} has {n_tokens} tokens (with [CLS]/[SEP]) but the embedding "
                        f"model takes at most {limit}; shorten or split it"
                    )
            vectors: list[list[float]] = []
            for start in range(0, len(texts), self.batch_size):
                chunk = texts[start : start + self.batch_size]
                raw: Any = llm.embed(chunk, normalize=False, truncate=False)
                vectors.extend(_l2_normalize(raw, start))
        return vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed a batch of texts; all are length-checked before any is embedded."""
        return self._embed(list(texts))

    def embed_query(self, text: str) -> list[float]:
        """Embed one text."""
        return self._embed([text])[0]


def _l2_normalize(raw: Any, offset: int) -> list[list[float]]:
    """Unit-length rows (float64 norm); a zero or non-finite vector is an error, not NaNs."""
    matrix = np.asarray(raw, dtype=np.float64)
    if matrix.ndim != 2:
        raise EmbeddingError(f"expected one pooled vector per text, got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0.0))
    if bad.size:
        raise EmbeddingError(f"text {offset + int(bad[0])} has a zero or non-finite embedding")
    normalized: list[list[float]] = (matrix / norms[:, None]).tolist()
    return normalized

"""Scoring one query: multiple choice by option log-likelihood, `target` tasks by greedy
exact match, behind a small `LanguageModel` protocol so tests can use a fake.

`LlamaCppScorer` drives llama.cpp's decoder directly (public C bindings) because the
high-level `Llama.eval` keeps no logits unless `logits_all=True`, and that computes the
vocabulary projection for every prompt token (262k rows for Gemma) and allocates n_ctx x
vocab floats. Here the prompt is evaluated once, only its last logits are read, and each
option costs one batched forward pass over its own tokens (its last token needs none) on top
of the prompt's KV cache. Consecutive prompts reuse their common token prefix from the KV
cache, which is what makes a fixed (cached) demonstration prefix cheap.
"""

from __future__ import annotations

import ctypes
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from langchain_erase.evaluation.tasks import Example, Task

if TYPE_CHECKING:
    import llama_cpp

__all__ = [
    "LanguageModel",
    "LlamaCppScorer",
    "Score",
    "log_softmax_at",
    "normalize_answer",
    "score_example",
]

FloatArray = npt.NDArray[np.float32]


class LanguageModel(Protocol):
    """What scoring needs from a model: option log-likelihoods, greedy text, token counts."""

    def option_logprobs(self, prompt: str, options: Sequence[str]) -> list[float]:
        """Sum of log-probabilities of each option's tokens following `prompt`."""
        ...

    def generate(self, prompt: str, *, max_tokens: int) -> str:
        """Greedy continuation of `prompt`, ending at its first complete line."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` occupies as a prompt."""
        ...


@dataclass(frozen=True)
class Score:
    """The outcome of one query: what was predicted, whether it is right, and its cost."""

    correct: bool
    prediction: str
    prompt_tokens: int
    seconds: float


def normalize_answer(text: str) -> str:
    """Exact match compares the first line of the answer, stripped of surrounding space."""
    stripped = text.strip()
    return stripped.split("\n", 1)[0].strip()


def score_example(
    task: Task,
    lm: LanguageModel,
    demonstrations: Sequence[dict[str, str]],
    example: Example,
    *,
    max_tokens: int = 24,
) -> Score:
    """Score `example` after `demonstrations`. Trailing spaces of the prompt move onto the
    options (" Yes" rather than "A: " + "Yes"), the way tokenizers saw such text in training."""
    prompt = task.prompt(demonstrations, example)
    body = prompt.rstrip(" ")
    gap = prompt[len(body) :]
    start = time.perf_counter()
    if task.kind == "multiple_choice":
        logprobs = lm.option_logprobs(body, [gap + o for o in example.options])
        prediction = example.options[int(np.argmax(logprobs))]  # first option wins ties
        correct = prediction in example.answers
    else:
        prediction = normalize_answer(lm.generate(body, max_tokens=max_tokens))
        correct = prediction in {normalize_answer(a) for a in example.answers}
    seconds = time.perf_counter() - start
    return Score(correct, prediction, lm.count_tokens(body), seconds)


def log_softmax_at(logits: FloatArray, token: int) -> float:
    """log p(token) under softmax(logits), in float64."""
    row = logits.astype(np.float64)
    peak = float(row.max())
    return float(row[token] - peak - np.log(np.exp(row - peak).sum()))


class LlamaCppScorer:
    """A `LanguageModel` on a `llama_cpp.Llama` built with `logits_all=False`.

    It owns the context's KV cache (sequence 0): do not run other completions on the same
    `Llama` in between. `prefix_cache=False` re-evaluates every prompt from scratch (used to
    measure what caching saves). `evaluated_tokens` counts tokens actually run through the
    model, which is the cost that prefix reuse lowers.
    """

    def __init__(self, llama: llama_cpp.Llama, *, prefix_cache: bool = True) -> None:
        import llama_cpp as lc

        self._lc = lc
        self._llama = llama
        self._ctx = llama.ctx
        self._vocab = lc.llama_model_get_vocab(llama.model)
        self._memory = lc.llama_get_memory(self._ctx)
        self._n_vocab = llama.n_vocab()
        self._n_batch = int(lc.llama_n_batch(self._ctx))
        self._batch = lc.llama_batch_init(self._n_batch, 0, 1)
        weakref.finalize(self, lc.llama_batch_free, self._batch)
        self._cached: list[int] = []
        self.prefix_cache = prefix_cache
        self.evaluated_tokens = 0
        lc.llama_memory_clear(self._memory, True)

    def tokenize(self, text: str, *, bos: bool) -> list[int]:
        """Token ids of `text` (no special-token parsing: data text is data)."""
        return list(self._llama.tokenize(text.encode("utf-8"), add_bos=bos, special=False))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text, bos=True))

    def _truncate(self, n: int) -> None:
        self._lc.llama_memory_seq_rm(self._memory, 0, n, -1)
        del self._cached[n:]

    def _extend(self, tokens: Sequence[int], *, all_logits: bool) -> FloatArray:
        """Append `tokens` to the cached sequence; logits of every new token, or of the last."""
        rows: list[FloatArray] = []
        for lo in range(0, len(tokens), self._n_batch):
            chunk = tokens[lo : lo + self._n_batch]
            b = self._batch
            b.n_tokens = len(chunk)
            for i, tok in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = len(self._cached) + i
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = 0
                b.logits[i] = all_logits or i == len(chunk) - 1
            if self._lc.llama_decode(self._ctx, b) != 0:
                self._truncate(len(self._cached))
                raise RuntimeError("llama_decode failed (context full?)")
            self._cached.extend(chunk)
            self.evaluated_tokens += len(chunk)
            if all_logits:
                ptr = self._lc.llama_get_logits(self._ctx)
                rows.append(np.ctypeslib.as_array(ptr, shape=(len(chunk), self._n_vocab)).copy())
        if all_logits:
            return np.concatenate(rows) if rows else np.empty((0, self._n_vocab), np.float32)
        ptr = self._lc.llama_get_logits_ith(self._ctx, -1)
        last: FloatArray = np.ctypeslib.as_array(
            ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self._n_vocab,)
        ).copy()
        return last

    def _prime(self, prompt: str) -> tuple[list[int], FloatArray]:
        """Put `prompt` in the KV cache, reusing its common prefix with what is there."""
        tokens = self.tokenize(prompt, bos=True)
        keep = 0
        if self.prefix_cache:
            limit = min(len(tokens) - 1, len(self._cached))  # re-run >= 1 token for logits
            while keep < limit and self._cached[keep] == tokens[keep]:
                keep += 1
        self._truncate(keep)
        return tokens, self._extend(tokens[keep:], all_logits=False)

    def prefill(self, prompt: str) -> int:
        """Evaluate `prompt` into the KV cache; returns how many tokens had to be computed
        (all of them without `prefix_cache`, only those after the cached prefix with it)."""
        before = self.evaluated_tokens
        self._prime(prompt)
        return self.evaluated_tokens - before

    def option_logprobs(self, prompt: str, options: Sequence[str]) -> list[float]:
        tokens, last = self._prime(prompt)
        out = []
        for option in options:
            opt = self.tokenize(option, bos=False)
            self._truncate(len(tokens))
            rows = self._extend(opt[:-1], all_logits=True)
            dists = [last, *rows]
            out.append(sum(log_softmax_at(d, t) for d, t in zip(dists, opt, strict=True)))
        return out

    def generate(self, prompt: str, *, max_tokens: int) -> str:
        _, logits = self._prime(prompt)
        produced: list[int] = []
        text = ""
        for _ in range(max_tokens):
            tok = int(np.argmax(logits))
            if self._lc.llama_vocab_is_eog(self._vocab, tok):
                break
            produced.append(tok)
            text = self._llama.detokenize(produced).decode("utf-8", errors="ignore")
            if "\n" in text.lstrip():
                break
            logits = self._extend([tok], all_logits=False)
        return text

"""What both local LangChain models need from llama-cpp-python: loading a context quietly,
rendering a conversation into the model's turn format, counting tokens, and decoding.

Quiet by default: llama.cpp writes its log (model loading, ``llama_kv_cache_iswa: using
full-size SWA cache``, ...) through one process-wide callback. The first model loaded here
installs a callback that sends every line to the Python logger ``langchain_erase.llama_cpp``
(llama.cpp's level mapped to DEBUG, INFO, WARNING or ERROR) and prints nothing: configure
logging (e.g. ``logging.basicConfig()``) to see them. ``verbose=True`` still asks
llama-cpp-python for its own timing prints.

Turn formats: a GGUF's own chat template (Jinja, ``tokenizer.chat_template``) is rendered as
is; Gemma's GGUF has none and its format takes no system turn, so for ``chat_format="gemma"``
the system text opens the first user turn. The leading BOS text a template writes is
dropped, because tokenization adds BOS itself (one BOS, never two).
"""

from __future__ import annotations

import ctypes
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from langchain_erase.errors import PromptTooLongError

__all__ = [
    "AnswerProcessor",
    "NoRepeatNgram",
    "Prompt",
    "Turn",
    "TurnFormat",
    "continuation_logprob",
    "count_tokens",
    "load_context",
    "quiet_llama_log",
    "stream_text",
]

LOGGER = logging.getLogger("langchain_erase.llama_cpp")
LOGGER.addHandler(logging.NullHandler())  # never Python's last-resort print to stderr
# ggml_log_level: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the last line)
_LEVELS = {0: logging.INFO, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_last_level = logging.DEBUG


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _to_logger(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    """llama.cpp's log line to the Python logger (level 5 continues the previous line)."""
    global _last_level
    _last_level = _LEVELS.get(level, _last_level)
    if LOGGER.isEnabledFor(_last_level):
        LOGGER.log(_last_level, "%s", text.decode("utf-8", "replace").rstrip("\n"))


def quiet_llama_log() -> None:
    """Route llama.cpp's log to the ``langchain_erase.llama_cpp`` logger (idempotent)."""
    llama_cpp.llama_log_set(_to_logger, ctypes.c_void_p(0))


def load_context(model_path: str, verbose: bool, **params: Any) -> llama_cpp.Llama:
    """Load a GGUF into a new llama.cpp context, with llama.cpp's log quiet.

    Args:
        model_path: The GGUF file.
        verbose: llama-cpp-python's own prints (timings); llama.cpp's log stays quiet.
        **params: ``llama_cpp.Llama`` parameters.

    Returns:
        The context.
    """
    quiet_llama_log()
    llama = llama_cpp.Llama(model_path=model_path, verbose=verbose, **params)
    quiet_llama_log()  # llama-cpp-python installs its own callback while loading
    return llama


@dataclass(frozen=True)
class Turn:
    """One rendered message: role (``system``, ``user`` or ``assistant``) and its text."""

    role: str
    text: str


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: its text, the texts that end the model's turn, and whether
    tokenization adds BOS (False where the template wrote it)."""

    text: str
    stops: tuple[str, ...]
    add_bos: bool

    def tokens(self, llama: llama_cpp.Llama) -> list[int]:
        """Args:
            llama: The context whose tokenizer to use.

        Returns:
            The prompt's tokens.

        Raises:
            PromptTooLongError: They leave no room for one generated token in ``n_ctx``."""
        tokens = llama.tokenize(self.text.encode("utf-8"), add_bos=self.add_bos, special=True)
        window = int(llama.context_params.n_ctx)  # llama.cpp may pad; this is the n_ctx asked for
        if len(tokens) >= window:
            raise PromptTooLongError(
                f"the prompt is {len(tokens)} tokens; the context window (n_ctx) is {window}"
            )
        return list(tokens)


@dataclass(frozen=True)
class TurnFormat:
    """How a model's prompt is made from turns, and the text that ends its turn."""

    template: str | None
    gemma: bool
    bos: str
    eos: str

    @classmethod
    def of(cls, llama: llama_cpp.Llama) -> TurnFormat:
        """Args:
            llama: A loaded context.

        Returns:
            Its GGUF's template, or Gemma's format, or ChatML when it has neither."""
        vocab = llama._model.vocab
        bos = llama._model.token_get_text(llama_cpp.llama_vocab_bos(vocab))
        eos = llama._model.token_get_text(llama_cpp.llama_vocab_eos(vocab))
        template = llama.metadata.get("tokenizer.chat_template")
        return cls(template, llama.chat_format == "gemma", bos, eos)

    def render(self, turns: Sequence[Turn]) -> Prompt:
        """Args:
            turns: The conversation, oldest first.

        Returns:
            The prompt, ending where the model's answer starts.
        """
        if self.gemma:
            return Prompt(self._gemma(turns), ("<end_of_turn>",), add_bos=True)
        messages = [{"role": t.role, "content": t.text} for t in turns]
        if self.template is None:
            body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
            return Prompt(body + "<|im_start|>assistant\n", ("<|im_end|>",), add_bos=True)
        rendered = Jinja2ChatFormatter(self.template, self.eos, self.bos)(messages=messages)  # type: ignore[arg-type]
        stops = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop or self.eos]
        # a template writes its special tokens (BOS included) itself
        return Prompt(rendered.prompt, tuple(s for s in stops if s), add_bos=False)

    @staticmethod
    def _gemma(turns: Sequence[Turn]) -> str:
        system = "\n\n".join(t.text for t in turns if t.role == "system")
        parts = []
        for turn in turns:
            if turn.role == "system":
                continue
            role = "model" if turn.role == "assistant" else "user"
            text = turn.text
            if system and role == "user":
                text, system = f"{system}\n\n{text}", ""
            parts.append(f"<start_of_turn>{role}\n{text}<end_of_turn>\n")
        if system:  # a system text and no user turn
            parts.append(f"<start_of_turn>user\n{system}<end_of_turn>\n")
        return "".join(parts) + "<start_of_turn>model\n"


def count_tokens(llama: llama_cpp.Llama, text: str, *, add_bos: bool = False) -> int:
    """Args:
        llama: A loaded context (its own tokenizer; no network).
        text: Any text; special-token texts count as the special tokens.
        add_bos: Count the BOS token a prompt gets.

    Returns:
        The number of tokens."""
    return len(llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))


class AnswerProcessor:
    """Base of this package's llama.cpp logits processors: each sees the answer grow one
    token per call and keeps its state incrementally, so a step costs O(1) in the answer's
    length instead of re-reading the whole answer (O(n^2) over a long answer).

    One instance serves one generation (the chat model makes one per call). A call whose
    answer is not the last one grown (shorter, or another token where the last one ended)
    starts the state over. Subclasses implement `_reset`, `_take` (one new answer token) and
    `_adjust` (the logits, from the state).
    """

    def __init__(self, start: int) -> None:
        """Args:
        start: The number of prompt tokens (the answer starts there)."""
        self.start = start
        self._answer: list[int] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Args:
            input_ids: The context's tokens so far (prompt, then answer).
            scores: The next token's logits, indexed by token id.

        Returns:
            ``scores``, adjusted by the subclass."""
        answer = input_ids[self.start :]
        known = len(self._answer)
        if len(answer) < known or (known and int(answer[known - 1]) != self._answer[-1]):
            self._answer, known = [], 0  # not the answer seen so far: start over
            self._reset()
        for token in answer[known:]:
            self._answer.append(int(token))
            self._take(int(token))
        return self._adjust(scores)

    def _reset(self) -> None:
        raise NotImplementedError

    def _take(self, token: int) -> None:
        raise NotImplementedError

    def _adjust(self, scores: Any) -> Any:
        raise NotImplementedError


class NoRepeatNgram(AnswerProcessor):
    """A llama.cpp logits processor: no run of ``n`` tokens appears twice in the answer.

    At each step, every token that would complete an ``n``-gram the answer already contains
    (its last ``n - 1`` tokens followed by that token) has its logit lowered by ``1e4`` per
    earlier occurrence: a finite amount, so a grammar that allows only such tokens still has
    one to pick. Only the answer is examined (tokens from ``start`` on), never the prompt, so
    copying from the prompt stays free. A greedy small model otherwise loops inside a JSON
    string ("The customer's name in their native language. The customer's name ...") until
    ``max_tokens``. The answer's n-grams are kept in a table, updated per token.
    """

    def __init__(self, start: int, n: int) -> None:
        """Args:
        start: The number of prompt tokens (the answer starts there).
        n: The n-gram length (at least 2)."""
        super().__init__(start)
        self.n = n
        self._next: dict[tuple[int, ...], Counter[int]] = {}

    def _reset(self) -> None:
        self._next = {}

    def _take(self, token: int) -> None:
        if len(self._answer) >= self.n:
            prefix = tuple(self._answer[-self.n : -1])
            self._next.setdefault(prefix, Counter())[token] += 1

    def _adjust(self, scores: Any) -> Any:
        width = self.n - 1
        if len(self._answer) >= width:
            for token, count in self._next.get(
                tuple(self._answer[len(self._answer) - width :]), {}
            ).items():
                scores[token] -= 1e4 * count
        return scores


def continuation_logprob(llama: llama_cpp.Llama, context: str, continuation: str) -> float:
    """The model's mean log-probability per token of ``continuation`` after ``context``
    (the caller holds the context lock).

    Exact arithmetic of what the model computes: the context is decoded (BOS first), then
    each continuation token is scored against the log-softmax of the logits before it and
    decoded in turn. The context's KV cache is reset first, so a later completion re-decodes
    its prompt (llama.cpp's prefix reuse simply finds nothing in common).

    Args:
        llama: A loaded context.
        context: The text conditioned on.
        continuation: The text scored (at least one token).

    Returns:
        The mean of ``log p(token | everything before it)`` over the continuation's tokens,
        in nats.
    """
    targets = llama.tokenize(continuation.encode("utf-8"), add_bos=False, special=False)
    llama.reset()  # type: ignore[no-untyped-call]
    llama.eval(llama.tokenize(context.encode("utf-8"), add_bos=True, special=True))
    n_vocab = llama.n_vocab()
    total = 0.0
    for token in targets:
        pointer = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
        row = np.ctypeslib.as_array(pointer, shape=(n_vocab,)).astype(np.float64)
        top = float(row.max())
        total += float(row[token]) - top - float(np.log(np.exp(row - top).sum()))
        llama.eval([token])
    return total / max(len(targets), 1)


def stream_text(
    llama: llama_cpp.Llama, prompt: list[int], **params: Any
) -> Iterator[tuple[str, str | None]]:
    """Generate from ``prompt`` (the caller holds the context lock).

    Args:
        llama: A loaded context.
        prompt: The prompt's tokens.
        **params: ``create_completion`` parameters (``stop``, ``grammar``, ``max_tokens``, ...).

    Returns:
        (text piece, finish reason or None) pairs; the last has the finish reason."""
    chunks: Iterator[Any] = llama.create_completion(prompt, stream=True, **params)  # type: ignore[assignment]
    for chunk in chunks:
        choice = chunk["choices"][0]
        yield choice["text"], choice.get("finish_reason")

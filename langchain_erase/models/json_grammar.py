"""The grammar a JSON answer is decoded under: llama-cpp-python's JSON-schema converter,
with integer bounds enforced (the converter ignores ``minimum``/``maximum``), laid out as
``json.dumps`` writes JSON.

The converter lets optional whitespace follow every token (``space ::= " "?``). On a small
greedy model that freedom decides answers: after ``{ "input": 3`` Gemma-3-270M scores ``0``
(11.06) a hair above `` }`` (11.00) and writes ``3000000001000000``, while after
``{"input": 3`` it scores ``}`` (13.12) far above ``0`` (11.33). So whitespace is fixed to
the layout the prompts' examples use: ``{"a": 2, "b": [1, 2]}`` (a space after ``:`` and
``,``, nowhere else). The language of JSON values is unchanged; only its layout is one.
"""

from __future__ import annotations

import json
import re
from typing import Any

import llama_cpp
from llama_cpp.llama_grammar import RESERVED_NAMES, LlamaGrammar, SchemaConverter

from langchain_erase.models.integer_range import gbnf, integer_bounds, integer_patterns
from langchain_erase.models.llama_runtime import AnswerProcessor

__all__ = [
    "JsonStringScanner",
    "StringLengthPrior",
    "json_gbnf",
    "json_grammar",
    "open_string_length",
]

_SPACE_RULE = re.compile(r"(?m)^space ::= .*$")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_INTEGER_LIMIT = 10**16 - 1  # the converter's own integers have at most 16 digits


class _BoundedConverter(SchemaConverter):
    """llama-cpp-python's converter, plus integer bounds (which it ignores): an integer
    schema with ``minimum``/``maximum``/``exclusive*`` becomes the digit patterns of exactly
    its range (`integer_range`)."""

    def visit(self, schema: Any, name: str) -> Any:
        bounds = (
            integer_bounds(schema, _INTEGER_LIMIT)
            if isinstance(schema, dict) and schema.get("type") == "integer"
            else None
        )
        if bounds is None:
            return super().visit(schema, name)  # type: ignore[no-untyped-call]
        if bounds[0] > bounds[1]:
            raise ValueError(f"the integer schema {schema} admits no value")
        rule = name + "-" if name in RESERVED_NAMES else name or "root"
        expression = gbnf(integer_patterns(*bounds)) + " space"
        return self._add_rule(rule, expression)  # type: ignore[no-untyped-call]


def json_gbnf(schema: dict[str, Any]) -> str:
    """Args:
        schema: A JSON schema (what llama-cpp-python's converter supports).

    Returns:
        Its GBNF grammar in ``json.dumps`` layout."""
    converter = _BoundedConverter(  # type: ignore[no-untyped-call]
        prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
    )
    converter.visit(converter.resolve_refs(json.loads(json.dumps(schema)), "stdin"), "")
    text: str = converter.format_grammar()  # type: ignore[no-untyped-call]
    text = text.replace('":" space', '": "').replace('"," space', '", "')
    return _SPACE_RULE.sub('space ::= ""', text)


def json_grammar(schema: dict[str, Any]) -> LlamaGrammar:
    """Args:
        schema: A JSON schema.

    Returns:
        The parsed grammar (`json_gbnf`), quiet."""
    return LlamaGrammar.from_string(json_gbnf(schema), verbose=False)


class JsonStringScanner:
    """Where a growing JSON text is, fed piece by piece as UTF-8 bytes: inside a string (and
    how many characters into it) or not. Quotes and backslashes are ASCII and never part of
    a multi-byte UTF-8 character, so bytes can be scanned as they come; characters are
    counted by their lead bytes."""

    def __init__(self) -> None:
        self.open_length: int | None = None
        """Characters of the string the text ends inside (after its opening quote, escapes
        counted as written), or None outside strings."""
        self._escaped = False

    def feed(self, data: bytes) -> None:
        """Args:
        data: The next bytes of the text."""
        for byte in data:
            if self.open_length is None:
                if byte == _QUOTE:
                    self.open_length = 0
                continue
            if byte & 0xC0 != 0x80:  # a character's first byte
                self.open_length += 1
            if self._escaped:
                self._escaped = False
            elif byte == _BACKSLASH:
                self._escaped = True
            elif byte == _QUOTE:
                self.open_length = None


def open_string_length(text: str) -> int | None:
    """Args:
        text: The beginning of a JSON text.

    Returns:
        The number of characters of the string it ends inside (after its opening quote,
        escapes counted as written), or None when it does not end inside a string."""
    scanner = JsonStringScanner()
    scanner.feed(text.encode("utf-8"))
    return scanner.open_length


class StringLengthPrior(AnswerProcessor):
    """A llama.cpp logits processor: a soft length prior on the strings of a JSON answer.

    Inside a string, the token ``"`` (the one that closes it) gains

        rate * max(0, length - free) + budget * used / (max_tokens - used)

    nats, where ``length`` is the string's length in characters and ``used`` the answer's
    tokens so far. The first term makes a long string ever more likely to end; the second
    grows without bound as the answer nears ``max_tokens``, so the model closes its string
    while there is room left to finish the JSON. The grammar keeps the answer valid; the
    prior only moves where the model chooses to end a string (a greedy small model
    otherwise writes "This is a joke for a cat to say a joke. This is..." until
    ``max_tokens``). A short answer's short strings decode almost as without it. Each new
    token's bytes go through a `JsonStringScanner`, so a step costs O(1) in the answer.
    """

    def __init__(
        self, llama: llama_cpp.Llama, start: int, max_tokens: int, free: int, rate: float
    ) -> None:
        """Args:
        llama: The context (its tokenizer finds the quote token).
        start: The number of prompt tokens (the answer starts there).
        max_tokens: The answer's token budget.
        free: Characters a string may reach before the length term starts.
        rate: Nats per character beyond ``free``; the budget term is ``20 * rate``."""
        super().__init__(start)
        self.llama = llama
        self.max_tokens = max_tokens
        self.free = free
        self.rate = rate
        self.quote = llama.tokenize(b'"', add_bos=False, special=False)[-1]
        self._scanner = JsonStringScanner()

    def _reset(self) -> None:
        self._scanner = JsonStringScanner()

    def _take(self, token: int) -> None:
        self._scanner.feed(self.llama.detokenize([token]))

    def _adjust(self, scores: Any) -> Any:
        length = self._scanner.open_length
        if length is not None:
            used = len(self._answer)
            budget = used / max(self.max_tokens - used, 1)
            scores[self.quote] += self.rate * (max(0, length - self.free) + 20 * budget)
        return scores

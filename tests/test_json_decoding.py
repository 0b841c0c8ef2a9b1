"""Constrained JSON decoding on a real (small) model: the grammar's one layout, the soft
string-length prior, the repeat guard, and the likelihoods the tool decision rests on."""

from __future__ import annotations

import json

import llama_cpp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_erase import llms
from langchain_erase.models.json_grammar import (
    StringLengthPrior,
    json_gbnf,
    json_grammar,
    open_string_length,
)
from langchain_erase.models.llama_runtime import (
    NoRepeatNgram,
    continuation_logprob,
    load_context,
    stream_text,
)

SCHEMAS = [
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}},
    {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "number"}},
            "tag": {"enum": ["x", "y"]},
            "extra": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
        },
        "required": ["items", "tag"],
    },
    {"type": "object"},
]


@pytest.fixture(scope="module")
def llama() -> llama_cpp.Llama:
    path = str(llms.resolve_model_path("smollm2-135m"))
    return load_context(path, False, n_ctx=256, n_threads=2, seed=0)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_the_grammar_has_one_layout_and_parses(schema: dict[str, object]) -> None:
    text = json_gbnf(schema)
    assert [r for r in text.splitlines() if r.startswith("space ::=")] == ['space ::= ""']
    assert '":" space' not in text and '"," space' not in text  # separators are ": " and ", "
    assert json_grammar(schema) is not None  # llama.cpp accepts it


DECODED = [
    SCHEMAS[0],
    {
        "type": "object",
        "properties": {
            "tag": {"enum": ["x", "y"]},
            "extra": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
            "n": {"type": "number"},
        },
        "required": ["tag", "extra", "n"],
    },
]


@pytest.mark.parametrize("schema", DECODED)
def test_a_decoded_answer_is_valid_and_laid_out_as_json_dumps(
    llama: llama_cpp.Llama, schema: dict[str, object]
) -> None:
    prompt = llama.tokenize(b"A JSON object: ", add_bos=True)
    text = "".join(
        piece
        for piece, _ in stream_text(
            llama, prompt, grammar=json_grammar(schema), max_tokens=80, temperature=0.0
        )
    )
    value = json.loads(text)
    assert json.dumps(value, ensure_ascii=False) == text
    assert set(value) <= set(schema["properties"])  # type: ignore[arg-type]


# json.dumps writes these characters as written (no escapes)
_PLAIN = st.text(
    alphabet=st.characters(blacklist_characters='"\\', blacklist_categories=("Cc", "Cs")),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_PLAIN, _PLAIN, max_size=4))
def test_open_string_length_counts_the_characters_of_the_string_a_prefix_ends_in(
    value: dict[str, str],
) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert open_string_length(text) is None
    offset = 0
    for key, item in value.items():
        for string in (key, item):
            start = text.index(json.dumps(string, ensure_ascii=False), offset) + 1
            for k in range(len(string) + 1):
                assert open_string_length(text[: start + k]) == k
            offset = start + len(string) + 1
            assert open_string_length(text[:offset]) is None


def test_escapes_neither_open_nor_close_a_string() -> None:
    assert open_string_length('{"a": "say \\"hi') == 8
    assert open_string_length('{"a": "x\\\\"') is None
    assert open_string_length('{"a": "x\\\\"}') is None


def test_the_repeat_guard_lowers_only_tokens_that_would_repeat_an_answer_ngram() -> None:
    guard = NoRepeatNgram(start=3, n=3)
    prompt = [7, 8, 9]  # the prompt's own "7 8 9" is never looked at
    scores = np.zeros(12, dtype=np.float32)
    guarded = guard(np.array([*prompt, 1, 2, 5, 1, 2]), scores.copy())
    assert guarded[5] == -1e4  # "1 2 5" already appeared in the answer
    assert np.count_nonzero(guarded) == 1
    assert not np.any(guard(np.array([*prompt, 7, 8]), scores.copy()))


def test_the_string_prior_raises_only_the_closing_quote_and_grows(llama: llama_cpp.Llama) -> None:
    prior = StringLengthPrior(llama, start=0, max_tokens=100, free=4, rate=0.5)
    quote = llama.tokenize(b'"', add_bos=False)[-1]

    def boost(text: str) -> np.ndarray:
        ids = np.array(llama.tokenize(text.encode(), add_bos=False))
        return prior(ids, np.zeros(llama.n_vocab(), dtype=np.float64))

    outside = boost('{"a": 1, ')
    assert not np.any(outside)
    short, long = boost('{"a": "ab'), boost('{"a": "abcdefghijkl')
    assert np.count_nonzero(long) == 1 and long[quote] > short[quote] > 0
    n = len(llama.tokenize(b'{"a": "abcdefghijkl', add_bos=False))
    assert long[quote] == pytest.approx(0.5 * ((12 - 4) + 20 * n / (100 - n)))


def test_continuation_logprob_is_the_models_mean_log_probability(llama: llama_cpp.Llama) -> None:
    """The oracle keeps every position's logits (``logits_all``) and computes the
    log-softmax in numpy, decoding token by token as the scorer does (one batch of all
    tokens gives logits that differ by ~0.04 nats on this quantized model)."""
    context, continuation = "The capital of France is", " Paris, a city."
    path = str(llms.resolve_model_path("smollm2-135m"))
    oracle = load_context(path, False, n_ctx=256, n_threads=2, seed=0, logits_all=True)
    head = oracle.tokenize(context.encode(), add_bos=True)
    tail = oracle.tokenize(continuation.encode(), add_bos=False)
    oracle.eval(head)
    for token in tail:
        oracle.eval([token])
    rows = np.asarray(oracle.scores[len(head) - 1 : len(head) + len(tail) - 1], dtype=np.float64)
    top = rows.max(axis=1, keepdims=True)
    log_softmax = rows - top - np.log(np.exp(rows - top).sum(axis=1, keepdims=True))
    expected = float(np.mean(log_softmax[np.arange(len(tail)), tail]))
    assert continuation_logprob(llama, context, continuation) == pytest.approx(expected, abs=1e-9)
    assert continuation_logprob(llama, context, " Paris") > continuation_logprob(
        llama, context, " banana"
    )


def test_integer_bounds_hold_in_the_decoded_answer(llama: llama_cpp.Llama) -> None:
    schema = {
        "type": "object",
        "properties": {"year": {"type": "integer", "minimum": 1990, "exclusiveMaximum": 2000}},
        "required": ["year"],
    }
    unbounded = {
        "type": "object",
        "properties": {"year": {"type": "integer"}},
        "required": ["year"],
    }
    prompt = llama.tokenize(b'The year 2024 in JSON: {"year": 2024}. Again: ', add_bos=True)

    def decode(target: dict[str, object]) -> int:
        text = "".join(
            piece
            for piece, _ in stream_text(
                llama, prompt, grammar=json_grammar(target), max_tokens=24, temperature=0.0
            )
        )
        return int(json.loads(text)["year"])

    assert decode(unbounded) == 2024  # what the model writes when nothing bounds it
    assert 1990 <= decode(schema) < 2000


def test_a_range_with_no_integer_is_refused() -> None:
    with pytest.raises(ValueError, match="admits no value"):
        json_gbnf({"type": "integer", "minimum": 3, "maximum": 2})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=40), st.integers(2, 5))
def test_the_repeat_guard_kept_per_token_equals_one_built_from_the_whole_answer(
    answer: list[int], n: int
) -> None:
    prompt = [9, 9, 9]
    grown = NoRepeatNgram(start=len(prompt), n=n)
    for end in range(len(answer) + 1):
        ids = np.array([*prompt, *answer[:end]])
        fresh = NoRepeatNgram(start=len(prompt), n=n)(ids, np.zeros(10))
        assert np.array_equal(grown(ids, np.zeros(10)), fresh)
    counts = np.zeros(10)  # the oracle: every earlier n-gram whose head is the answer's tail
    width = n - 1
    if len(answer) >= width:
        for i in range(len(answer) - width):
            if answer[i : i + width] == answer[len(answer) - width :]:
                counts[answer[i + width]] -= 1e4
    assert np.array_equal(
        NoRepeatNgram(len(prompt), n)(np.array([*prompt, *answer]), np.zeros(10)), counts
    )


def test_the_string_prior_kept_per_token_equals_the_whole_text_scan(
    llama: llama_cpp.Llama,
) -> None:
    text = '{"name": "Zoë \\"Z\\" Ångström", "note": "a longer string of words, on and on'
    tokens = llama.tokenize(text.encode(), add_bos=False)
    grown = StringLengthPrior(llama, start=0, max_tokens=200, free=4, rate=0.5)
    quote = grown.quote
    for end in range(1, len(tokens) + 1):
        ids = np.array(tokens[:end])
        fresh = StringLengthPrior(llama, start=0, max_tokens=200, free=4, rate=0.5)
        assert (
            grown(ids, np.zeros(llama.n_vocab()))[quote]
            == fresh(ids, np.zeros(llama.n_vocab()))[quote]
        )
        length = open_string_length(llama.detokenize(tokens[:end]).decode("utf-8", "replace"))
        expected = 0.0 if length is None else 0.5 * (max(0, length - 4) + 20 * end / (200 - end))
        assert fresh(ids, np.zeros(llama.n_vocab()))[quote] == pytest.approx(expected)

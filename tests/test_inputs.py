"""Inputs like LangChain's selectors: only input keys are read, JSON values, duplicates refused."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompts import (
    ChatPromptTemplate,
    MessagesPlaceholder,
)
from prompt_helpers import chat_few_shot

from langchain_erase import (
    DuplicateExampleError,
    ERASEExampleSelector,
    InvalidExampleError,
    default_example_id,
)
from langchain_erase import inputs as inputs_module
from langchain_erase.inputs import (
    canonical_json,
    embedded_text,
    embedded_texts,
    validate_example,
)

EMB = DeterministicFakeEmbedding(size=16)
EXAMPLES = [{"input": f"word{i}", "output": f"WORD{i}"} for i in range(30)]
HISTORY = [HumanMessage("hi, I am Ann"), AIMessage("Hello Ann")]


def selector(**kw: Any) -> ERASEExampleSelector:
    return ERASEExampleSelector.from_examples(
        kw.pop("examples", EXAMPLES), EMB, k=3, input_keys=["input"], **kw
    )


def test_other_prompt_variables_pass_through_unread() -> None:
    sel = selector()
    plain = sel.select_examples({"input": "hello"})
    # messages, a None and an arbitrary object: none of them is the selector's business
    extra = {"history": HISTORY, "user": None, "handle": object()}
    assert sel.select_examples({"input": "hello", **extra}) == plain
    assert [s.id for s in sel.select_with_ids({"input": "hello", **extra})] == [
        default_example_id(e) for e in plain
    ]


def test_without_input_keys_every_variable_is_read_and_the_error_says_so() -> None:
    sel = ERASEExampleSelector.from_examples(EXAMPLES, EMB, k=3)
    assert sel.select_examples({"input": "x", "output": "y"})
    with pytest.raises(InvalidExampleError, match="set input_keys"):
        sel.select_examples({"input": "x", "history": HISTORY})


def test_few_shot_chat_template_with_a_history_placeholder() -> None:
    sel = selector()
    few_shot = chat_few_shot(sel)
    chat = ChatPromptTemplate.from_messages(
        [("system", "Uppercase."), few_shot, MessagesPlaceholder("history"), ("human", "{input}")]
    )
    messages = chat.invoke({"input": "hello", "history": HISTORY}).to_messages()
    chosen = sel.select_examples({"input": "hello"})
    shots = [v for e in chosen for v in (e["input"], e["output"])]
    assert [m.content for m in messages] == [
        "Uppercase.",
        *shots,
        *[m.content for m in HISTORY],
        "hello",
    ]


VALUES: list[Any] = [3, 2.5, True, None, [1, "two", [3.0]], {"b": 1, "a": [True, None]}]


@pytest.mark.parametrize("value", VALUES, ids=[type(v).__name__ for v in VALUES])
def test_non_string_values_are_stored_ided_and_embedded_as_canonical_json(value: Any) -> None:
    example = {"input": value, "output": value}
    sel = selector()
    eid = sel.add_example(example)
    text = json.dumps(example, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert eid == hashlib.sha256(text.encode()).hexdigest()[:32]
    assert sel.get_example(eid) == example
    expected_text = value if isinstance(value, str) else canonical_json(value)
    assert embedded_text(sel.get_example(eid), ["input"]) == expected_text
    # the query with the same value embeds the same text, so `similar` finds the example itself
    sim = selector(selection="similar")
    sim.add_example(example)
    assert example in sim.select_examples({"input": value})
    assert sim.verify()


def test_examples_are_copied_and_tuples_become_lists() -> None:
    nested = {"steps": ["a", "b"]}
    sel = selector()
    eid = sel.add_example({"input": "q", "output": nested, "pair": (1, 2)})
    nested["steps"].append("mutated")
    assert sel.get_example(eid) == {"input": "q", "output": {"steps": ["a", "b"]}, "pair": [1, 2]}
    assert eid == default_example_id(
        {"input": "q", "output": {"steps": ["a", "b"]}, "pair": [1, 2]}
    )


def test_string_examples_keep_their_ids() -> None:
    example = {"input": "héllo", "output": "x"}
    raw = '{"input":"héllo","output":"x"}'
    assert canonical_json(example) == raw
    assert default_example_id(example) == hashlib.sha256(raw.encode()).hexdigest()[:32]


def test_json_values_survive_the_store_and_snapshots(tmp_path: Path) -> None:
    example = {"input": "q", "output": {"n": 1.5, "tags": ["x", None, False]}}
    sel = ERASEExampleSelector.open(tmp_path / "s.db", EMB, k=2, input_keys=["input"])
    eid = sel.add_example(example)
    digest = sel.state_digest()
    sel.close()
    reopened = ERASEExampleSelector.open(tmp_path / "s.db", EMB, k=2, input_keys=["input"])
    assert reopened.get_example(eid) == example and reopened.state_digest() == digest
    reopened.close()
    memory = ERASEExampleSelector.from_examples([example], EMB, k=2, input_keys=["input"])
    memory.save(tmp_path / "snap.npz")
    loaded = ERASEExampleSelector.load(tmp_path / "snap.npz", EMB)
    assert loaded.get_example(eid) == example and loaded.state_digest() == digest


def test_exact_duplicates_are_refused_and_deduplication_is_one_line() -> None:
    sel = selector()
    before = sel.state_digest()
    with pytest.raises(DuplicateExampleError):
        sel.add_examples([{"input": "new", "output": "N"}, EXAMPLES[0]])
    assert sel.state_digest() == before and len(sel) == len(EXAMPLES)
    rows = [*EXAMPLES, dict(EXAMPLES[0]), dict(EXAMPLES[1])]
    with pytest.raises(DuplicateExampleError):
        selector(examples=rows)
    deduplicated = list({default_example_id(e): e for e in rows}.values())
    assert selector(examples=deduplicated).state_digest() == before
    # the same content under two caller-given ids is two members
    twice = ERASEExampleSelector(EMB, k=2, input_keys=["input"])
    assert twice.add_examples([EXAMPLES[0], EXAMPLES[0]], ids=["a", "b"]) == ["a", "b"]


def test_validate_example_reports_where_the_bad_value_is() -> None:
    with pytest.raises(InvalidExampleError, match=r"example\['output'\]\['x'\]\[1\]"):
        validate_example({"input": "q", "output": {"x": [1, {2}]}}, ["input"])


def test_rendered_values_cover_how_prompts_and_embeddings_show_a_value() -> None:
    from langchain_core.prompts import PromptTemplate

    from langchain_erase.inputs import rendered_values

    example = {"input": "2 + 2", "output": 4, "steps": ["add", "carry"], "ok": True}
    prompt = PromptTemplate.from_template("{input} = {output} by {steps} ({ok})").format(**example)
    texts = rendered_values(example)
    assert all(t in texts for t in ("2 + 2", "4", "['add', 'carry']", '["add","carry"]', "True"))
    assert all(t in prompt for t in ("2 + 2", "4", "['add', 'carry']", "True"))
    assert len(texts) == len(set(texts))


def test_cache_eviction_finds_deleted_examples_with_non_string_values() -> None:
    from llama_cpp.llama_cache import LlamaRAMCache
    from test_llms import _FakeLlama

    from langchain_erase.llms import evict_on_delete

    llama = _FakeLlama(LlamaRAMCache())
    for prompt in ("Input: seven times six Output: 42", "Input: other Output: 1"):
        llama.cache.cache_state[tuple(llama.tokenize(prompt.encode(), add_bos=False))] = object()
    sel = ERASEExampleSelector.from_examples(
        [{"input": "six times seven", "output": 42}, {"input": "other", "output": 1}],
        EMB,
        k=1,
        input_keys=["input"],
        ids=["a", "b"],
    )
    evict_on_delete(sel, llama)
    sel.delete_example("a")  # its output 42 was shown in the first cached prompt
    assert len(llama.cache.cache_state) == 1


# ------------------------------------------------ fast paths against the reference code
class _Str(str):
    """A str subclass: the fast path leaves it to the reference code."""


_SCALARS = (
    st.text(alphabet=st.characters(codec=None, categories=None), max_size=6)
    | st.sampled_from(["\ud800", "a\udfff", "é", "", "ascii"])
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.builds(_Str, st.text(max_size=3))
)
_KEYS = st.text(max_size=4) | st.sampled_from(["\ud83d", "k"]) | st.integers(0, 3) | st.none()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_KEYS, inner, max_size=3)
    ),
    max_leaves=12,
)


def _reference_validate(example: object) -> tuple[str, Any]:
    """validate_example as it was: the recursive `_plain` for every value."""
    if not isinstance(example, Mapping) or not example:
        return ("error", f"example must be a non-empty dict, got {example!r:.80}")
    try:
        return ("ok", inputs_module._plain(example, "example", 0))
    except InvalidExampleError as err:
        return ("error", str(err))


def _typed(value: Any) -> Any:
    """Value with every type spelled out (True == 1 and 1.0 == 1 would hide a change)."""
    if isinstance(value, dict):
        return ("dict", [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    return (type(value).__name__, repr(value))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=4) | _VALUES)
def test_validate_example_fast_path_equals_the_reference(example: Any) -> None:
    expected = _reference_validate(example)
    try:
        got: tuple[str, Any] = ("ok", validate_example(example, ()))
    except InvalidExampleError as err:
        got = ("error", str(err))
    assert got[0] == expected[0]
    assert _typed(got[1]) == _typed(expected[1])
    if got[0] == "ok":  # a copy: no container is shared with the caller's
        assert got[1] is not example


@pytest.mark.parametrize("depth", [62, 63, 64, 65, 66])
def test_validate_example_fast_path_keeps_the_depth_limit(depth: int) -> None:
    for leaf in ([], 1, "x"):
        value: Any = leaf
        for _ in range(depth):
            value = [value]
        example = {"a": value}
        expected = _reference_validate(example)
        try:
            got: tuple[str, Any] = ("ok", validate_example(example, ()))
        except InvalidExampleError as err:
            got = ("error", str(err))
        assert _typed(got) == _typed(expected)


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_canonical_json_is_json_dumps_with_the_canonical_settings(value: Any) -> None:
    def dumps() -> str:
        return json.dumps(
            value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )

    try:
        expected: tuple[str, str] = ("ok", dumps())
    except (ValueError, TypeError) as err:
        expected = (type(err).__name__, str(err))
    try:
        got: tuple[str, str] = ("ok", canonical_json(value))
    except (ValueError, TypeError) as err:
        got = (type(err).__name__, str(err))
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.dictionaries(st.sampled_from("abc"), _VALUES, min_size=3), max_size=4),
    st.sampled_from([None, [], ["a"], ["c", "a"], ["b", "c", "a"]]),
)
def test_embedded_texts_is_embedded_text_per_example(
    examples: list[dict[str, Any]], input_keys: list[str] | None
) -> None:
    clean = []
    for example in examples:
        try:
            clean.append(validate_example(example, ()))
        except InvalidExampleError:
            continue
    assert embedded_texts(clean, input_keys) == [embedded_text(e, input_keys) for e in clean]

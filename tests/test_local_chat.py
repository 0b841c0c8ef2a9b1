"""The local chat model's parts that need no generation: tool plans and call parsing,
message conversion, and (on the small SmolLM2 GGUF) quiet loading, own-tokenizer counts,
typed errors and pickling."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_erase import llms
from langchain_erase.errors import (
    InvalidParameterError,
    PromptTooLongError,
    UnsupportedContentError,
)
from langchain_erase.models.chat_model import to_turns
from langchain_erase.models.llama_runtime import Turn
from langchain_erase.models.tool_calls import parse_call, plan_tools

ROOT = Path(__file__).resolve().parents[1]


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def shout(text: str) -> str:
    """Shout a text."""
    return text.upper()


TOOLS = [convert_to_openai_tool(add), convert_to_openai_tool(shout)]


def test_forced_choices_decode_under_the_chosen_tools_schema() -> None:
    one = plan_tools(TOOLS, "add")
    assert one is not None and one.schema is not None
    assert one.schema["properties"]["name"] == {"const": "add"}
    assert one.schema["properties"]["arguments"]["required"] == ["a", "b"]
    for choice in ("any", "required", True):
        plan = plan_tools(TOOLS, choice)
        assert plan is not None and plan.schema is not None
        assert [o["properties"]["name"]["const"] for o in plan.schema["anyOf"]] == ["add", "shout"]
    as_dict = plan_tools(TOOLS, {"type": "function", "function": {"name": "shout"}})
    assert as_dict is not None and as_dict.schema is not None
    assert as_dict.schema["properties"]["name"] == {"const": "shout"}
    auto = plan_tools(TOOLS, "auto")
    assert auto is not None and auto.schema is None and auto.describe
    none = plan_tools(TOOLS, "none")
    assert none is not None and not none.describe
    assert plan_tools(None, "any") is None


@pytest.mark.parametrize("choice", ["nosuch", {"type": "function", "function": {"name": "x"}}, 3])
def test_a_choice_naming_no_bound_tool_is_refused(choice: object) -> None:
    with pytest.raises(InvalidParameterError, match="tool_choice"):
        plan_tools(TOOLS, choice)


def test_only_a_whole_answer_calling_a_bound_tool_is_a_call() -> None:
    call = parse_call('{"name": "add", "arguments": {"a": 2, "b": 5}}', TOOLS)
    assert call is not None and call["name"] == "add" and call["args"] == {"a": 2, "b": 5}
    assert call["id"] and call["type"] == "tool_call"
    for text in ('{"name": "nosuch", "arguments": {}}', "add(2, 5)", '{"name": "add"} and more'):
        assert parse_call(text, TOOLS) is None


def test_messages_become_turns_and_media_is_refused() -> None:
    call = {"name": "add", "args": {"a": 1, "b": 2}, "id": "c1", "type": "tool_call"}
    turns = to_turns(
        [
            SystemMessage("Be brief."),
            HumanMessage([{"type": "text", "text": "1+2?"}]),
            AIMessage("", tool_calls=[call]),  # type: ignore[list-item]
            ToolMessage("3", tool_call_id="c1", name="add"),
        ]
    )
    assert turns == [
        Turn("system", "Be brief."),
        Turn("user", "1+2?"),
        Turn("assistant", json.dumps({"name": "add", "arguments": {"a": 1, "b": 2}})),
        Turn("user", "The tool add returned: 3"),
    ]
    image = {"type": "image", "url": "https://example.com/cat.png"}
    with pytest.raises(UnsupportedContentError, match="image"):
        to_turns([HumanMessage([image])])  # type: ignore[list-item]


def test_loading_prints_nothing_from_llama_cpp() -> None:
    script = "from langchain_erase import llms; llms.local_chat_model('smollm2-135m', n_ctx=64)"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout == ""


def test_counts_use_the_models_tokenizer_and_a_long_prompt_is_refused() -> None:
    chat = llms.local_chat_model("smollm2-135m", n_ctx=64, max_tokens=4)
    assert chat.get_num_tokens("hello world") == len(chat.client.tokenize(b"hello world", False))
    assert chat.get_num_tokens_from_messages([HumanMessage("hello world")]) > 2
    with pytest.raises(PromptTooLongError, match="n_ctx"):
        chat.invoke("word " * 200)
    with pytest.raises(InvalidParameterError, match="unsupported call arguments"):
        chat.invoke("hi", frobnicate=1)


def test_models_pickle_and_deepcopy_by_path_and_parameters() -> None:
    chat = llms.local_chat_model("smollm2-135m", n_ctx=64, max_tokens=3)
    llm = llms.local_llm("smollm2-135m", n_ctx=64, max_tokens=3)
    for model in (chat, llm):
        for twin in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
            assert type(twin) is type(model)
            assert twin.client is not model.client  # its own context, never shared
            assert twin.model_path == model.model_path and twin.n_ctx == model.n_ctx
    assert pickle.loads(pickle.dumps(llm)).invoke("1, 2, 3,") == llm.invoke("1, 2, 3,")

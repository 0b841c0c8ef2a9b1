"""The local chat model's parts that need no generation: tool plans and the tool decision
rule, calls and their prompts, message conversion, and (on the small SmolLM2 GGUF) quiet
loading, own-tokenizer counts, typed errors and pickling."""

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
from pydantic import BaseModel, Field

from langchain_erase import llms
from langchain_erase.errors import (
    InvalidParameterError,
    PromptTooLongError,
    UnsupportedContentError,
)
from langchain_erase.models.chat_model import to_turns
from langchain_erase.models.llama_model import MODEL_PATH_ENV
from langchain_erase.models.llama_runtime import Turn
from langchain_erase.models.local_models import ChatLocalLlamaCpp, LocalLlamaCpp
from langchain_erase.models.tool_calls import (
    NEUTRAL_TOOL,
    arguments_instructions,
    make_call,
    plan_tools,
    relevance_context,
)

ROOT = Path(__file__).resolve().parents[1]


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def shout(text: str) -> str:
    """Shout a text."""
    return text.upper()


TOOLS = [convert_to_openai_tool(add), convert_to_openai_tool(shout)]


def test_plans_name_the_tools_a_call_may_make() -> None:
    def names(plan: object) -> list[str]:
        assert plan is not None
        return [t["function"]["name"] for t in plan.candidates]  # type: ignore[attr-defined]

    one = plan_tools(TOOLS, "add")
    assert names(one) == ["add"] and one is not None and one.forced
    for choice in ("any", "required", True):
        plan = plan_tools(TOOLS, choice)
        assert names(plan) == ["add", "shout"] and plan is not None and plan.forced
    as_dict = plan_tools(TOOLS, {"type": "function", "function": {"name": "shout"}})
    assert names(as_dict) == ["shout"]
    for choice in ("auto", None):
        auto = plan_tools(TOOLS, choice)
        assert names(auto) == ["add", "shout"] and auto is not None and not auto.forced
    assert plan_tools(TOOLS, "none") is None
    assert plan_tools(None, "any") is None


@pytest.mark.parametrize("choice", ["nosuch", {"type": "function", "function": {"name": "x"}}, 3])
def test_a_choice_naming_no_bound_tool_is_refused(choice: object) -> None:
    with pytest.raises(InvalidParameterError, match="tool_choice"):
        plan_tools(TOOLS, choice)


class Likelihoods:
    """A scorer given as a table: the mean log-probability of the request after each
    description (what ``continuation_logprob`` computes on a model), recording its calls."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, context: str, continuation: str) -> float:
        self.calls.append(context)
        assert continuation == " 2 plus 5?"
        description = next(d for d in self.table if relevance_context(d) == context)
        return self.table[description]


def test_the_tool_of_highest_pmi_is_called_when_it_clears_the_threshold() -> None:
    auto, forced = plan_tools(TOOLS, "auto"), plan_tools(TOOLS, "any")
    assert auto is not None and forced is not None
    scores = Likelihoods({NEUTRAL_TOOL: -3.0, "Add two numbers.": -2.5, "Shout a text.": -3.2})
    chosen = auto.choose("2 plus 5?", scores, threshold=0.4)  # PMI add 0.5, shout -0.2
    assert chosen is not None and chosen["function"]["name"] == "add"
    assert auto.choose("2 plus 5?", scores, threshold=0.5) is None  # must exceed it
    assert len(scores.calls) == 6  # the baseline and one score per tool, each time
    chosen = forced.choose("2 plus 5?", scores, threshold=9.0)  # forced: the best, always
    assert chosen is not None and chosen["function"]["name"] == "add"


def test_after_a_tools_result_auto_answers_in_text_and_one_forced_tool_needs_no_scores() -> None:
    def never(context: str, continuation: str) -> float:
        raise AssertionError("scored")

    auto, named = plan_tools(TOOLS, "auto"), plan_tools(TOOLS, "shout")
    assert auto is not None and named is not None
    assert auto.choose(None, never, threshold=0.0) is None
    chosen = named.choose("anything", never, threshold=0.0)
    assert chosen is not None and chosen["function"]["name"] == "shout"


def test_a_call_is_the_tool_and_the_decoded_arguments() -> None:
    call = make_call(TOOLS[0], '{"a": 2, "b": 5}')
    assert call["name"] == "add" and call["args"] == {"a": 2, "b": 5}
    assert call["id"].startswith("call_") and call["type"] == "tool_call"
    with pytest.raises(ValueError, match="JSON object"):
        make_call(TOOLS[0], "[2, 5]")


def test_the_arguments_prompt_shows_the_schema_without_its_bounds() -> None:
    class Bounded(BaseModel):
        """Scale a number."""

        value: int = Field(gt=-1000, lt=1000, description="The number.")
        label: str = Field(max_length=8, pattern="^[a-z]+$")

    text = arguments_instructions(convert_to_openai_tool(Bounded))
    assert '"value": {"description": "The number.", "type": "integer"}' in text
    assert '"required": ["value", "label"]' in text
    for hidden in ("1000", "maxLength", "pattern", "exclusive"):
        assert hidden not in text


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


def test_the_gguf_comes_from_the_argument_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MODEL_PATH_ENV, raising=False)
    with pytest.raises(ValueError, match=MODEL_PATH_ENV):  # pydantic wraps it
        LocalLlamaCpp(n_ctx=64)
    path = str(llms.resolve_model_path("smollm2-135m"))
    monkeypatch.setenv(MODEL_PATH_ENV, path)
    assert ChatLocalLlamaCpp(n_ctx=64).model_path == path

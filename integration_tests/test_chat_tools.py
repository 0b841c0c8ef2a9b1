"""``tool_choice="auto"`` on Gemma-3-270M: the model's likelihoods decide (see
``langchain_erase.models.tool_calls``). The standard suite's ``test_agent_loop`` checks that a
weather question calls the weather tool; these check the other side of the decision."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from langchain_erase import llms
from langchain_erase.models.local_models import ChatLocalLlamaCpp

pytestmark = pytest.mark.integration


def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return "It's sunny."


@pytest.fixture(scope="module")
def chat() -> ChatLocalLlamaCpp:
    return llms.local_chat_model("gemma-3-270m", n_ctx=1024, n_threads=2, max_tokens=24)


def test_a_request_no_tool_serves_is_answered_in_text(chat: ChatLocalLlamaCpp) -> None:
    answer = chat.bind_tools([get_weather]).invoke("Who wrote Hamlet?")
    assert answer.tool_calls == [] and isinstance(answer.content, str) and answer.content


def test_after_the_tools_result_the_model_answers_in_text(chat: ChatLocalLlamaCpp) -> None:
    question = HumanMessage("What is the weather in Paris?")
    bound = chat.bind_tools([get_weather])
    call = bound.invoke([question])
    assert [c["name"] for c in call.tool_calls] == ["get_weather"]
    result = ToolMessage("It's sunny.", tool_call_id=call.tool_calls[0]["id"], name="get_weather")
    answer = bound.invoke([question, call, result])
    assert isinstance(answer, AIMessage) and answer.tool_calls == [] and answer.content


def test_the_threshold_sets_how_readily_a_tool_is_called(chat: ChatLocalLlamaCpp) -> None:
    question = "What is the weather in Paris?"
    reluctant = chat.model_copy(update={"tool_call_threshold": 5.0})
    assert reluctant.bind_tools([get_weather]).invoke(question).tool_calls == []
    forced = reluctant.bind_tools([get_weather], tool_choice="any").invoke(question)
    assert forced.tool_calls[0]["args"] == {"location": "Paris"}

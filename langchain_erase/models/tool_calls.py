"""Tool calls on a small local model, in two steps: the model decides which tool to call (if
any), then writes the call's arguments under a grammar built from the tool's JSON schema
(llama.cpp's GBNF), so a call is always valid JSON of that schema (unless cut off at
``max_tokens``: `OutputTruncatedError`).

The decision is the model's, by pointwise mutual information (PMI): how much more likely
the model finds the user's request after the tool's description than after a neutral
description, in nats per token of the request,

    PMI(tool) = mean log p(request | "Tool: <description>")
              - mean log p(request | "Tool: Answer a question.")

A small base model such as Gemma-3-270M cannot be asked "should a tool be called?" (it
answers with a tool name whatever the request, or parrots the question), but its
likelihoods carry the signal: a weather question is far more likely after "Get the weather
at a location." than after a neutral text; "Who wrote Hamlet?" is not. ``tool_choice``:

- ``"auto"`` (the default when tools are bound): the tool of highest PMI is called when its
  PMI exceeds ``threshold``; otherwise the model answers in text. After a tool's result (the
  conversation ends with a `ToolMessage`) the model answers in text;
- ``"any"`` / ``"required"`` / ``True``: the tool of highest PMI is called;
- a tool name, or ``{"type": "function", "function": {"name": ...}}``: that tool is called;
- ``"none"``: no call.

The arguments are written by the model with only the chosen tool in view (its description
and parameter schema), which keeps a small model from copying the tool's name into them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import ToolCall

from langchain_erase.errors import InvalidParameterError

__all__ = [
    "NEUTRAL_TOOL",
    "ToolPlan",
    "arguments_instructions",
    "arguments_schema",
    "chosen_name",
    "make_call",
    "plan_tools",
    "relevance_context",
]

NEUTRAL_TOOL = "Answer a question."
"""The description the PMI's baseline conditions on."""

Scorer = Callable[[str, str], float]
"""``(context, continuation) -> mean log-probability per token of the continuation``."""


def _names(tools: Sequence[dict[str, Any]]) -> list[str]:
    return [t["function"]["name"] for t in tools]


def chosen_name(tool_choice: Any, tools: Sequence[dict[str, Any]]) -> str | None:
    """The tool a ``tool_choice`` forces, or None; "any"/"required"/True give "" (any tool).

    Args:
        tool_choice: The caller's choice.
        tools: The bound tools.

    Returns:
        A tool name, "" for any tool, or None for no forced call.

    Raises:
        InvalidParameterError: An unknown tool name or an unknown form of choice.
    """
    if tool_choice is None or tool_choice in ("auto", "none", False):
        return None
    if tool_choice in ("any", "required", True):
        return ""
    name = tool_choice
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name", tool_choice.get("name"))
    if not isinstance(name, str) or name not in _names(tools):
        raise InvalidParameterError(
            f"tool_choice {tool_choice!r} names no bound tool (bound: {_names(tools)}); use "
            "'auto', 'any', 'required', 'none', a tool name or {'type': 'function', "
            "'function': {'name': ...}}"
        )
    return name


def relevance_context(description: str) -> str:
    """Args:
        description: A tool's description (or `NEUTRAL_TOOL`).

    Returns:
        The text the request is scored after (the request follows with a leading space)."""
    return f"Tool: {description}\nRequest:"


def _description(tool: dict[str, Any]) -> str:
    function = tool["function"]
    return str(function.get("description") or function["name"])


@dataclass(frozen=True)
class ToolPlan:
    """What one call may do with its bound tools.

    Attributes:
        candidates: The OpenAI-format tools the call may call.
        forced: Whether a call must be made (else the model may answer in text).
    """

    candidates: tuple[dict[str, Any], ...]
    forced: bool

    def choose(self, request: str | None, score: Scorer, threshold: float) -> dict[str, Any] | None:
        """The tool to call, or None for a text answer.

        Args:
            request: The user's latest request, or None when the conversation ends with a
                tool's result (a call not forced then answers in text).
            score: The model's scorer (`llama_runtime.continuation_logprob` on its context).
            threshold: The PMI (nats per token) a tool must exceed when not forced.

        Returns:
            A candidate tool, or None.
        """
        if self.forced and len(self.candidates) == 1:
            return self.candidates[0]
        if request is None and not self.forced:
            return None
        text = " " + (request or "")
        baseline = score(relevance_context(NEUTRAL_TOOL), text)
        pmi = [score(relevance_context(_description(t)), text) - baseline for t in self.candidates]
        best = max(range(len(pmi)), key=pmi.__getitem__)
        return self.candidates[best] if self.forced or pmi[best] > threshold else None


def plan_tools(tools: Sequence[dict[str, Any]] | None, tool_choice: Any) -> ToolPlan | None:
    """Args:
        tools: OpenAI-format tools bound to the call, or None.
        tool_choice: The call's ``tool_choice``.

    Returns:
        The plan, or None when no tools are bound or ``tool_choice`` is "none".

    Raises:
        InvalidParameterError: ``tool_choice`` names no bound tool."""
    if not tools:
        return None
    name = chosen_name(tool_choice, tools)
    if tool_choice in ("none", False):
        return None
    if name is None:
        return ToolPlan(tuple(tools), forced=False)
    return ToolPlan(tuple(t for t in tools if name in ("", t["function"]["name"])), forced=True)


def arguments_schema(tool: dict[str, Any]) -> dict[str, Any]:
    """Args:
        tool: An OpenAI-format tool.

    Returns:
        The JSON schema its arguments are decoded under."""
    return dict(tool["function"].get("parameters") or {"type": "object", "properties": {}})


_SHOWN_KEYS = {"type", "description", "properties", "required", "items", "enum", "anyOf"}


def _shown(schema: Any) -> Any:
    """The schema as shown to the model: structure, types, descriptions and enums only.
    Bounds, lengths and patterns are left out: the grammar enforces them (all but bounds on
    non-integer numbers), and a small model copies their numbers into its answer
    (``"lt": 1000`` turned ``3`` into ``3000...``)."""
    if isinstance(schema, list):
        return [_shown(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kept = {k: v for k, v in schema.items() if k in _SHOWN_KEYS}
    if "properties" in kept:
        kept["properties"] = {name: _shown(v) for name, v in kept["properties"].items()}
    for key in ("items", "anyOf"):
        if key in kept:
            kept[key] = _shown(kept[key])
    return kept


def arguments_instructions(tool: dict[str, Any]) -> str:
    """Args:
        tool: The OpenAI-format tool being called.

    Returns:
        The system text that asks for its arguments: the call format with one worked
        example (a base model follows an example far better than an instruction), then the
        tool with its parameters' JSON schema (the grammar holds the answer to it)."""
    function = tool["function"]
    parameters = json.dumps(_shown(arguments_schema(tool)), ensure_ascii=False)
    return (
        "You can call this tool. To call the tool, answer with only a JSON object of its "
        "arguments, copying the argument values exactly as the user's request gives them. "
        'For example, for the request "What is add(2, 5)?" and a tool add with arguments a '
        'and b, the answer is {"a": 2, "b": 5}.\n\n'
        f"- {function['name']}: {function.get('description', '')}\n"
        f"  arguments (JSON schema): {parameters}"
    )


def make_call(tool: dict[str, Any], arguments: str) -> ToolCall:
    """Args:
        tool: The tool called.
        arguments: The JSON object the model wrote under the tool's grammar.

    Returns:
        The LangChain tool call (a fresh ``call_`` id).

    Raises:
        ValueError: ``arguments`` is not a JSON object (cannot happen under the grammar
            unless the answer was cut off, which the caller reports first)."""
    args = json.loads(arguments)
    if not isinstance(args, dict):
        raise ValueError(f"tool arguments must be a JSON object, got {arguments!r}")
    return ToolCall(
        name=tool["function"]["name"],
        args=args,
        id=f"call_{uuid.uuid4().hex[:24]}",
        type="tool_call",
    )

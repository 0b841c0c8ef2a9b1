"""Tool calls and structured output on a small local model, made reliable by constrained
decoding: the model's answer is decoded under a grammar built from a JSON schema
(llama.cpp's GBNF), so a forced tool call or a structured answer is always valid JSON of
that schema (unless cut off at ``max_tokens``: `OutputTruncatedError`).

A tool call is decoded as ``{"name": <tool>, "arguments": {...}}``; the tools are described
to the model in the system text. ``tool_choice``:

- ``"auto"`` (the default when tools are bound): the model answers in text, or with the call
  object (recognised when the whole answer parses as a call of a bound tool);
- ``"any"`` / ``"required"`` / ``True``: a call of one of the tools (grammar);
- a tool name, or ``{"type": "function", "function": {"name": ...}}``: a call of that tool;
- ``"none"``: no call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import ToolCall

from langchain_erase.errors import InvalidParameterError

__all__ = ["ToolPlan", "json_object_schema", "parse_call", "plan_tools", "tool_instructions"]


@dataclass(frozen=True)
class ToolPlan:
    """What one call does with its bound tools.

    Attributes:
        tools: The OpenAI-format tool dicts bound to the model.
        schema: The JSON schema the answer is decoded under, or None (free text).
        describe: Whether the tools are described in the prompt.
    """

    tools: tuple[dict[str, Any], ...]
    schema: dict[str, Any] | None
    describe: bool


def _names(tools: Sequence[dict[str, Any]]) -> list[str]:
    return [t["function"]["name"] for t in tools]


def _call_schema(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    return {
        "type": "object",
        "properties": {"name": {"const": function["name"]}, "arguments": parameters},
        "required": ["name", "arguments"],
    }


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


def plan_tools(tools: Sequence[dict[str, Any]] | None, tool_choice: Any) -> ToolPlan | None:
    """Args:
        tools: OpenAI-format tools bound to the call, or None.
        tool_choice: The call's ``tool_choice``.

    Returns:
        The plan, or None when no tools are bound."""
    if not tools:
        return None
    name = chosen_name(tool_choice, tools)
    if tool_choice in ("none", False):
        return ToolPlan(tuple(tools), None, describe=False)
    if name is None:
        return ToolPlan(tuple(tools), None, describe=True)
    options = [t for t in tools if name in ("", t["function"]["name"])]
    schemas = [_call_schema(t) for t in options]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return ToolPlan(tuple(tools), schema, describe=True)


def tool_instructions(tools: Sequence[dict[str, Any]]) -> str:
    """Args:
        tools: OpenAI-format tools.

    Returns:
        The system text that describes them and the call format."""
    lines = [
        "You can call these tools. To call one, answer with only a JSON object "
        '{"name": <tool name>, "arguments": <its arguments>}, copying the argument values '
        "exactly as the user's request gives them. For example, for the request "
        '"What is add(2, 5)?" and a tool add with arguments a and b, the answer is '
        '{"name": "add", "arguments": {"a": 2, "b": 5}}.',
        "",
    ]
    for tool in tools:
        function = tool["function"]
        parameters = json.dumps(function.get("parameters", {}), ensure_ascii=False)
        lines.append(f"- {function['name']}: {function.get('description', '')}")
        lines.append(f"  arguments (JSON schema): {parameters}")
    return "\n".join(lines)


def parse_call(text: str, tools: Sequence[dict[str, Any]]) -> ToolCall | None:
    """Args:
        text: The model's whole answer.
        tools: The bound tools.

    Returns:
        The tool call the answer is, or None if it is not a call of a bound tool."""
    try:
        value = json.loads(text.strip())
    except ValueError:
        return None
    if (
        not isinstance(value, dict)
        or value.get("name") not in _names(tools)
        or not isinstance(value.get("arguments", {}), dict)
    ):
        return None
    return ToolCall(
        name=value["name"],
        args=value.get("arguments", {}),
        id=f"call_{uuid.uuid4().hex[:24]}",
        type="tool_call",
    )


def json_object_schema() -> dict[str, Any]:
    """Returns:
    The schema of JSON mode: any JSON object."""
    return {"type": "object"}

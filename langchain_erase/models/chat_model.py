"""`ChatLocalLlamaCpp`: a LangChain chat model on a local GGUF, over llama-cpp-python alone.

Messages become the model's turns (`llama_runtime.TurnFormat`); tools and structured output
decode under a grammar from their JSON schema (`tool_calls`); answers carry
``usage_metadata`` counted with the model's own tokenizer; ``stop`` holds in streaming too.
Calls on one instance take its context's lock, so ``invoke``, ``ainvoke``, ``batch``,
``stream`` and ``astream`` may run concurrently; async calls run on threads of their own
(`llama_locks`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, ClassVar, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from llama_cpp import LogitsProcessorList
from pydantic import BaseModel

from langchain_erase.errors import (
    InvalidParameterError,
    OutputTruncatedError,
    UnsupportedContentError,
)
from langchain_erase.models.json_grammar import StringLengthPrior, json_grammar
from langchain_erase.models.llama_locks import (
    context_lock,
    locked_iterator,
    run_in_own_thread,
    stream_in_own_thread,
)
from langchain_erase.models.llama_model import LlamaCppModel
from langchain_erase.models.llama_runtime import (
    NoRepeatNgram,
    Prompt,
    Turn,
    TurnFormat,
    continuation_logprob,
    count_tokens,
    stream_text,
)
from langchain_erase.models.tool_calls import (
    arguments_instructions,
    arguments_schema,
    chosen_name,
    make_call,
    plan_tools,
)

__all__ = ["ChatLocalLlamaCpp"]

StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]
_CALL_KEYS = ("tools", "tool_choice", "response_format", "stream_usage")


def _text_of(message: BaseMessage) -> str:
    """The message's text; image, audio and file blocks are refused."""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for block in message.content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif block.get("type") not in ("tool_use", "tool_call", "reasoning"):
            raise UnsupportedContentError(
                f"a local text model takes no {block.get('type')!r} content"
            )
    return "".join(parts)


def to_turns(messages: Sequence[BaseMessage]) -> list[Turn]:
    """Args:
        messages: A LangChain conversation.

    Returns:
        Its turns: tool calls are written as the call objects the model produces, and a
        tool's result as a user turn naming the tool (small models have no tool role)."""
    turns = []
    for message in messages:
        text = _text_of(message)
        if isinstance(message, ToolMessage):
            name = message.name or message.tool_call_id
            turns.append(Turn("user", f"The tool {name} returned: {text}"))
        elif message.type == "ai":
            calls = [
                json.dumps({"name": c["name"], "arguments": c["args"]}, ensure_ascii=False)
                for c in getattr(message, "tool_calls", [])
            ]
            turns.append(Turn("assistant", "\n".join(x for x in (text, *calls) if x)))
        elif message.type == "system":
            turns.append(Turn("system", text))
        else:
            turns.append(Turn("user", text))
    return turns


class ChatLocalLlamaCpp(LlamaCppModel, BaseChatModel):
    """A chat model on a local GGUF (llama-cpp-python and langchain-core only).

    Example:
        .. code-block:: python

            from langchain_erase.llms import local_chat_model

            chat = local_chat_model("gemma-3-270m", max_tokens=32)
            chat.invoke("Say hello.").usage_metadata
    """

    stream_usage: bool = True
    """Streams end with a chunk carrying ``usage_metadata``."""
    tool_call_threshold: float = 0.1
    """With ``tool_choice="auto"``, a tool is called when the model finds the request more
    likely after the tool's description than after a neutral one by more than this many nats
    per token (see `tool_calls`); higher calls tools less often."""
    json_no_repeat_ngram: int = 8
    """JSON answers (tool arguments, structured output) never repeat a run of this many
    tokens (`llama_runtime.NoRepeatNgram`); 0 turns the guard off."""
    json_string_free: int = 48
    """Characters a JSON string may reach before the soft length prior starts
    (`json_grammar.StringLengthPrior`)."""
    json_string_rate: float = 0.1
    """Nats the closing quote gains per character beyond ``json_string_free`` (and twenty
    times it per unit of ``used / (max_tokens - used)``); 0 turns the prior off."""

    _ls_model_type: ClassVar[Literal["chat", "llm"]] = "chat"

    @property
    def _llm_type(self) -> str:
        return "chat-llamacpp-local"

    # -- tools and structured output ---------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools: the model picks the tool (by PMI, see `tool_calls`) and writes its
        arguments under the tool's JSON-schema grammar.

        Args:
            tools: Tools as LangChain accepts them (functions, pydantic classes, dicts, tools).
            tool_choice: "auto" (default: a call when a tool's PMI exceeds
                ``tool_call_threshold``, never right after a tool's result), "any",
                "required", True, "none", a tool name, or
                ``{"type": "function", "function": {"name": ...}}``.
            **kwargs: More call keywords to bind.

        Returns:
            The model with the tools bound.

        Raises:
            InvalidParameterError: ``tool_choice`` names no bound tool.
        """
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        chosen_name(tool_choice, formatted)  # refuses an unknown choice now
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: StructuredMethod = "json_schema",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answers parsed into ``schema``, always valid against it (constrained decoding).

        Args:
            schema: A pydantic class, a TypedDict, or a JSON schema (or OpenAI tool) dict.
            include_raw: Return ``{"raw", "parsed", "parsing_error"}``.
            method: "json_schema" (the schema is described to the model and the answer
                decoded under it), "function_calling" (a forced tool call), or "json_mode"
                (decoded under the schema, which the caller's prompt describes).
            strict: Accepted for compatibility; decoding is always strict.
            **kwargs: None are accepted.

        Returns:
            A runnable producing the parsed object (a pydantic instance or a dict).
        """
        if kwargs:
            raise InvalidParameterError(f"unsupported arguments: {sorted(kwargs)}")
        pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        trace = {"ls_structured_output_format": {"kwargs": {"method": method}, "schema": schema}}
        parser: Runnable[Any, Any]
        if method == "function_calling":
            name = convert_to_openai_tool(schema)["function"]["name"]
            llm = self.bind_tools([schema], tool_choice=name, **trace)
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
                if pydantic
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method in ("json_schema", "json_mode"):
            # json_mode decodes under the schema too but, unlike json_schema, does not
            # describe it in the prompt (the caller's prompt does).
            json_schema = convert_to_json_schema(schema)
            llm = self.bind(response_format={"type": method, "schema": json_schema}, **trace)
            parser = (
                PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
                if pydantic
                else JsonOutputParser()
            )
        else:
            raise InvalidParameterError(
                f"method must be 'json_schema', 'function_calling' or 'json_mode', not {method!r}"
            )
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        ).with_fallbacks(
            [RunnablePassthrough.assign(parsed=lambda _: None)], exception_key="parsing_error"
        )
        return RunnableMap(raw=llm) | parsed

    # -- generation ---------------------------------------------------------------------

    def _request(self, messages: list[BaseMessage]) -> str | None:
        """The latest user request, or None when the conversation ends with a tool's result."""
        if not messages or isinstance(messages[-1], ToolMessage):
            return None
        users = [m for m in messages if m.type == "human"]
        return _text_of(users[-1]) if users else _text_of(messages[-1])

    def _score(self, context: str, continuation: str) -> float:
        with context_lock(self.client):
            return continuation_logprob(self.client, context, continuation)

    def _prepare(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[Prompt, dict[str, Any], dict[str, Any] | None, bool]:
        """The prompt, the ``create_completion`` parameters, the tool to call (or None), and
        whether the answer is constrained JSON."""
        call = {k: kwargs.pop(k) for k in _CALL_KEYS if k in kwargs}
        params = self._sampling(stop, kwargs)
        plan = plan_tools(call.get("tools"), call.get("tool_choice"))
        turns = to_turns(messages)
        tool = (
            plan.choose(self._request(messages), self._score, self.tool_call_threshold)
            if plan
            else None
        )
        schema = None
        response_format = call.get("response_format")
        if tool is not None:
            schema = arguments_schema(tool)
            turns.insert(0, Turn("system", arguments_instructions(tool)))
        elif response_format:
            schema = response_format.get("schema") or {"type": "object"}
            if response_format["type"] == "json_schema":
                text = json.dumps(schema, ensure_ascii=False)
                turns.insert(0, Turn("system", f"Answer with a JSON object of this schema: {text}"))
        prompt = TurnFormat.of(self.client).render(turns)
        params["stop"] = [*params["stop"], *prompt.stops]
        if schema is not None:
            params["grammar"] = json_grammar(schema)
        return prompt, params, tool, schema is not None

    def _pieces(self, prompt: Prompt, params: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
        tokens = prompt.tokens(self.client)
        if "grammar" in params:
            processors: list[Any] = []
            if self.json_no_repeat_ngram >= 2:
                processors.append(NoRepeatNgram(len(tokens), self.json_no_repeat_ngram))
            if self.json_string_rate > 0:
                processors.append(
                    StringLengthPrior(
                        self.client,
                        len(tokens),
                        int(params["max_tokens"]),
                        self.json_string_free,
                        self.json_string_rate,
                    )
                )
            params = {**params, "logits_processor": LogitsProcessorList(processors)}
        return locked_iterator(self.client, lambda: stream_text(self.client, tokens, **params))

    def _usage(self, prompt: Prompt, text: str) -> UsageMetadata:
        n_in = count_tokens(self.client, prompt.text, add_bos=prompt.add_bos)
        n_out = count_tokens(self.client, text)
        return UsageMetadata(input_tokens=n_in, output_tokens=n_out, total_tokens=n_in + n_out)

    @staticmethod
    def _answer(
        text: str, finish: str | None, tool: dict[str, Any] | None, constrained: bool
    ) -> tuple[str, list[ToolCall]]:
        if constrained and finish == "length":
            raise OutputTruncatedError(
                "the constrained answer reached max_tokens before its JSON was complete; "
                f"it ends {text[-120:]!r}"
            )
        if tool is None:
            return text, []
        return "", [make_call(tool, text)]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Answer ``messages``.

        Args:
            messages: The conversation.
            stop: Stop sequences of this call.
            run_manager: LangChain callbacks (told each new piece of text).
            **kwargs: Sampling overrides, and ``tools`` / ``tool_choice`` /
                ``response_format`` as bound by `bind_tools` / `with_structured_output`.

        Returns:
            One generation: an ``AIMessage`` with ``usage_metadata``.
        """
        prompt, params, tool, constrained = self._prepare(messages, stop, dict(kwargs))
        text, finish = "", None
        for piece, reason in self._pieces(prompt, params):
            text, finish = text + piece, reason
            if piece and run_manager and not constrained:
                run_manager.on_llm_new_token(piece)
        content, calls = self._answer(text, finish, tool, constrained)
        usage = self._usage(prompt, text)
        meta = {"finish_reason": finish, "model_name": self._get_ls_params()["ls_model_name"]}
        message = AIMessage(
            content=content, tool_calls=calls, usage_metadata=usage, response_metadata=meta
        )
        token_usage = {
            "prompt_tokens": usage["input_tokens"],
            "completion_tokens": usage["output_tokens"],
            "total_tokens": usage["total_tokens"],
        }
        return ChatResult(
            generations=[
                ChatGeneration(message=message, generation_info={"finish_reason": finish})
            ],
            llm_output={"token_usage": token_usage, "model_name": meta["model_name"]},
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """``_generate``'s answer in pieces (same arguments); a tool call or structured
        answer comes as one chunk once complete; with ``stream_usage`` the last chunk
        carries ``usage_metadata``. Returns an iterator of chunks."""
        with_usage = kwargs.get("stream_usage", self.stream_usage)
        prompt, params, tool, constrained = self._prepare(messages, stop, dict(kwargs))
        text, finish = "", None
        for piece, reason in self._pieces(prompt, params):
            text, finish = text + piece, reason
            if piece and not constrained:
                if run_manager:
                    run_manager.on_llm_new_token(piece)
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        content, calls = self._answer(text, finish, tool, constrained)
        if constrained:
            chunks = [
                ToolCallChunk(
                    type="tool_call_chunk",
                    name=c["name"],
                    args=json.dumps(c["args"], ensure_ascii=False),
                    id=c["id"],
                    index=i,
                )
                for i, c in enumerate(calls)
            ]
            yield ChatGenerationChunk(
                message=AIMessageChunk(content=content, tool_call_chunks=chunks)
            )
        usage = self._usage(prompt, text) if with_usage else None
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=usage,
                response_metadata={
                    "finish_reason": finish,
                    "model_name": self._get_ls_params()["ls_model_name"],
                },
                chunk_position="last",
            ),
            generation_info={"finish_reason": finish},
        )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """``_generate`` on a thread of its own (same arguments)."""
        sync = run_manager.get_sync() if run_manager else None
        return await run_in_own_thread(lambda: self._generate(messages, stop, sync, **kwargs))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """``_stream`` on a thread of its own (same arguments)."""
        sync = run_manager.get_sync() if run_manager else None
        async for chunk in stream_in_own_thread(
            lambda: self._stream(messages, stop, sync, **kwargs)
        ):
            yield chunk

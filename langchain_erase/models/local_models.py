"""langchain-community's llama.cpp wrappers made safe to share between concurrent calls.

``LlamaCpp`` and ``ChatLlamaCpp`` call one ``llama_cpp.Llama`` (one llama.cpp context) with no
synchronization: two ``ainvoke`` calls at once decode in the same context and llama.cpp aborts
the process. These subclasses take the context's lock (:mod:`langchain_erase.models.llama_locks`)
around every call, and for the whole life of a stream, so ``invoke``, ``ainvoke``, ``batch``,
``stream`` and ``astream`` can run concurrently; cache eviction takes the same lock. Async calls
run on threads of their own rather than the event loop's shared executor (see
:mod:`langchain_erase.models.llama_locks` for the deadlock that avoids). They also
report the model name and provider to LangChain tracing (``ls_model_name``, ``ls_provider``).

This module imports langchain-community (the ``llama`` extra), which is being sunset upstream
and warns so on import; the warning is silenced here because these two classes are all the
plugin uses of it.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseLanguageModel, LangSmithParams
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult, GenerationChunk

from langchain_erase.models.llama_locks import (
    context_lock,
    locked_iterator,
    run_in_own_thread,
    stream_in_own_thread,
)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", r".*langchain-community.*", DeprecationWarning)
    from langchain_community.chat_models.llamacpp import ChatLlamaCpp
    from langchain_community.llms.llamacpp import LlamaCpp

__all__ = ["PROVIDER", "ChatLocalLlamaCpp", "LocalLlamaCpp"]

PROVIDER = "llamacpp"
"""``ls_provider`` reported to LangChain tracing."""


_T = TypeVar("_T")


async def _call_in_own_thread(
    run_manager: AsyncCallbackManagerForLLMRun | None,
    call: Callable[[CallbackManagerForLLMRun | None], _T],
) -> _T:
    """Run a sync model call on a thread of its own, with the sync form of the callbacks."""
    sync = run_manager.get_sync() if run_manager else None
    return await run_in_own_thread(lambda: call(sync))


async def _stream_in_own_thread(
    run_manager: AsyncCallbackManagerForLLMRun | None,
    stream: Callable[[CallbackManagerForLLMRun | None], Iterator[_T]],
) -> AsyncIterator[_T]:
    """Generate a sync model stream on a thread of its own, with the sync form of the callbacks."""
    sync = run_manager.get_sync() if run_manager else None
    async for chunk in stream_in_own_thread(lambda: stream(sync)):
        yield chunk


class _LocalModel(BaseLanguageModel[Any]):
    """What both wrappers add to LangChain tracing: the conventional provider name and the
    model name."""

    if TYPE_CHECKING:  # a field of both llama.cpp wrappers; declared here for the type checker
        model_path: str

    model_name: str = ""
    """Reported as ``ls_model_name`` (e.g. ``gemma-3-270m``); empty: the GGUF file's stem."""

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """Tracing metadata: provider, model name, temperature, max tokens, stop.

        Args:
            stop: stop sequences of the call.
            **kwargs: per-call parameters (``model`` overrides the model name).

        Returns:
            LangChain's standard ``ls_*`` parameters.
        """
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = PROVIDER
        if not params.get("ls_model_name"):
            params["ls_model_name"] = Path(self.model_path).stem
        return params


class LocalLlamaCpp(_LocalModel, LlamaCpp):
    """``LlamaCpp`` whose calls on its llama.cpp context are serialized by the context lock."""

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        """Complete ``prompt`` holding the context lock.

        Args:
            prompt: the formatted prompt.
            stop: stop sequences.
            run_manager: LangChain callbacks.
            **kwargs: per-call llama.cpp sampling parameters.

        Returns:
            The generated text.
        """
        if self.streaming:  # the parent consumes self._stream, which takes the lock
            text: str = super()._call(prompt, stop, run_manager, **kwargs)
            return text
        with context_lock(self.client):
            text = super()._call(prompt, stop, run_manager, **kwargs)
        return text

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        """``_call``'s completion streamed, holding the context lock until it ends (same
        arguments); returns an iterator of generated chunks."""
        parent = super()._stream
        return locked_iterator(self.client, lambda: parent(prompt, stop, run_manager, **kwargs))

    async def _acall(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        """``_call`` on a thread of its own (same arguments, callbacks called through their
        sync form)."""
        return await _call_in_own_thread(
            run_manager, lambda sync: self._call(prompt, stop, sync, **kwargs)
        )

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        """``_stream`` generated on a thread of its own (same arguments, callbacks called
        through their sync form)."""
        async for chunk in _stream_in_own_thread(
            run_manager, lambda sync: self._stream(prompt, stop, sync, **kwargs)
        ):
            yield chunk


class ChatLocalLlamaCpp(_LocalModel, ChatLlamaCpp):
    """``ChatLlamaCpp`` whose calls on its llama.cpp context are serialized by the context lock."""

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Answer ``messages`` holding the context lock.

        Args:
            messages: the conversation.
            stop: stop sequences.
            run_manager: LangChain callbacks.
            **kwargs: per-call llama.cpp parameters.

        Returns:
            The chat result.
        """
        # The parent streams (through self._stream, which takes the lock) exactly when this
        # holds; otherwise it makes one blocking call on the context.
        if self.streaming and not kwargs.get("tool_choice"):
            return super()._generate(messages, stop, run_manager, **kwargs)
        with context_lock(self.client):
            return super()._generate(messages, stop, run_manager, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """``_generate``'s answer streamed, holding the context lock until it ends (same
        arguments); returns an iterator of message chunks."""
        parent = super()._stream
        return locked_iterator(self.client, lambda: parent(messages, stop, run_manager, **kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """``_generate`` on a thread of its own (same arguments, callbacks called through
        their sync form)."""
        return await _call_in_own_thread(
            run_manager, lambda sync: self._generate(messages, stop, sync, **kwargs)
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """``_stream`` generated on a thread of its own (same arguments, callbacks called
        through their sync form)."""
        async for chunk in _stream_in_own_thread(
            run_manager, lambda sync: self._stream(messages, stop, sync, **kwargs)
        ):
            yield chunk

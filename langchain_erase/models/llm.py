"""`LocalLlamaCpp`: a LangChain completion LLM on a local GGUF, over llama-cpp-python alone.

Prompts are completed as written (the model's tokenizer adds BOS; special-token texts count as
special tokens). ``stop`` holds in streaming too; ``generate().llm_output["token_usage"]``
counts with the model's own tokenizer. Calls take the context's lock (`llama_locks`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM
from langchain_core.outputs import Generation, GenerationChunk, LLMResult

from langchain_erase.models.llama_locks import (
    locked_iterator,
    run_in_own_thread,
    stream_in_own_thread,
)
from langchain_erase.models.llama_model import LlamaCppModel
from langchain_erase.models.llama_runtime import Prompt, count_tokens, stream_text

__all__ = ["LocalLlamaCpp"]


class LocalLlamaCpp(LlamaCppModel, BaseLLM):
    """A completion LLM on a local GGUF (llama-cpp-python and langchain-core only).

    Example:
        .. code-block:: python

            from langchain_erase.llms import local_llm

            llm = local_llm("gemma-3-270m", max_tokens=4, stop=["\\n"])
            llm.invoke("Review: great film!\\nSentiment:")
    """

    @property
    def _llm_type(self) -> str:
        return "llamacpp-local"

    def _pieces(
        self, prompt: str, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Iterator[tuple[str, str | None]]:
        params = self._sampling(stop, kwargs)
        tokens = Prompt(prompt, (), add_bos=True).tokens(self.client)
        return locked_iterator(self.client, lambda: stream_text(self.client, tokens, **params))

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        """Complete each prompt.

        Args:
            prompts: The prompts.
            stop: Stop sequences of this call.
            run_manager: LangChain callbacks (told each new piece of text).
            **kwargs: Sampling overrides (``temperature``, ``max_tokens``, ...).

        Returns:
            One generation per prompt, and the token usage of all of them.
        """
        generations, n_in, n_out = [], 0, 0
        for prompt in prompts:
            text, finish = "", None
            for piece, reason in self._pieces(prompt, stop, dict(kwargs)):
                text, finish = text + piece, reason
                if piece and run_manager:
                    run_manager.on_llm_new_token(piece)
            generations.append([Generation(text=text, generation_info={"finish_reason": finish})])
            n_in += count_tokens(self.client, prompt, add_bos=True)
            n_out += count_tokens(self.client, text)
        usage = {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}
        return LLMResult(generations=generations, llm_output={"token_usage": usage})

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        """The completion in pieces (same arguments as one prompt of `_generate`).

        Returns:
            An iterator of chunks; the last carries the finish reason."""
        for piece, finish in self._pieces(prompt, stop, dict(kwargs)):
            if piece and run_manager:
                run_manager.on_llm_new_token(piece)
            info = {"finish_reason": finish} if finish else None
            if piece or info:
                yield GenerationChunk(text=piece, generation_info=info)

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        """``_generate`` on a thread of its own (same arguments)."""
        sync = run_manager.get_sync() if run_manager else None
        return await run_in_own_thread(lambda: self._generate(prompts, stop, sync, **kwargs))

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        """``_stream`` on a thread of its own (same arguments)."""
        sync = run_manager.get_sync() if run_manager else None
        async for chunk in stream_in_own_thread(lambda: self._stream(prompt, stop, sync, **kwargs)):
            yield chunk

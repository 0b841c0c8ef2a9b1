"""The fields and behaviour both local LangChain models share: one llama.cpp context per
instance, loaded quietly at construction, its lock around every call, the model's own
tokenizer for counting, tracing metadata, and pickling by model path and parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from langchain_core.language_models import BaseLanguageModel, LangSmithParams
from langchain_core.utils import from_env
from pydantic import ConfigDict, Field, model_validator

from langchain_erase.errors import InvalidParameterError
from langchain_erase.models.llama_runtime import count_tokens, load_context

__all__ = ["MODEL_PATH_ENV", "PROVIDER", "LlamaCppModel"]

MODEL_PATH_ENV = "LANGCHAIN_ERASE_MODEL_PATH"
"""The environment variable ``model_path`` defaults to (a deployment names its GGUF there)."""

PROVIDER = "llamacpp"
"""``ls_provider`` reported to LangChain tracing."""

#: Per-call sampling parameters a call may override.
SAMPLING = ("temperature", "max_tokens", "top_p", "top_k", "repeat_penalty", "seed")


class LlamaCppModel(BaseLanguageModel[Any]):
    """A GGUF model in its own llama.cpp context (see the ``llama`` extra).

    GPU offload (``n_gpu_layers``) needs llama-cpp-python built for the GPU, e.g.
    ``CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-binary llama-cpp-python
    llama-cpp-python``; the wheel this project builds is CPU-only, where the setting is
    ignored.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    model_path: str = Field(default_factory=from_env(MODEL_PATH_ENV, default=""))
    """The GGUF file; default: the ``LANGCHAIN_ERASE_MODEL_PATH`` environment variable."""
    model_name: str = ""
    """Reported as ``ls_model_name``; empty: the GGUF file's stem."""
    n_ctx: int = 2048
    """Context window in tokens (prompt plus answer)."""
    n_threads: int | None = None
    """CPU threads; None lets llama.cpp choose."""
    n_batch: int = 512
    """Prompt tokens decoded per batch."""
    n_gpu_layers: int = 0
    """Layers offloaded to a GPU (needs a GPU build of llama-cpp-python)."""
    seed: int = 0
    """Sampling seed (greedy decoding at temperature 0 does not use it)."""
    rope_freq_base: float = 0.0
    """0: the GGUF's own RoPE base."""
    rope_freq_scale: float = 0.0
    """0: the GGUF's own RoPE scale."""
    temperature: float = 0.0
    """0 is greedy (reproducible)."""
    max_tokens: int = 256
    """Most tokens generated per call."""
    top_p: float = 0.95
    top_k: int = 40
    repeat_penalty: float = 1.0
    stop: list[str] | None = None
    """Stop sequences for every call (a call's own ``stop`` adds to them)."""
    streaming: bool = False
    """Generate through the stream path even in ``invoke``."""
    verbose: bool = False
    """llama-cpp-python's own prints; llama.cpp's log always goes to the
    ``langchain_erase.llama_cpp`` logger."""
    timeout: float | None = None
    """Accepted as LangChain's standard parameter; a local call makes no request to time out."""
    max_retries: int = 0
    """Accepted as LangChain's standard parameter; a local call has nothing to retry."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """More ``llama_cpp.Llama`` parameters (``swa_full``, ``chat_format``, ...)."""
    client: Any = Field(default=None, exclude=True)
    """The loaded ``llama_cpp.Llama`` (made at construction)."""

    @model_validator(mode="after")
    def _load(self) -> LlamaCppModel:
        if not self.model_path:
            raise InvalidParameterError(f"model_path is required (or set {MODEL_PATH_ENV})")
        if self.n_ctx < 1 or self.max_tokens < 1:
            raise InvalidParameterError("n_ctx and max_tokens must be at least 1")
        if self.client is None:
            self.client = load_context(self.model_path, self.verbose, **self._llama_params())
        return self

    def _llama_params(self) -> dict[str, Any]:
        return {
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "n_threads_batch": self.n_threads,
            "n_batch": self.n_batch,
            "n_gpu_layers": self.n_gpu_layers,
            "seed": self.seed,
            "rope_freq_base": self.rope_freq_base,
            "rope_freq_scale": self.rope_freq_scale,
            **self.model_kwargs,
        }

    def _sampling(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``create_completion`` parameters of one call: the fields, overridden by the
        call's own sampling keywords; other keywords are refused."""
        unknown = sorted(set(kwargs) - set(SAMPLING))
        if unknown:
            raise InvalidParameterError(f"unsupported call arguments: {unknown}")
        params: dict[str, Any] = {name: getattr(self, name) for name in SAMPLING}
        params.update(kwargs)
        params["stop"] = list(dict.fromkeys([*(self.stop or []), *(stop or [])]))
        return params

    def get_token_ids(self, text: str) -> list[int]:
        """Args:
            text: Any text.

        Returns:
            Its tokens under the model's own tokenizer (no BOS; never a network call)."""
        return list(self.client.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def get_num_tokens(self, text: str) -> int:
        """Args:
            text: Any text.

        Returns:
            Its number of tokens under the model's own tokenizer."""
        return count_tokens(self.client, text)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """Args:
            stop: Stop sequences of the call.
            **kwargs: The call's keywords.

        Returns:
            LangChain's standard ``ls_*`` tracing parameters."""
        params = LangSmithParams(
            ls_provider=PROVIDER,
            ls_model_name=kwargs.get("model") or self.model_name or Path(self.model_path).stem,
            ls_model_type=self._ls_model_type,
            ls_temperature=kwargs.get("temperature", self.temperature),
            ls_max_tokens=kwargs.get("max_tokens", self.max_tokens),
        )
        stops = list(dict.fromkeys([*(self.stop or []), *(stop or [])]))
        if stops:
            params["ls_stop"] = stops
        return params

    _ls_model_type: ClassVar[Literal["chat", "llm"]] = "llm"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, **self._llama_params()}

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle by model path and parameters (the context is loaded anew)."""
        state = dict(super().__getstate__())
        fields = dict(state["__dict__"])
        fields["client"] = None
        state["__dict__"] = fields
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        if self.client is None:
            self.client = load_context(self.model_path, self.verbose, **self._llama_params())

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> LlamaCppModel:
        """A copy sharing nothing: its own context (the lock belongs to the context)."""
        clone = self.__class__.__new__(self.__class__)
        clone.__setstate__(self.__getstate__())
        return clone

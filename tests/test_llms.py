"""Model resolution and cache eviction without loading an LLM."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_erase import llms
from langchain_erase.errors import ModelNotFoundError
from langchain_erase.llms import evict_prompts_containing, resolve_model_path


def test_existing_gguf_path_resolves(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00")
    assert resolve_model_path(path) == path
    assert resolve_model_path(str(path)) == path


def test_unknown_name_is_a_clear_error() -> None:
    with pytest.raises(ModelNotFoundError, match="gemma-3-270m, smollm2-135m") as info:
        resolve_model_path("llama-70b")
    assert isinstance(info.value, FileNotFoundError)


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"missing\.gguf"):
        resolve_model_path(tmp_path / "missing.gguf")


def test_non_gguf_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ModelNotFoundError, match="not a GGUF file"):
        resolve_model_path(path)


def test_wrapper_params_fix_langchain_defaults(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF")
    params = llms._wrapper_params(
        path, 256, 2, 0, 0.0, 16, {"stop": ["\n"], "model_kwargs": {"n_ubatch": 64}}
    )
    assert params["rope_freq_base"] == 0.0  # 0 = the GGUF's own RoPE base
    assert params["rope_freq_scale"] == 0.0
    assert params["n_batch"] == 512
    assert params["repeat_penalty"] == 1.0
    assert params["model_kwargs"] == {"swa_full": True, "n_ubatch": 64}
    assert params["stop"] == ["\n"]
    assert params["model_path"] == str(path)


class _FakeLlama:
    """Word-level tokenizer and a RAM cache: enough of ``llama_cpp.Llama`` for eviction."""

    def __init__(self, cache: Any) -> None:
        self.vocab: dict[str, int] = {}
        self.cache = cache
        self.n_tokens = 0
        self.input_ids = np.zeros(64, dtype=np.intc)
        self.ctx = None
        self.resets = 0

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        assert not add_bos
        return [self.vocab.setdefault(w, len(self.vocab) + 1) for w in text.decode().split()]

    def reset(self) -> None:
        self.resets += 1
        self.n_tokens = 0


@pytest.fixture
def fake() -> _FakeLlama:
    from llama_cpp.llama_cache import LlamaRAMCache

    fake = _FakeLlama(LlamaRAMCache())
    state: OrderedDict[tuple[int, ...], Any] = fake.cache.cache_state
    for prompt in [
        "Input: the quick brown fox jumps Output: yes",
        "Input: a lazy dog sleeps all day Output: no",
        "Input: the quick brown fox jumps Input: a lazy dog sleeps all day Output:",
        "Input: something else entirely Output: no",
    ]:
        state[tuple(fake.tokenize(prompt.encode(), add_bos=False))] = object()
    return fake


def test_evicts_every_cached_prompt_containing_a_text(fake: _FakeLlama) -> None:
    assert evict_prompts_containing(fake, ["the quick brown fox jumps"]) == 2
    left = [tuple(k) for k in fake.cache.cache_state]
    assert len(left) == 2
    assert evict_prompts_containing(fake, ["a lazy dog sleeps all day", "nothing here"]) == 1
    assert evict_prompts_containing(fake, ["a lazy dog sleeps all day"]) == 0
    assert len(fake.cache.cache_state) == 1


def test_blank_texts_evict_nothing(fake: _FakeLlama) -> None:
    assert evict_prompts_containing(fake, ["", "   "]) == 0
    assert len(fake.cache.cache_state) == 4


def test_accepts_langchain_wrapper(fake: _FakeLlama) -> None:
    class Wrapper:
        client = fake

    assert evict_prompts_containing(Wrapper(), ["something else entirely"]) == 1


def test_live_context_is_cleared(fake: _FakeLlama, monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp

    monkeypatch.setattr(llama_cpp, "llama_get_memory", lambda ctx: None)
    tokens = fake.tokenize(b"Input: secret words here Output: yes", add_bos=False)
    fake.input_ids[: len(tokens)] = tokens
    fake.n_tokens = len(tokens)
    assert evict_prompts_containing(fake, ["unrelated"]) == 0
    assert fake.resets == 0
    assert evict_prompts_containing(fake, ["secret words here"]) == 1
    assert fake.resets == 1
    assert not fake.input_ids.any()


def test_unknown_cache_type_is_an_error() -> None:
    with pytest.raises(TypeError, match="cannot enumerate"):
        evict_prompts_containing(_FakeLlama(cache=object()), ["x y z"])

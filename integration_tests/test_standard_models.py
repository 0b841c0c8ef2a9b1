"""langchain-tests' standard unit and integration suites on what ``local_chat_model``
returns, and the same metadata checks for ``local_llm``.

The suite builds the class from keyword arguments, so it is given the class and the exact
parameters the helper passes (``llms._wrapper_params``); the first test pins that the helper
returns that class. It needs a real GGUF (the model loads on construction), hence integration.

Cases the suite skips or turns off, and why:

* Tool calling, tool choice, structured output, JSON mode and usage metadata are declared
  supported (constrained decoding, see docs/models.md); all their tests pass.
* ``test_init_from_env`` runs: ``model_path`` defaults to ``LANGCHAIN_ERASE_MODEL_PATH``.
* ``test_serdes`` skips itself ("Model is not serializable."): the model holds a loaded
  llama.cpp context and a machine-local file path, so it is not LangChain-serializable; it
  pickles by path and parameters instead (tests/test_local_chat.py).
* The four ``test_*_with_model_override`` skip ("Model override not supported."): a local
  model is one GGUF in memory; a per-call ``model=`` would load another file every call.
* ``test_stream_time`` skips ("VCR not set up."): it times replayed HTTP cassettes, and a
  local model makes no HTTP request to record.

langchain-tests has no unit suite for completion LLMs (``langchain_tests.unit_tests`` covers
chat models, embeddings and tools only), so the tests at the end apply the chat suite's
initialization and tracing-metadata checks to ``local_llm`` by hand.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_erase import llms
from langchain_erase.models.llama_model import MODEL_PATH_ENV
from langchain_erase.models.local_models import PROVIDER, ChatLocalLlamaCpp, LocalLlamaCpp

pytestmark = pytest.mark.integration

MODEL = "smollm2-135m"
CHAT_MODEL = "gemma-3-270m"


def _helper_params(**kwargs: Any) -> dict[str, Any]:
    """What ``local_chat_model(MODEL, n_ctx=256, n_threads=2)`` passes to the class."""
    return llms._wrapper_params(MODEL, 256, 2, 0, 0.0, 64, dict(kwargs))


def test_helpers_return_the_tested_classes() -> None:
    chat = llms.local_chat_model(MODEL, n_ctx=256, n_threads=2)
    llm = llms.local_llm(MODEL, n_ctx=256, n_threads=2)
    assert type(chat) is ChatLocalLlamaCpp
    assert type(llm) is LocalLlamaCpp
    assert chat.model_name == llm.model_name == MODEL


class _Declared:
    """What both suites are told the model supports."""

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        # A local model is one GGUF loaded into memory: a per-call ``model=`` would load
        # another file (hundreds of MB) on every call. Build a second instance instead.
        return False


class TestChatLocalLlamaCppStandard(_Declared, ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatLocalLlamaCpp

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # The suite passes temperature, max_tokens and stop itself (its standard parameters).
        standard = {"temperature", "max_tokens", "stop"}
        return {k: v for k, v in _helper_params().items() if k not in standard}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        params = {k: v for k, v in self.chat_model_params.items() if k != "model_path"}
        path = _helper_params()["model_path"]
        return {MODEL_PATH_ENV: path}, params, {"model_path": path}


class TestChatLocalLlamaCppIntegration(_Declared, ChatModelIntegrationTests):
    """The integration suite on Gemma-3-270M, all of it passing. Skipped by the suite itself,
    each because the model takes no such input: images (``test_image_inputs``,
    ``test_image_tool_message``), audio (``test_audio_inputs``), PDF (``test_pdf_inputs``,
    ``test_pdf_tool_message``) and Anthropic-format content blocks
    (``test_anthropic_inputs``); and, as the module docstring says, the model-override and
    VCR timing tests."""

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatLocalLlamaCpp

    @property
    def chat_model_params(self) -> dict[str, Any]:
        chat_format = {"model_kwargs": {"chat_format": llms._CHAT_FORMATS[CHAT_MODEL]}}
        params = llms._wrapper_params(CHAT_MODEL, 2048, 2, 0, 0.0, 128, chat_format)
        return {k: v for k, v in params.items() if k not in ("temperature", "stop")}


STANDARD_PARAMS = {"temperature": 0, "max_tokens": 100, "timeout": 60, "stop": [], "max_retries": 2}


def test_llm_initializes_with_standard_params() -> None:
    assert LocalLlamaCpp(**{**STANDARD_PARAMS, **_helper_params()}) is not None
    assert LocalLlamaCpp(**{**_helper_params(), "streaming": True}) is not None


def test_llm_tracing_metadata() -> None:
    llm = LocalLlamaCpp(**_helper_params(max_tokens=10, stop=["test"]))
    params = llm._get_ls_params(stop=["test"])
    assert params == {
        "ls_provider": PROVIDER,
        "ls_model_type": "llm",
        "ls_model_name": MODEL,
        "ls_temperature": 0.0,
        "ls_max_tokens": 10,
        "ls_stop": ["test"],
    }
    assert llm._get_ls_params(model="other-model")["ls_model_name"] == "other-model"


def test_gguf_path_reports_its_file_stem() -> None:
    path = llms.resolve_model_path(MODEL)
    assert llms._model_name(path) == path.stem
    assert llms._model_name(MODEL) == MODEL
    params = {k: v for k, v in _helper_params().items() if k != "model_name"}
    for cls in (LocalLlamaCpp, ChatLocalLlamaCpp):
        assert cls(**params)._get_ls_params()["ls_model_name"] == path.stem

"""langchain-tests' standard unit suite on what ``local_chat_model`` returns, and the same
metadata checks for ``local_llm``.

The suite builds the class from keyword arguments, so it is given the class and the exact
parameters the helper passes (``llms._wrapper_params``); the first test pins that the helper
returns that class. It needs a real GGUF (the model loads on construction), hence integration.

Cases the suite skips or turns off, and why:

* ``has_tool_calling`` / ``has_structured_output`` are off: ``ChatLlamaCpp.bind_tools``
  supports only a single forced tool (``tool_choice`` must name one; the suite binds several
  with ``tool_choice="any"``), and its ``with_structured_output`` has no ``method``/``strict``
  arguments. Neither is used by this plugin, whose models answer few-shot prompts.
* ``test_serdes`` skips itself: ``ChatLlamaCpp`` is not LangChain-serializable (it holds a
  loaded model).
* ``test_init_from_env`` skips itself: a local model reads nothing from the environment.

langchain-tests has no unit suite for completion LLMs (``langchain_tests.unit_tests`` covers
chat models, embeddings and tools only), so the tests at the end apply the chat suite's
initialization and tracing-metadata checks to ``local_llm`` by hand.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_erase import llms
from langchain_erase.models.local_models import PROVIDER, ChatLocalLlamaCpp, LocalLlamaCpp

pytestmark = pytest.mark.integration

MODEL = "smollm2-135m"


def _helper_params(**kwargs: Any) -> dict[str, Any]:
    """What ``local_chat_model(MODEL, n_ctx=256, n_threads=2)`` passes to the class."""
    return llms._wrapper_params(MODEL, 256, 2, 0, 0.0, 64, dict(kwargs))


def test_helpers_return_the_tested_classes() -> None:
    chat = llms.local_chat_model(MODEL, n_ctx=256, n_threads=2)
    llm = llms.local_llm(MODEL, n_ctx=256, n_threads=2)
    assert type(chat) is ChatLocalLlamaCpp
    assert type(llm) is LocalLlamaCpp
    assert chat.model_name == llm.model_name == MODEL


class TestChatLocalLlamaCppStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatLocalLlamaCpp

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # The suite passes temperature, max_tokens and stop itself (its standard parameters).
        standard = {"temperature", "max_tokens", "stop"}
        return {k: v for k, v in _helper_params().items() if k not in standard}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False


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

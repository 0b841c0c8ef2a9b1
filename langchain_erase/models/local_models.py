"""The local LangChain models (kept import path): `LocalLlamaCpp` (completion LLM) and
`ChatLocalLlamaCpp` (chat model), over llama-cpp-python and langchain-core only."""

from __future__ import annotations

from langchain_erase.models.chat_model import ChatLocalLlamaCpp
from langchain_erase.models.llama_model import PROVIDER
from langchain_erase.models.llm import LocalLlamaCpp

__all__ = ["PROVIDER", "ChatLocalLlamaCpp", "LocalLlamaCpp"]

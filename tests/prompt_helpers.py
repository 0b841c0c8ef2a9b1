"""The chat prompt the prompt, input and cache tests build around a selector."""

from __future__ import annotations

from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.prompts import ChatPromptTemplate, FewShotChatMessagePromptTemplate

__all__ = ["chat_few_shot"]


def chat_few_shot(selector: BaseExampleSelector) -> FewShotChatMessagePromptTemplate:
    """Each selected example as a human turn (its ``input``) and an ai turn (its ``output``),
    selected by the prompt's ``input`` variable."""
    return FewShotChatMessagePromptTemplate(
        example_selector=selector,
        example_prompt=ChatPromptTemplate.from_messages([("human", "{input}"), ("ai", "{output}")]),
        input_variables=["input"],
    )

"""The selector inside LangChain's few-shot prompt templates, sync and async."""

from __future__ import annotations

from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.prompts import (
    ChatPromptTemplate,
    FewShotPromptTemplate,
    PromptTemplate,
)
from prompt_helpers import chat_few_shot

from langchain_erase import ERASEExampleSelector

EXAMPLES = [{"input": f"word{i}", "output": f"WORD{i}"} for i in range(40)]


def selector() -> ERASEExampleSelector:
    return ERASEExampleSelector.from_examples(
        EXAMPLES, DeterministicFakeEmbedding(size=16), k=3, input_keys=["input"]
    )


def test_few_shot_prompt_template_uses_selected_and_drops_deleted() -> None:
    sel = selector()
    prompt = FewShotPromptTemplate(
        example_selector=sel,
        example_prompt=PromptTemplate.from_template("In: {input}\nOut: {output}"),
        prefix="Uppercase the word.",
        suffix="In: {input}\nOut:",
        input_variables=["input"],
    )
    text = prompt.format(input="hello")
    chosen = sel.select_examples({"input": "hello"})
    assert all(f"In: {e['input']}\nOut: {e['output']}" in text for e in chosen)
    victim = next(i for i in sel.ids if sel.get_example(i) == chosen[0])
    sel.delete_example(victim)
    assert f"In: {chosen[0]['input']}\n" not in prompt.format(input="hello")


async def test_few_shot_chat_template_async() -> None:
    sel = selector()
    few_shot = chat_few_shot(sel)
    chat = ChatPromptTemplate.from_messages(
        [("system", "Uppercase."), few_shot, ("human", "{input}")]
    )
    messages = await chat.aformat_messages(input="hello")
    chosen = await sel.aselect_examples({"input": "hello"})
    assert len(messages) == 2 + 2 * len(chosen)
    assert [m.content for m in messages[1:-1]] == [
        v for e in chosen for v in (e["input"], e["output"])
    ]
    assert messages == chat.format_messages(input="hello")

"""Deleting an example also erases it from llama.cpp's prompt cache and live context, and from
the LangChain LLM cache the model answers from."""

from __future__ import annotations

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.prompts import FewShotPromptTemplate, PromptTemplate
from llama_cpp.llama_cache import LlamaRAMCache

from langchain_erase import ERASEExampleSelector, LlamaCppEmbeddings, default_example_id
from langchain_erase.cli import load_demo_examples
from langchain_erase.evaluation.tasks import DEFAULT_DATA_DIR
from langchain_erase.llms import _contains, _needles, evict_on_delete, local_llm

DATASETS = DEFAULT_DATA_DIR

pytestmark = pytest.mark.integration


def test_selector_deletion_evicts_every_cached_prompt_that_showed_the_example() -> None:
    _, pool = load_demo_examples(DATASETS, limit=40)
    selector = ERASEExampleSelector.from_examples(
        pool, LlamaCppEmbeddings(n_threads=2), k=3, input_keys=["input"]
    )
    prompt = FewShotPromptTemplate(
        example_selector=selector,
        example_prompt=PromptTemplate.from_template("Review: {input}\nSentiment: {output}"),
        suffix="Review: {input}\nSentiment:",
        input_variables=["input"],
    )
    llm_cache = InMemoryCache()
    llm = local_llm("smollm2-135m", n_ctx=1024, n_threads=2, max_tokens=1, cache=llm_cache)
    llm.client.set_cache(LlamaRAMCache())
    evict_on_delete(selector, llm)  # also purges the model's own LangChain cache
    queries = ["Great fun.", "Awful.", "Not bad at all."]
    for query in queries:
        (prompt | llm).invoke({"input": query})
    shown = selector.select_examples({"input": queries[0]})[0]
    needles = _needles(llm.client, list(shown.values()))
    cached = list(llm.client.cache.cache_state)
    assert any(_contains(key, needles) for key in cached)
    assert any(shown["input"] in prompt for prompt, _ in llm_cache._cache)

    selector.delete_example(default_example_id(shown))

    remaining = list(llm.client.cache.cache_state)
    assert not any(_contains(key, needles) for key in remaining)
    live = llm.client.input_ids[: llm.client.n_tokens]
    assert not _contains(live, needles)
    assert not any(shown["input"] in prompt for prompt, _ in llm_cache._cache)

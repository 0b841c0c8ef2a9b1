"""Deleting an example purges LangChain LLM caches of every prompt that showed it.

Real caches (``InMemoryCache``, ``SQLiteCache``), real few-shot prompt templates fed by the
selector, and LangChain's fake LLMs populating the caches through ``set_llm_cache``/``cache=``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.caches import BaseCache, InMemoryCache
from langchain_core.globals import get_llm_cache, set_llm_cache
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.prompts import (
    ChatPromptTemplate,
    FewShotPromptTemplate,
    PromptTemplate,
)
from langchain_core.runnables import Runnable
from prompt_helpers import chat_few_shot
from store_helpers import fake

from langchain_erase import ERASEExampleSelector, InvalidParameterError, default_example_id
from langchain_erase.caches import example_texts, purge_llm_cache, purge_llm_caches_on_delete

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.cache import SQLAlchemyMd5Cache, SQLiteCache

# Texts with quotes, a newline, non-ASCII and HTML metacharacters: chat prompts cache them
# JSON-escaped and mustache templates HTML-escape them, so verbatim matching misses both.
EXAMPLES = [
    {"input": f'word "{w}" <{i}>\nnaïve & co', "output": f'"opposite" n°{i}'}
    for i, w in enumerate(["hot", "up", "big", "fast", "light", "early", "open", "wet", "loud"])
]
QUERIES = ["warm", "down", "small", "slow", "dark", "late", "shut", "dry", "quiet", "soft"]
UNRELATED = ["What is 2 + 2?", "Name a colour."]  # cached prompts that show no example


@pytest.fixture
def selector() -> ERASEExampleSelector:
    return ERASEExampleSelector.from_examples(EXAMPLES, fake(), k=3, input_keys=["input"])


@pytest.fixture
def global_cache() -> Iterator[InMemoryCache]:
    previous = get_llm_cache()
    cache = InMemoryCache()
    set_llm_cache(cache)
    yield cache
    set_llm_cache(previous)


def _few_shot(selector: ERASEExampleSelector, template_format: str = "f-string") -> object:
    example = "Input: {input}\nOutput: {output}"
    if template_format == "mustache":
        example = "Input: {{input}}\nOutput: {{output}}"
    return FewShotPromptTemplate(
        example_selector=selector,
        example_prompt=PromptTemplate.from_template(example, template_format=template_format),
        suffix="Input: {input}\nOutput:",
        input_variables=["input"],
    )


def _populate(chain: object, model: object) -> None:
    """Cache a few-shot answer per query, and answers to prompts without examples."""
    assert isinstance(chain, Runnable) and isinstance(model, Runnable)
    for query in QUERIES:
        chain.invoke({"input": query})
    for prompt in UNRELATED:
        model.invoke(prompt)


def _cached_prompts(cache: BaseCache) -> list[str]:
    """Every prompt a cache holds, read back through its public lookup-free storage."""
    if isinstance(cache, InMemoryCache):
        return [prompt for prompt, _ in cache._cache]
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    assert isinstance(cache, SQLiteCache)
    with Session(cache.engine) as session:
        return list(session.execute(select(cache.cache_schema.prompt)).scalars())


def _shown_and_deleted(selector: ERASEExampleSelector) -> dict[str, str]:
    """Delete the first example the first query was shown; return it."""
    shown = selector.select_examples({"input": QUERIES[0]})[0]
    selector.delete_example(default_example_id(shown))
    return shown


def _check_purged(
    cache: BaseCache, before: list[str], deleted: dict[str, str], shows: object
) -> None:
    assert callable(shows)
    hit = [p for p in before if shows(p, deleted)]
    assert hit, "the deleted example was in no cached prompt: the test shows nothing"
    assert len(hit) < len(before), "every prompt showed it: the test cannot see over-purging"
    after = _cached_prompts(cache)
    assert sorted(after) == sorted(p for p in before if not shows(p, deleted))


def _shows_verbatim(prompt: str, example: dict[str, str]) -> bool:
    return example["input"] in prompt


def test_global_in_memory_cache_loses_prompts_that_showed_a_deleted_example(
    selector: ERASEExampleSelector, global_cache: InMemoryCache
) -> None:
    purge_llm_caches_on_delete(selector)  # the global cache set by set_llm_cache
    llm = FakeListLLM(responses=["ok"])
    _populate(_few_shot(selector) | llm, llm)  # type: ignore[operator]
    before = _cached_prompts(global_cache)
    assert len(before) == len(QUERIES) + len(UNRELATED)
    deleted = _shown_and_deleted(selector)
    _check_purged(global_cache, before, deleted, _shows_verbatim)


def test_sqlite_cache_given_to_the_model(selector: ERASEExampleSelector, tmp_path: Path) -> None:
    cache = SQLiteCache(str(tmp_path / "llm-cache.db"))
    purge_llm_caches_on_delete(selector, cache)
    llm = FakeListLLM(responses=["a", "b"], cache=cache)
    _populate(_few_shot(selector) | llm, llm)  # type: ignore[operator]
    before = _cached_prompts(cache)
    deleted = _shown_and_deleted(selector)
    _check_purged(cache, before, deleted, _shows_verbatim)


def test_chat_prompts_are_matched_in_their_json_serialized_form(
    selector: ERASEExampleSelector,
) -> None:
    cache = InMemoryCache()
    purge_llm_caches_on_delete(selector, cache)
    few_shot = chat_few_shot(selector)
    prompt = ChatPromptTemplate.from_messages([few_shot, ("human", "{input}")])
    chat = FakeListChatModel(responses=["ok"], cache=cache)
    _populate(prompt | chat, chat)
    before = _cached_prompts(cache)
    deleted = _shown_and_deleted(selector)
    assert not any(deleted["input"] in p for p in before), "chat keys are JSON, not verbatim"
    escaped = deleted["input"].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    escaped = escaped.replace("ï", "\\u00ef")
    _check_purged(cache, before, deleted, lambda p, _: escaped in p)


def test_mustache_prompts_are_matched_html_escaped(selector: ERASEExampleSelector) -> None:
    cache = InMemoryCache()
    purge_llm_caches_on_delete(selector, cache)
    llm = FakeListLLM(responses=["ok"], cache=cache)
    _populate(_few_shot(selector, "mustache") | llm, llm)  # type: ignore[operator]
    before = _cached_prompts(cache)
    deleted = _shown_and_deleted(selector)
    escaped = deleted["input"].replace("&", "&amp;").replace('"', "&quot;")
    escaped = escaped.replace("<", "&lt;").replace(">", "&gt;")
    assert not any(deleted["input"] in p for p in before)
    _check_purged(cache, before, deleted, lambda p, _: escaped in p)


def test_example_texts_are_every_non_blank_rendered_value() -> None:
    # a number is shown as `3` in a formatted prompt: its text is purged too
    assert example_texts({"a": "x y", "b": "  ", "c": 3, "d": "z"}) == ["x y", "3", "z"]


def test_blank_texts_purge_nothing() -> None:
    cache = InMemoryCache()
    cache.update("Input: a\nOutput:", "llm", [])
    assert purge_llm_cache(cache, ["", "  "]) == 0
    assert purge_llm_cache(cache, ["Input: a"]) == 1
    assert cache.lookup("Input: a\nOutput:", "llm") is None


def test_unsearchable_caches_are_refused_at_registration(
    selector: ERASEExampleSelector, tmp_path: Path
) -> None:
    from sqlalchemy import create_engine

    md5 = SQLAlchemyMd5Cache(create_engine(f"sqlite:///{tmp_path / 'md5.db'}"))
    with pytest.raises(InvalidParameterError, match="SQLAlchemyMd5Cache"):
        purge_llm_caches_on_delete(selector, InMemoryCache(), md5)
    with pytest.raises(InvalidParameterError, match="SQLAlchemyMd5Cache"):
        purge_llm_cache(md5, ["x"])


def test_no_cache_and_no_global_cache_is_an_error(selector: ERASEExampleSelector) -> None:
    previous = get_llm_cache()
    set_llm_cache(None)
    try:
        with pytest.raises(InvalidParameterError, match="no global LLM cache"):
            purge_llm_caches_on_delete(selector)
    finally:
        set_llm_cache(previous)


def test_evict_on_delete_refuses_a_model_cache_it_cannot_search(
    selector: ERASEExampleSelector, tmp_path: Path
) -> None:
    from sqlalchemy import create_engine

    from langchain_erase.llms import evict_on_delete

    md5 = SQLAlchemyMd5Cache(create_engine(f"sqlite:///{tmp_path / 'md5.db'}"))
    with pytest.raises(InvalidParameterError, match="SQLAlchemyMd5Cache"):
        evict_on_delete(selector, FakeListLLM(responses=["ok"], cache=md5))

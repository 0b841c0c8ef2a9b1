"""Purge LangChain LLM caches of every entry whose prompt showed a deleted example.

LangChain's LLM caches (``set_llm_cache(...)`` or a model's ``cache=``) key each answer by the
prompt text (for chat models: the messages serialized to JSON) and keep it until cleared. A few-
shot prompt built by :class:`~langchain_erase.ERASEExampleSelector` contains its examples, so
after a deletion such entries still hold the deleted text. :func:`purge_llm_caches_on_delete`
removes them on every deletion; :func:`purge_llm_cache` does it once.

An entry is purged when its prompt contains any string value of the example in any of the
forms a prompt can show it: verbatim (f-string and jinja2 templates), HTML-escaped (mustache
templates escape ``& " < >``) and JSON-escaped (chat messages serialized into the cache key,
with and without ``\\uXXXX`` escapes for non-ASCII). Matching errs towards purging too much
(a short label such as ``positive`` matches many prompts), which only costs cache misses.

Supported caches: ``langchain_core.caches.InMemoryCache`` and langchain-community's
``SQLAlchemyCache`` (``SQLiteCache`` included), whose entries can be enumerated. Caches keyed
by a hash of the prompt (``SQLAlchemyMd5Cache``) or remote ones cannot be searched by content
and are refused; see docs/usage.md for what to do about them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.caches import BaseCache, InMemoryCache
from langchain_core.globals import get_llm_cache

from langchain_erase.errors import InvalidParameterError
from langchain_erase.inputs import rendered_values

if TYPE_CHECKING:
    from langchain_erase.example_selectors import ERASEExampleSelector

__all__ = ["example_texts", "purge_llm_cache", "purge_llm_caches_on_delete"]

# Rows whose prompts are deleted per SQL statement (stays under SQLite's variable limit).
_SQL_CHUNK = 500


def example_texts(example: Mapping[str, Any]) -> list[str]:
    """The texts by which a formatted prompt can show an example's values.

    String values as they are; other JSON values both as ``str()`` renders them in a prompt
    template and as the canonical JSON that is embedded (see
    :func:`langchain_erase.inputs.rendered_values`).

    Args:
        example: an example as the selector stores it.

    Returns:
        Distinct non-blank texts, in key order.
    """
    return rendered_values(example)


def _forms(texts: Iterable[str]) -> set[str]:
    """Every spelling of ``texts`` that can occur in a cached prompt key."""
    forms: set[str] = set()
    for text in texts:
        forms.add(text)
        # mustache templates HTML-escape values (& first, as langchain_core's renderer does)
        forms.add(
            text.replace("&", "&amp;")
            .replace('"', "&quot;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
        )
        # chat prompts are cached as their messages serialized to JSON
        forms.add(json.dumps(text)[1:-1])
        forms.add(json.dumps(text, ensure_ascii=False)[1:-1])
    return forms


def _shows(prompt: str, forms: set[str]) -> bool:
    return any(form in prompt for form in forms)


def _sqlalchemy_cache_type() -> type | None:
    """langchain-community's ``SQLAlchemyCache`` if that module is loaded (an instance of it can
    exist only then), without importing the optional package."""
    module = sys.modules.get("langchain_community.cache")
    cache_type: type | None = getattr(module, "SQLAlchemyCache", None)
    return cache_type


def _check_supported(cache: BaseCache) -> BaseCache:
    """``cache`` if its entries can be searched by prompt, else an error."""
    sqlalchemy_cache = _sqlalchemy_cache_type()
    if isinstance(cache, InMemoryCache) or (
        sqlalchemy_cache is not None and isinstance(cache, sqlalchemy_cache)
    ):
        return cache
    raise InvalidParameterError(
        f"cannot search a {type(cache).__name__} by prompt text; supported: InMemoryCache, "
        "SQLAlchemyCache/SQLiteCache (clear other caches yourself after deletions)"
    )


def _purge_in_memory(cache: InMemoryCache, forms: set[str]) -> int:
    # InMemoryCache has no public way to list its keys; its dict is keyed (prompt, llm_string).
    entries: dict[tuple[str, str], Any] = cache._cache
    hits = [key for key in list(entries) if _shows(key[0], forms)]
    for key in hits:
        entries.pop(key, None)
    return len(hits)


def _purge_sqlalchemy(cache: Any, forms: set[str]) -> int:
    from sqlalchemy import delete, select
    from sqlalchemy.orm import Session

    table = cache.cache_schema
    with Session(cache.engine) as session, session.begin():
        keys = session.execute(select(table.prompt, table.llm).distinct()).all()
        hits = [(prompt, llm) for prompt, llm in keys if _shows(prompt, forms)]
        prompts = sorted({prompt for prompt, _ in hits})
        for start in range(0, len(prompts), _SQL_CHUNK):
            chunk = prompts[start : start + _SQL_CHUNK]
            session.execute(delete(table).where(table.prompt.in_(chunk)))
    return len(hits)


def purge_llm_cache(cache: BaseCache, texts: Iterable[str]) -> int:
    """Remove every entry of ``cache`` whose prompt contains any of ``texts``.

    Args:
        cache: an ``InMemoryCache`` or a ``SQLAlchemyCache`` (e.g. ``SQLiteCache``).
        texts: texts to erase (an example's values: see :func:`example_texts`).

    Returns:
        The number of cached (prompt, model) entries removed.

    Raises:
        InvalidParameterError: the cache cannot be searched by prompt text.
    """
    _check_supported(cache)
    forms = _forms(text for text in texts if text.strip())
    if not forms:
        return 0
    if isinstance(cache, InMemoryCache):
        return _purge_in_memory(cache, forms)
    return _purge_sqlalchemy(cache, forms)


def purge_llm_caches_on_delete(selector: ERASEExampleSelector, *caches: BaseCache) -> None:
    """Make every deletion from ``selector`` also purge LLM caches of the deleted example.

    Args:
        selector: the selector whose deletions to follow.
        *caches: the caches to purge (a model's ``cache=`` instance, ...); none means the
            global LLM cache set by ``set_llm_cache`` now (set it before registering).

    Raises:
        InvalidParameterError: no cache given and none set globally, or a cache that cannot
            be searched by prompt text; nothing is registered then.
    """
    if not caches:
        global_cache = get_llm_cache()
        if global_cache is None:
            raise InvalidParameterError("no cache given and no global LLM cache is set")
        caches = (global_cache,)
    targets = [_check_supported(cache) for cache in caches]

    def purge(_example_id: str, example: Mapping[str, object]) -> None:
        texts = example_texts(example)
        for cache in targets:
            purge_llm_cache(cache, texts)

    selector.add_deletion_listener(purge)

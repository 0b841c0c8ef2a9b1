"""Examples and query variables at the public boundary: validation, canonical JSON, ids, text.

The policy mirrors LangChain's similarity selectors where it can:

- **Examples** are non-empty dicts with string keys whose values have a JSON form: strings,
  numbers (finite), booleans, None, and lists or string-keyed dicts of those (tuples become
  lists). They are stored as their JSON round trip, a deep copy that a caller's later
  mutation cannot reach and that a saved and reloaded selector returns unchanged.
- **Ids** are the first 32 hex digits of sha256 of the example's canonical JSON (sorted
  keys, no whitespace, UTF-8; `langchain_erase.core.canonical`), unless the caller gives ids.
- **Embedded text** is the values of the input keys (all keys when none are set), sorted by
  key and joined by single spaces, as LangChain's `SemanticSimilarityExampleSelector` does; a
  value that is not a string contributes its canonical JSON (``3``, ``true``, ``[1,2]``).
- **Query variables** are checked only for the input keys: other prompt variables (chat
  history as message objects, a system-prompt string) pass through untouched and unread.
  Without input keys every variable is part of the query text, so each needs a JSON form.
- **Exact duplicates** (an example whose id is already present, which for default ids means
  the same content) are refused with `DuplicateExampleError` and nothing is added: one id is
  one member, so a deletion request always removes everything stored under that id.
  Deduplicate first with ``{default_example_id(e): e for e in examples}.values()``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, TypeAlias, cast

from langchain_erase.core.canonical import canonical_json, default_example_id
from langchain_erase.errors import InvalidExampleError

__all__ = [
    "Example",
    "JSONValue",
    "check_unicode",
    "embedded_text",
    "embedded_texts",
    "encodable",
    "example_ids",
    "parse_example",
    "rendered_values",
    "validate_example",
    "validate_query",
]

JSONValue: TypeAlias = str | int | float | bool | list["JSONValue"] | dict[str, "JSONValue"] | None
#: An example as stored and returned: string keys, JSON values.
Example: TypeAlias = dict[str, JSONValue]

#: Nesting deeper than this is refused (it also stops self-containing lists).
MAX_DEPTH = 64


def _plain(value: object, where: str, depth: int) -> JSONValue:
    """A JSON copy of `value`, or InvalidExampleError naming where it has no JSON form."""
    if depth > MAX_DEPTH:
        raise InvalidExampleError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        check_unicode(value, where)
        return value
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidExampleError(f"{where} is {value!r}, which has no JSON form")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{n}]", depth + 1) for n, item in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, JSONValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidExampleError(f"{where} has a non-string key {key!r:.40}")
            check_unicode(key, f"a key of {where}")
            out[key] = _plain(item, f"{where}[{key!r:.40}]", depth + 1)
        return out
    raise InvalidExampleError(
        f"{where} is a {type(value).__name__}, which has no JSON form "
        "(use strings, numbers, booleans, None, lists or dicts)"
    )


class _UnusualValueError(Exception):
    """`_plain_fast` met something it does not handle; `_plain` decides (and names it)."""


def _plain_fast(value: Any, depth: int) -> JSONValue:
    """`_plain` for values built of exactly str, int, float, bool, None, list and dict.

    The same copy as `_plain` without building an error location per value; anything else
    (a subclass, a tuple, a bad value) raises `_UnusualValueError` or UnicodeEncodeError,
    and `_plain` handles it.
    """
    kind = type(value)
    if kind is str:
        if not value.isascii():
            value.encode("utf-8")  # UnicodeEncodeError: a lone surrogate
        return cast(str, value)
    if value is None or kind is bool or kind is int:
        return cast(JSONValue, value)
    if kind is float:
        if not math.isfinite(value):
            raise _UnusualValueError
        return cast(float, value)
    if depth >= MAX_DEPTH:  # a container's items sit one level deeper
        raise _UnusualValueError
    if kind is dict:
        out: dict[str, JSONValue] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _UnusualValueError
            if not key.isascii():
                key.encode("utf-8")
            if type(item) is str and item.isascii():  # the common case, inline
                out[key] = item
            else:
                out[key] = _plain_fast(item, depth + 1)
        return out
    if kind is list:
        return [_plain_fast(item, depth + 1) for item in value]
    raise _UnusualValueError


def encodable(text: str) -> bool:
    """Whether `text` can be stored as UTF-8 (False for a lone surrogate).

    Args:
        text: The string.

    Returns:
        True unless no UTF-8 file, database or hash can take it.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_unicode(text: str, what: str) -> None:
    """Refuse strings that cannot be stored as UTF-8 (lone surrogates).

    Args:
        text: The string.
        what: How the error message names it.

    Raises:
        InvalidExampleError: `text` holds a lone surrogate.
    """
    if not encodable(text):
        raise InvalidExampleError(f"{what} contains a lone surrogate (not valid Unicode)")


def validate_example(example: object, required: Sequence[str], what: str = "example") -> Example:
    """Check an example and return its JSON copy.

    Args:
        example: What the caller passed.
        required: Keys that must be present (input and example keys).
        what: How error messages name the value.

    Returns:
        A new dict with string keys and JSON values (tuples turned into lists).

    Raises:
        InvalidExampleError: Not a non-empty dict, a key is not a string, a value has no
            JSON form, or a required key is missing.
    """
    if not isinstance(example, Mapping) or not example:
        raise InvalidExampleError(f"{what} must be a non-empty dict, got {example!r:.80}")
    try:
        copy = cast(Example, _plain_fast(example, 0))
    except (_UnusualValueError, UnicodeEncodeError):
        copy = cast(Example, _plain(example, what, 0))  # a Mapping always comes back as a dict
    missing = [key for key in required if key not in copy]
    if missing:
        raise InvalidExampleError(f"{what} is missing keys {missing}")
    return copy


def validate_query(input_variables: object, input_keys: Sequence[str] | None) -> Example:
    """The variables of a selection call that the selector reads, checked.

    Args:
        input_variables: The prompt's variables, as LangChain passes them.
        input_keys: The selector's input keys, or None to read every variable.

    Returns:
        The input keys' values as JSON (every variable without input keys); other
        variables are not read, copied or checked.

    Raises:
        InvalidExampleError: Not a dict, an input key is missing, or a value it reads has
            no JSON form.
    """
    if not isinstance(input_variables, Mapping):
        raise InvalidExampleError(f"input_variables must be a dict, got {input_variables!r:.80}")
    if input_keys:
        missing = [key for key in input_keys if key not in input_variables]
        if missing:
            raise InvalidExampleError(f"input_variables is missing keys {missing}")
        read = {key: input_variables[key] for key in input_keys}
    else:
        read = dict(input_variables)
        if not read:
            raise InvalidExampleError("input_variables is empty and the selector has no input_keys")
    try:
        return validate_example(read, (), "input_variables")
    except InvalidExampleError as err:
        if input_keys:
            raise
        raise InvalidExampleError(
            f"{err}; without input_keys every prompt variable is part of the query, so set "
            "input_keys to the variables that should be matched"
        ) from None


def example_ids(examples: Sequence[Example], ids: object) -> list[str]:
    """The ids of examples about to be added: the given ones, checked, or the default ids.

    Args:
        examples: The validated examples.
        ids: None (default ids), or one non-empty string per example, in their order: a
            list, tuple or iterator (a set or mapping is refused: it would pair ids with
            examples in hash order, which varies per process).

    Returns:
        One id per example.

    Raises:
        InvalidExampleError: The ids are not one non-empty, valid Unicode string each.
    """
    if ids is None:
        return [default_example_id(e) for e in examples]
    if isinstance(ids, str | bytes | AbstractSet | Mapping) or not isinstance(ids, Iterable):
        raise InvalidExampleError("ids must be a list with one id per example, in order")
    new_ids = list(ids)
    if len(new_ids) != len(examples):
        raise InvalidExampleError("ids must be a list with one id per example")
    if not all(isinstance(i, str) and i for i in new_ids):
        raise InvalidExampleError("ids must be non-empty strings")
    if not encodable("".join(new_ids)):  # one check for all; then find the culprit
        for example_id in new_ids:
            check_unicode(example_id, "an id")
    return new_ids


def parse_example(text: str) -> Example:
    """Parse a stored canonical JSON example.

    Args:
        text: The stored text.

    Returns:
        The example.

    Raises:
        InvalidExampleError: The text is not a JSON object that `validate_example` accepts
            (a ValueError, as is the JSON decoder's own error).
    """
    return validate_example(json.loads(text), (), "a stored example")


def embedded_text(example: Mapping[str, JSONValue], input_keys: Sequence[str] | None) -> str:
    """The text that is embedded for an example or a query.

    Args:
        example: A validated example or query.
        input_keys: The selector's input keys, or None for all keys.

    Returns:
        The values of the keys, sorted by key, joined by spaces (non-strings as JSON).
    """
    keys = sorted(input_keys) if input_keys else sorted(example)
    return " ".join(_text(example[key]) for key in keys)


def embedded_texts(
    examples: Sequence[Mapping[str, JSONValue]], input_keys: Sequence[str] | None
) -> list[str]:
    """`embedded_text` of each example, the input keys sorted once for the whole batch.

    Args:
        examples: Validated examples.
        input_keys: The selector's input keys, or None for all keys.

    Returns:
        One text per example, equal to `embedded_text(example, input_keys)`.
    """
    if not input_keys:
        return [embedded_text(example, None) for example in examples]
    keys = sorted(input_keys)
    if len(keys) == 1:
        (key,) = keys
        return [_text(example[key]) for example in examples]
    return [" ".join([_text(example[key]) for key in keys]) for example in examples]


def _text(value: JSONValue) -> str:
    return value if isinstance(value, str) else canonical_json(value)


def rendered_values(example: Mapping[str, JSONValue]) -> list[str]:
    """Every text by which an example's values can appear in a prompt, for cache erasure.

    A prompt template renders a value with ``str()`` (``4``, ``['add']``, ``True``);
    the embedded text uses canonical JSON (``[\"add\"]``, ``true``). Both are listed for
    non-string values, so a cache purge finds the example whichever way it was shown.

    Args:
        example: A stored example.

    Returns:
        Distinct non-blank texts, in key order.
    """
    texts: dict[str, None] = {}
    for key in sorted(example):
        value = example[key]
        for text in (value,) if isinstance(value, str) else (str(value), canonical_json(value)):
            if text.strip():  # a blank text would match every prompt
                texts[text] = None
    return list(texts)

"""The one serialization of an example, and the default id derived from it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical_json", "default_example_id", "redact_id"]

#: What `json.dumps(example, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
#: allow_nan=False)` builds on every call: one shared encoder (it keeps no state between
#: calls) saves that construction per example.
_ENCODER = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
)


def canonical_json(example: object) -> str:
    """The one serialization of an example (or of one JSON value) used for ids, digests,
    stores and the embedded text of non-string values.

    Args:
        example: A JSON value: a dict with string keys, a list, a string, a finite number,
            a boolean or None (as `langchain_erase.inputs.validate_example` returns).

    Returns:
        Compact JSON with sorted keys and non-ASCII characters kept as they are.
    """
    return _ENCODER.encode(example)


def default_example_id(example: Mapping[str, Any]) -> str:
    """Stable id of an example.

    Args:
        example: A validated example (string keys, JSON values).

    Returns:
        The first 32 hex digits of sha256 of its canonical JSON.
    """
    return hashlib.sha256(canonical_json(example).encode("utf-8")).hexdigest()[:32]


def redact_id(example_id: object) -> str:
    """How an id appears in error messages: never verbatim (ids may be e-mail addresses).

    Args:
        example_id: Any value given as an id.

    Returns:
        "id sha256:<first 12 hex digits>" for strings, else the type name.
    """
    if not isinstance(example_id, str):
        return f"id of type {type(example_id).__name__}"
    raw = example_id.encode("utf-8", "surrogatepass")
    return f"id sha256:{hashlib.sha256(raw).hexdigest()[:12]}"

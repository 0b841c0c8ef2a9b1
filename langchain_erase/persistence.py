"""Snapshots of a selector in one `.npz` file: JSON metadata and raw arrays, no pickle.

A snapshot stores the examples, their stored (normalized) vectors and the projection
matrix, plus the state digest. Loading refits from the vectors — the guarantee makes the
refit identical to the saved state — and refuses the file unless the digests agree, so a
corrupted, truncated or foreign file can never become a wrong selector.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_erase.errors import StateFileError

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from langchain_erase.example_selectors import ERASEExampleSelector

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "load_selector",
    "save_selector",
    "selector_params",
]

FORMAT_NAME = "langchain-erase-snapshot"
FORMAT_VERSION = 1


def _json_array(value: Any) -> np.ndarray[Any, np.dtype[np.uint8]]:
    return np.frombuffer(json.dumps(value, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def selector_params(selector: ERASEExampleSelector) -> dict[str, Any]:
    """The constructor arguments that define a selector's state (JSON-serializable)."""
    params = selector.params
    return {
        "k": params.k,
        "epsilon": params.epsilon,
        "seed": params.seed,
        "gamma": params.gamma,
        "max_iter": params.max_iter,
        "p": selector.p,
        "selection": selector.selection,
        "input_keys": selector.input_keys,
        "example_keys": selector.example_keys,
    }


def save_selector(selector: ERASEExampleSelector, path: Path) -> None:
    """Write atomically: a crash leaves the old file or the new one, never a mix."""
    ids = selector.ids
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "params": selector_params(selector),
        "count": len(ids),
        "dimension": selector.dimension,
        "state_digest": selector.state_digest(),
    }
    dimension = selector.dimension or 0
    vectors = (
        np.stack([selector._vectors[i] for i in ids])
        if ids
        else np.zeros((0, dimension), dtype=np.float32)
    )
    projection = selector._projection
    arrays = {
        "header": _json_array(header),
        "ids": _json_array(ids),
        "examples": _json_array([selector._examples[i] for i in ids]),
        "vectors": vectors,
        "projection": projection.matrix if projection is not None else np.zeros((0, 0)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)  # type: ignore[arg-type]
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as data:
            names = {"header", "ids", "examples", "vectors", "projection"}
            if set(data.files) != names:
                raise StateFileError(f"{path} is not a langchain-erase snapshot")
            out: dict[str, Any] = {
                key: json.loads(data[key].tobytes().decode("utf-8"))
                for key in ("header", "ids", "examples")
            }
            out["vectors"] = np.array(data["vectors"], dtype=np.float32)
            out["projection"] = np.array(data["projection"], dtype=np.float64)
            return out
    except StateFileError:
        raise
    except FileNotFoundError:
        raise StateFileError(f"no snapshot at {path}") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise StateFileError(f"{path} is corrupted or not a snapshot: {err}") from None


def load_selector(path: Path, embeddings: Embeddings) -> ERASEExampleSelector:
    from langchain_erase.example_selectors import ERASEExampleSelector

    data = _read(path)
    header = data["header"]
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise StateFileError(f"{path} is not a langchain-erase snapshot")
    if header.get("version") != FORMAT_VERSION:
        raise StateFileError(
            f"{path} has snapshot version {header.get('version')!r}; this langchain-erase "
            f"reads version {FORMAT_VERSION}"
        )
    ids, examples, vectors = data["ids"], data["examples"], data["vectors"]
    try:
        params = dict(header["params"])
        selector = ERASEExampleSelector(embeddings, **params)
        if len(ids) != header["count"] or len(examples) != len(ids) or len(vectors) != len(ids):
            raise StateFileError(f"{path} is truncated: counts disagree")
        if ids:
            selector._load_fitted(ids, examples, vectors, data["projection"])
    except StateFileError:
        raise
    except (TypeError, ValueError, KeyError) as err:
        raise StateFileError(f"{path} has invalid contents: {err}") from None
    if selector.state_digest() != header["state_digest"]:
        raise StateFileError(f"{path} failed its integrity check (state digest mismatch)")
    return selector

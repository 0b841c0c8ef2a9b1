"""Snapshots of an example set in one `.npz` file: JSON metadata and raw arrays, no pickle.

A snapshot holds the rows (ids, canonical JSON texts, stored float32 vectors), the projection
matrix and a header (parameters, state digest and, for a store-backed selector, the store's
set name and log position). Loading refits from the rows and refuses the file unless the
digests agree, so a corrupted, truncated or foreign file never becomes a wrong selector.

Writes are atomic (temporary file, fsync, rename) and private (mode 0600); a temporary file
left by an interrupted save is removed by the next save to the same path.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from langchain_erase.errors import StateFileError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "Snapshot", "read_snapshot", "write_snapshot"]

FORMAT_NAME = "langchain-erase-snapshot"
FORMAT_VERSION = 2
_ARRAYS = {"header", "ids", "texts", "vectors", "projection"}


@dataclass(frozen=True)
class Snapshot:
    """The contents of a snapshot file.

    Attributes:
        header: JSON metadata ("params", "state_digest", "count", "dimension", and
            "store": {"set", "position"} or None).
        ids: Example ids, sorted.
        texts: Canonical JSON texts, one per id.
        vectors: float32 (n, D) stored vectors.
        projection: float64 (D, p) projection matrix; (0, 0) when empty.
    """

    header: dict[str, Any]
    ids: list[str]
    texts: list[str]
    vectors: npt.NDArray[np.float32]
    projection: npt.NDArray[np.float64]


def _json_array(value: Any) -> npt.NDArray[np.uint8]:
    return np.frombuffer(json.dumps(value, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def write_snapshot(path: Path, snapshot: Snapshot) -> None:
    """Write atomically: a crash leaves the old file or the new one, never a mix.

    Args:
        path: Destination (its directory is created if needed).
        snapshot: What to write (the header gets the format name and version).
    """
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **snapshot.header}
    arrays = {
        "header": _json_array(header),
        "ids": _json_array(snapshot.ids),
        "texts": _json_array(snapshot.texts),
        "vectors": snapshot.vectors,
        "projection": snapshot.projection,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by an interrupted save
        stale.unlink(missing_ok=True)
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


def read_snapshot(path: Path) -> Snapshot:
    """Read and structurally check a snapshot (the digest is checked by the caller's refit).

    Args:
        path: The snapshot file.

    Returns:
        Its contents.

    Raises:
        StateFileError: Missing, corrupted, truncated, foreign or another version.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            if set(data.files) != _ARRAYS:
                raise StateFileError(f"{path} is not a langchain-erase snapshot (version 2)")
            header, ids, texts = (
                json.loads(data[key].tobytes().decode("utf-8"))
                for key in ("header", "ids", "texts")
            )
            vectors = np.array(data["vectors"], dtype=np.float32)
            projection = np.array(data["projection"], dtype=np.float64)
    except StateFileError:
        raise
    except FileNotFoundError:
        raise StateFileError(f"no snapshot at {path}") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise StateFileError(f"{path} is corrupted or not a snapshot: {err}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise StateFileError(f"{path} is not a langchain-erase snapshot")
    if header.get("version") != FORMAT_VERSION:
        raise StateFileError(
            f"{path} has snapshot version {header.get('version')!r}; this langchain-erase "
            f"reads version {FORMAT_VERSION}"
        )
    if (
        not isinstance(ids, list)
        or not isinstance(texts, list)
        or not all(isinstance(x, str) for x in (*ids, *texts))
        or len(ids) != header.get("count")
        or len(texts) != len(ids)
        or vectors.ndim != 2
        or len(vectors) != len(ids)
    ):
        raise StateFileError(f"{path} is truncated or inconsistent: counts disagree")
    return Snapshot(header, ids, texts, vectors, projection)

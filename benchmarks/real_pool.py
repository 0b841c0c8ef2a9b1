"""Real MiniLM embeddings of the task inputs in ../shared/datasets (pooled, de-duplicated).

Embeds distinct inputs, in a seeded random order, with the project's MiniLM GGUF
(`LlamaCppEmbeddings`) and caches the float32 matrix under .bench/ (ignored by git) after
every chunk, so an interrupted run keeps a uniform random sample of the pool and a later run
continues it. `--from-eval-cache` instead takes the vectors `langchain-erase eval` already
computed (its `cache/embeddings-minilm.npz`: the same model, full inputs, cut only past
MiniLM's 512 tokens) for every pooled input found there, in the same seeded order, and
embeds nothing. Usage:
    python benchmarks/real_pool.py [--datasets ../shared/datasets] [--minutes 20]
    python benchmarks/real_pool.py --from-eval-cache results/eval-all/cache/embeddings-minilm.npz
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

CACHE = Path(".bench/real_pool.npz")
MAX_CHARS = 900
CHUNK = 1024


def pooled_inputs(root: Path) -> list[str]:
    """Every distinct example input of the BBII and instruction-induction tasks, sorted."""
    texts: set[str] = set()
    for path in sorted(root.glob("bbii/*.json")):
        texts.update(e["input"] for e in json.loads(path.read_text())["examples"])
    for path in sorted(root.glob("instruction_induction/*/*.json")):
        examples = json.loads(path.read_text())["examples"]
        rows = examples.values() if isinstance(examples, dict) else examples
        texts.update(r.get("input") or json.dumps(r, sort_keys=True) for r in rows)
    return sorted(t for t in texts if t.strip())


def load() -> tuple[list[str], np.ndarray]:
    """(texts, float32 embeddings) embedded so far (a seeded random sample of the pool)."""
    data = np.load(CACHE, allow_pickle=False)
    return data["texts"].tolist(), data["vectors"]


def embed(root: Path, minutes: float) -> None:
    """Embed (more of) the pool for up to `minutes`, saving after every chunk."""
    from langchain_erase import LlamaCppEmbeddings

    texts = pooled_inputs(root)
    np.random.default_rng(0).shuffle(texts)  # type: ignore[arg-type]
    done: list[str] = []
    parts: list[np.ndarray] = []
    if CACHE.exists():
        done, vectors = load()
        parts = [vectors]
    model = LlamaCppEmbeddings(n_threads=2)
    deadline = time.monotonic() + minutes * 60
    while len(done) < len(texts) and time.monotonic() < deadline:
        chunk = texts[len(done) : len(done) + CHUNK]
        # MiniLM reads at most 512 tokens; the few longer inputs are embedded by their start
        parts.append(np.asarray(model.embed_documents([t[:MAX_CHARS] for t in chunk]), np.float32))
        done += chunk
        CACHE.parent.mkdir(exist_ok=True)
        np.savez(CACHE, texts=np.array(done), vectors=np.concatenate(parts))
        print(f"{len(done)} of {len(texts)} inputs embedded", flush=True)


def from_eval_cache(root: Path, path: Path) -> None:
    """Write the cache from an eval run's embedding cache (pooled inputs found there only)."""
    with np.load(path) as data:
        keys = json.loads(str(data["keys"]))
        found = {
            text: row
            for (kind, text), row in zip(keys, data["vectors"], strict=True)
            if kind == "doc"
        }
    texts = pooled_inputs(root)
    np.random.default_rng(0).shuffle(texts)  # type: ignore[arg-type]
    done = [t for t in texts if t in found]
    CACHE.parent.mkdir(exist_ok=True)
    np.savez(CACHE, texts=np.array(done), vectors=np.array([found[t] for t in done], np.float32))
    print(f"{len(done)} of {len(texts)} inputs taken from {path}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--from-eval-cache", type=Path)
    args = parser.parse_args()
    if args.from_eval_cache:
        from_eval_cache(args.datasets, args.from_eval_cache)
    else:
        embed(args.datasets, args.minutes)

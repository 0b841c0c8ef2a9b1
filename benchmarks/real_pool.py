"""Real MiniLM embeddings of every task input in ../shared/datasets (pooled, de-duplicated).

Embeds each distinct input once with the project's MiniLM GGUF (`LlamaCppEmbeddings`) and
caches the float32 matrix under .bench/ (ignored by git). Usage:
    python benchmarks/real_pool.py [--datasets ../shared/datasets]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

CACHE = Path(".bench/real_pool.npz")
MAX_CHARS = 900


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


def load(root: Path = Path("../shared/datasets")) -> tuple[list[str], np.ndarray]:
    """(texts, unit float32 embeddings), computed once and cached."""
    if CACHE.exists():
        data = np.load(CACHE, allow_pickle=False)
        return data["texts"].tolist(), data["vectors"]
    from langchain_erase import LlamaCppEmbeddings

    texts = pooled_inputs(root)
    model = LlamaCppEmbeddings(n_threads=1)
    start = time.perf_counter()
    # MiniLM reads at most 512 tokens; the few longer inputs are embedded by their start
    vectors = np.asarray(model.embed_documents([t[:MAX_CHARS] for t in texts]), np.float32)
    print(f"embedded {len(texts)} inputs in {time.perf_counter() - start:.0f} s", flush=True)
    CACHE.parent.mkdir(exist_ok=True)
    np.savez(CACHE, texts=np.array(texts), vectors=vectors)
    return texts, vectors


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    texts, vectors = load(parser.parse_args().datasets)
    print(len(texts), vectors.shape)

"""Cost of the constrained-JSON logits processors over a whole answer, by answer length.

``NoRepeatNgram`` and ``StringLengthPrior`` run at every generated token. Kept per token
(what the chat model does), a step costs O(1) in the answer's length; the baseline rebuilds
each from the whole answer at every step (a fresh processor per step, which is what the first
versions of both did), O(n) per step and O(n^2) per answer. Processor time only, no model
decoding, on SmolLM2's tokenizer, one thread; the answer is one long JSON string.

Run:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_json_processors.py --sizes 100 1000 3000
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from langchain_erase import llms
from langchain_erase.models.json_grammar import StringLengthPrior
from langchain_erase.models.llama_runtime import NoRepeatNgram, load_context


def whole_answer(ids: np.ndarray, make: Callable[[], Any], scores: np.ndarray) -> float:
    """Seconds for every step of the answer, given one processor per step or one in all."""
    start = time.perf_counter()
    for end in range(1, len(ids) + 1):
        make()(ids[:end], scores)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    args = parser.parse_args()
    llama = load_context(str(llms.resolve_model_path("smollm2-135m")), False, n_ctx=64)
    text = '{"note": "' + "a longer string of words, on and on " * (max(args.sizes) // 4)
    tokens = np.array(llama.tokenize(text.encode(), add_bos=False), dtype=np.intc)
    scores = np.zeros(llama.n_vocab(), dtype=np.float32)
    print(f"load average {os.getloadavg()}")
    print(
        "| answer tokens | guard per token (ms) | guard rebuilt (ms) | prior per token (ms) "
        "| prior rebuilt (ms) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n in args.sizes:
        ids = tokens[:n]
        guard = NoRepeatNgram(0, 8)
        prior = StringLengthPrior(llama, 0, 10**6, 48, 0.1)
        row = [
            whole_answer(ids, lambda g=guard: g, scores),
            whole_answer(ids, lambda: NoRepeatNgram(0, 8), scores),
            whole_answer(ids, lambda p=prior: p, scores),
            whole_answer(ids, lambda: StringLengthPrior(llama, 0, 10**6, 48, 0.1), scores),
        ]
        print(f"| {n:,} | " + " | ".join(f"{1e3 * t:,.1f}" for t in row) + " |")


if __name__ == "__main__":
    main()

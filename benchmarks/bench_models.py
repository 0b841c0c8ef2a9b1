"""Prompt-processing and generation speed of the local models, on this machine.

ERASE's cost model needs seconds per prompt token (few-shot prompts are long, answers short),
so this measures prompt tokens/s (one forward pass over a fresh context) and, for reference,
greedy generation tokens/s and MiniLM embedding tokens/s. Each figure is the fastest of
``--repeats`` runs: on a shared machine other processes only ever slow a run down. Run:

    .venv/bin/python benchmarks/bench_models.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import time

from langchain_erase.embeddings import LlamaCppEmbeddings
from langchain_erase.llms import MODEL_NAMES, load_llama

__all__ = ["main"]

_SENTENCE = "The quick brown fox jumps over the lazy dog while the cat watches from the window. "


def _bench_llm(model: str, threads: int, n_prompt: int, n_gen: int, repeats: int) -> list[str]:
    llama = load_llama(model, n_ctx=n_prompt + n_gen + 8, n_threads=threads)
    tokens = llama.tokenize((_SENTENCE * n_prompt).encode())[:n_prompt]
    prompt_s: list[float] = []
    gen_s: list[float] = []
    for _ in range(repeats):
        llama.reset()  # type: ignore[no-untyped-call]  # llama-cpp-python leaves it untyped
        start = time.perf_counter()
        llama.eval(tokens)
        prompt_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(n_gen):
            llama.eval([llama.sample(temp=0.0)])
        gen_s.append(time.perf_counter() - start)
    prompt_tps = n_prompt / min(prompt_s)
    gen_tps = n_gen / min(gen_s)
    return [model, f"{prompt_tps:,.0f}", f"{gen_tps:,.1f}"]


def _bench_minilm(threads: int, repeats: int) -> list[str]:
    embeddings = LlamaCppEmbeddings(n_threads=threads)
    texts = [_SENTENCE * 2] * 64
    embeddings.embed_documents(texts[:1])  # load the model outside the timing
    assert embeddings._llama is not None
    n_tokens = len(embeddings._llama.tokenize(texts[0].encode())) * len(texts)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        embeddings.embed_documents(texts)
        times.append(time.perf_counter() - start)
    return ["all-MiniLM-L6-v2 (embed)", f"{n_tokens / min(times):,.0f}", "-"]


def main() -> None:
    """Print a Markdown table of the best tokens/s over ``--repeats`` runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--gen-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = [
        _bench_llm(model, args.threads, args.prompt_tokens, args.gen_tokens, args.repeats)
        for model in MODEL_NAMES
    ]
    rows.append(_bench_minilm(args.threads, args.repeats))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{args.threads} threads, {args.prompt_tokens}-token prompt, best of {args.repeats}, "
        f"{os.cpu_count()} CPUs, load average after: {load}"
    )
    print("| model | prompt tokens/s | generated tokens/s |")
    print("|---|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

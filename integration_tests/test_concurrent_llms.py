"""Concurrent calls on one local model: threads, batch, ainvoke and astream at once.

llama.cpp aborts the whole process (``GGML_ASSERT``, exit 134) when two calls decode in one
context at the same time, so the workload runs in a child interpreter and the test checks its
exit status and answers. Run this file directly (``python integration_tests/
test_concurrent_llms.py``) to run the workload in the foreground.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
N_REQUESTS = 8
# The requests of benchmarks/bench_concurrency.py, with its first two examples as shots.
_WORKLOAD = json.loads((ROOT / "benchmarks" / "reviews.json").read_text())
REVIEWS: list[str] = _WORKLOAD["queries"]
PREFIX = "".join(f"Review: {r}\nSentiment: {s}\n\n" for r, s in _WORKLOAD["examples"][:2])


def _prompts() -> list[str]:
    return [f"{PREFIX}Review: {review}\nSentiment:" for review in REVIEWS[:N_REQUESTS]]


async def _async_calls(runnable: object, inputs: list[object]) -> list[str]:
    """Half the inputs through ``ainvoke``, half through ``astream``, all at once."""
    from langchain_core.runnables import Runnable

    assert isinstance(runnable, Runnable)

    def text(output: object) -> str:
        return str(getattr(output, "content", output))

    async def streamed(value: object) -> str:
        return "".join([text(chunk) async for chunk in runnable.astream(value)])

    async def invoked(value: object) -> str:
        return text(await runnable.ainvoke(value))

    calls = [streamed(v) if i % 2 else invoked(v) for i, v in enumerate(inputs)]
    return list(await asyncio.gather(*calls))


def _workload() -> None:
    """Sequential reference answers, then the same requests concurrently in four ways."""
    from langchain_erase.llms import local_chat_model, local_llm

    prompts = _prompts()
    llm = local_llm("gemma-3-270m", n_ctx=512, n_threads=2, max_tokens=6, stop=["\n"])
    expected = [llm.invoke(p) for p in prompts]
    with ThreadPoolExecutor(N_REQUESTS) as pool:
        assert list(pool.map(llm.invoke, prompts)) == expected, "threads"
    assert llm.batch(prompts, config={"max_concurrency": N_REQUESTS}) == expected, "batch"
    assert asyncio.run(_async_calls(llm, list(prompts))) == expected, "ainvoke/astream"

    chat = local_chat_model("smollm2-135m", n_ctx=512, n_threads=2, max_tokens=6)
    questions = [f"Is this review positive or negative? {r}" for r in REVIEWS[:N_REQUESTS]]
    chat_expected = [str(chat.invoke(q).content) for q in questions]
    assert asyncio.run(_async_calls(chat, list(questions))) == chat_expected, "chat"
    print("ok", expected)


def test_eight_concurrent_requests_on_one_model() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    result = subprocess.run(
        [sys.executable, __file__],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr[-3000:])
    assert result.stdout.startswith("ok "), result.stdout


def test_eviction_waits_for_a_stream_in_progress() -> None:
    from langchain_erase.llms import evict_prompts_containing, local_llm

    llm = local_llm("smollm2-135m", n_ctx=512, n_threads=2, max_tokens=12)
    prompt = _prompts()[0]
    events: list[str] = []
    stream = llm.stream(prompt)
    first = next(stream)  # the stream now holds the context
    evictor = threading.Thread(
        target=lambda: events.append(f"evicted {evict_prompts_containing(llm, [REVIEWS[0]])}")
    )
    evictor.start()
    evictor.join(timeout=1.0)
    events.append("stream still open")
    rest = "".join(stream)
    evictor.join()
    # Eviction ran only after the stream finished, and then cleared the live context.
    assert events == ["stream still open", "evicted 1"]
    assert first + rest == llm.invoke(prompt)
    assert llm.client.n_tokens > 0


if __name__ == "__main__":
    _workload()

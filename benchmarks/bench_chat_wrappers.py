"""Local chat model before and after issue #20, side by side in one run.

*Before*: langchain-community's ``ChatLlamaCpp`` (archived upstream; installed here only with
the ``eval``/``test`` extras, imported only by this script). *After*: this package's
``ChatLocalLlamaCpp``. Same GGUF (Gemma-3-270M by default), same llama.cpp settings (those of
``local_chat_model``), greedy, 2 threads. Per wrapper:

* prompt and generation tokens/s and first-token latency: one streamed answer to a
  ~300-token prompt, median of ``--repeats`` (tokens counted with the model's tokenizer);
* valid tool calls: over ``--prompts`` requests ("Record that we sold 7 lamps."), bound to
  one tool ``record_sale(item: str, quantity: int)`` and forced (the community wrapper takes
  the tool's name as a dict choice, ours ``"any"``): the share answered with exactly one call
  of that tool whose arguments validate against its schema, and the share with the quantity
  right;
* schema-valid structured output: over as many requests ("In 1998 the fair came to Oslo.
  Extract the city and the year."), ``with_structured_output(Event)`` with each wrapper's
  default method: the share that parses into ``Event``, and the share with both fields right.

Run (about 10 minutes on 2 cores):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_chat_wrappers.py \
        --out docs/bench_chat_wrappers.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ValidationError

from langchain_erase import llms
from langchain_erase.models.local_models import ChatLocalLlamaCpp

ITEMS = ["lamps", "chairs", "books", "kettles", "bicycles", "clocks", "mirrors", "tables", "rugs"]
CITIES = ["Oslo", "Lima", "Cairo", "Perth", "Quito", "Dublin", "Hanoi", "Nairobi", "Porto"]
_LONG = "The quick brown fox jumps over the lazy dog while the cat watches from the window. "


class Sale(BaseModel):
    """Record a sale."""

    item: str
    quantity: int


class Event(BaseModel):
    """An event: where and when."""

    city: str
    year: int


def record_sale(item: str, quantity: int) -> str:
    """Record that `quantity` units of `item` were sold."""
    return f"{quantity} {item}"


def wrappers(model: str, max_tokens: int) -> dict[str, Callable[[], BaseChatModel]]:
    chat_format = llms._CHAT_FORMATS.get(model)
    extra = {"model_kwargs": {"chat_format": chat_format}} if chat_format else {}
    params = llms._wrapper_params(model, 1024, 2, 0, 0.0, max_tokens, extra)

    def before() -> BaseChatModel:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from langchain_community.chat_models.llamacpp import ChatLlamaCpp
        return ChatLlamaCpp(**{k: v for k, v in params.items() if k != "model_name"})

    return {
        "before (langchain-community ChatLlamaCpp)": before,
        "after (ChatLocalLlamaCpp)": lambda: ChatLocalLlamaCpp(**params),
    }


def n_tokens(chat: BaseChatModel, text: str) -> int:
    """Tokens of `text` under the model's own tokenizer (both wrappers hold the same
    ``llama_cpp.Llama`` as ``client``; the community wrapper's ``get_num_tokens`` does not
    use it)."""
    client: Any = getattr(chat, "client")  # noqa: B009
    return len(client.tokenize(text.encode("utf-8"), add_bos=False, special=True))


def speed(chat: BaseChatModel, repeats: int) -> dict[str, float]:
    prompt = _LONG * 20
    n_prompt = n_tokens(chat, prompt)
    first, prompt_tps, gen_tps = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        times, text = [], ""
        for chunk in chat.stream(prompt):
            if chunk.content:
                times.append(time.perf_counter())
                text += str(chunk.content)
        if not times:
            continue
        n_gen = max(1, n_tokens(chat, text))
        first.append(times[0] - start)
        prompt_tps.append(n_prompt / (times[0] - start))
        if n_gen > 1 and times[-1] > times[0]:
            gen_tps.append((n_gen - 1) / (times[-1] - times[0]))
    return {
        "prompt_tokens": n_prompt,
        "first_token_s": statistics.median(first),
        "prompt_tokens_per_s": statistics.median(prompt_tps),
        "generated_tokens_per_s": statistics.median(gen_tps) if gen_tps else float("nan"),
    }


def tool_calls(chat: BaseChatModel, prompts: int, community: bool) -> dict[str, float]:
    choice: Any = {"type": "function", "function": {"name": "record_sale"}} if community else "any"
    bound = chat.bind_tools([record_sale], tool_choice=choice)
    valid = right = 0
    for i in range(prompts):
        item, quantity = ITEMS[i % len(ITEMS)], 2 + (i * 7) % 97
        try:
            message = bound.invoke(f"Record that we sold {quantity} {item}.")
            calls = getattr(message, "tool_calls", [])
            if len(calls) == 1 and calls[0]["name"] == "record_sale":
                sale = Sale.model_validate(calls[0]["args"])
                valid += 1
                right += sale.quantity == quantity
        except (ValueError, ValidationError, KeyError, TypeError):
            pass
    return {"valid": valid / prompts, "right": right / prompts}


def structured(chat: BaseChatModel, prompts: int) -> dict[str, float]:
    runnable = chat.with_structured_output(Event)
    valid = right = 0
    for i in range(prompts):
        city, year = CITIES[i % len(CITIES)], 1900 + (i * 13) % 120
        try:
            event = runnable.invoke(
                f"In {year} the fair came to {city}. Extract the city and the year."
            )
            event = Event.model_validate(event if isinstance(event, dict) else dict(event))
            valid += 1
            right += event.city == city and event.year == year
        except (ValueError, ValidationError, KeyError, TypeError):
            pass
    return {"valid": valid / prompts, "right": right / prompts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--prompts", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report: dict[str, Any] = {
        "model": args.model,
        "prompts": args.prompts,
        "loadavg_before": os.getloadavg(),
        "rows": [],
    }
    for name, make in wrappers(args.model, args.max_tokens).items():
        chat = make()
        row = {"wrapper": name, **speed(chat, args.repeats)}
        row["tool_calls"] = tool_calls(chat, args.prompts, community=name.startswith("before"))
        row["structured"] = structured(chat, args.prompts)
        row["loadavg"] = os.getloadavg()
        print(json.dumps(row), flush=True)
        report["rows"].append(row)
    report["loadavg_after"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    print(
        "| wrapper | first token (s) | prompt tok/s | generated tok/s | valid tool calls "
        "| right quantity | schema-valid outputs | both fields right |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in report["rows"]:
        print(
            f"| {r['wrapper']} | {r['first_token_s']:.2f} | {r['prompt_tokens_per_s']:.0f} | "
            f"{r['generated_tokens_per_s']:.1f} | {r['tool_calls']['valid']:.0%} | "
            f"{r['tool_calls']['right']:.0%} | {r['structured']['valid']:.0%} | "
            f"{r['structured']['right']:.0%} |"
        )


if __name__ == "__main__":
    main()

"""Local chat model before and after issue #20, side by side in one run.

*Before*: langchain-community's ``ChatLlamaCpp`` (archived upstream; installed here only with
the ``eval``/``test`` extras, imported only by this script). *After*: this package's
``ChatLocalLlamaCpp``. Same GGUF (Gemma-3-270M by default), same llama.cpp settings (those of
``local_chat_model``), greedy, 2 threads. Per wrapper:

* prompt and generation tokens/s and first-token latency: one streamed answer to a
  ~300-token prompt, median of ``--repeats`` (tokens counted with the model's tokenizer),
  *cold* (each repeat's prompt differs from its first sentence on, so llama.cpp's prefix
  cache holds nothing of it) and *warm* (the same prompt again: only the last token is
  decoded anew, so "prompt tok/s" there measures the cache, not the model);
* tool decision with ``tool_choice="auto"`` (the default): over ``--prompts`` requests, half
  asking to record a sale (three phrasings), half unrelated (a capital, a haiku, a fun fact,
  a translation), with ``record_sale`` bound: the share where the model called the tool
  exactly when the request asked for it, and the share of sale requests answered with a
  call carrying the right quantity. These prompts were written after the decision threshold
  was set (on other tools and requests) and were not used to tune anything;
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
_OPENINGS = ["Read this.", "A story:", "Consider the text.", "Listen:", "Here it is.", "Note:"]
_SALES = [
    "Record that we sold {q} {item}.",
    "Log a sale of {q} {item}.",
    "We sold {q} {item} today.",
]
_OTHER = [
    "What is the capital of {city}?",
    "Write a haiku about {item}.",
    "Tell me a fun fact about {city}.",
    "How do you say thank you in {language}?",
]
LANGUAGES = ["French", "Spanish", "German", "Italian", "Japanese", "Swahili", "Polish"]


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


def _stream_times(chat: BaseChatModel, prompt: str) -> tuple[float, float, float, int] | None:
    """Start, first and last text-chunk times of one streamed answer, and its tokens."""
    start = time.perf_counter()
    times, text = [], ""
    for chunk in chat.stream(prompt):
        if chunk.content:
            times.append(time.perf_counter())
            text += str(chunk.content)
    if not times:
        return None
    return start, times[0], times[-1], max(1, n_tokens(chat, text))


def speed(chat: BaseChatModel, repeats: int) -> dict[str, float]:
    row: dict[str, float] = {}
    for kind in ("cold", "warm"):
        first, prompt_tps, gen_tps = [], [], []
        for i in range(repeats):
            opening = _OPENINGS[i % len(_OPENINGS)] if kind == "cold" else _OPENINGS[0]
            prompt = f"{opening} {i if kind == 'cold' else 0}. " + _LONG * 20
            measured = _stream_times(chat, prompt)
            if measured is None:
                continue
            start, first_at, last_at, n_gen = measured
            first.append(first_at - start)
            prompt_tps.append(n_tokens(chat, prompt) / (first_at - start))
            if n_gen > 1 and last_at > first_at:
                gen_tps.append((n_gen - 1) / (last_at - first_at))
        row[f"first_token_{kind}_s"] = statistics.median(first)
        row[f"prompt_tokens_per_s_{kind}"] = statistics.median(prompt_tps)
        if kind == "cold":
            row["generated_tokens_per_s"] = statistics.median(gen_tps) if gen_tps else float("nan")
    row["prompt_tokens"] = n_tokens(chat, _OPENINGS[0] + " 0. " + _LONG * 20)
    return row


def auto_decisions(chat: BaseChatModel, prompts: int) -> dict[str, float]:
    bound = chat.bind_tools([record_sale])
    decided = right = sales = 0
    for i in range(prompts):
        item, quantity = ITEMS[i % len(ITEMS)], 3 + (i * 11) % 89
        wants_call = i % 2 == 0
        template = (_SALES if wants_call else _OTHER)[(i // 2) % (3 if wants_call else 4)]
        request = template.format(
            q=quantity, item=item, city=CITIES[i % len(CITIES)], language=LANGUAGES[i % 7]
        )
        try:
            calls = getattr(bound.invoke(request), "tool_calls", [])
        except (ValueError, ValidationError, KeyError, TypeError):
            calls = []
        called = len(calls) == 1 and calls[0]["name"] == "record_sale"
        decided += called == wants_call
        if wants_call:
            sales += 1
            right += called and calls[0]["args"].get("quantity") == quantity
    return {"right_decision": decided / prompts, "right_quantity": right / max(sales, 1)}


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
        row["auto"] = auto_decisions(chat, args.prompts)
        row["structured"] = structured(chat, args.prompts)
        row["loadavg"] = os.getloadavg()
        print(json.dumps(row), flush=True)
        report["rows"].append(row)
    report["loadavg_after"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    print(
        "| wrapper | first token cold / warm (s) | prompt tok/s cold / warm | generated tok/s "
        "| forced: valid calls | right quantity | auto: right decision | right quantity "
        "| schema-valid outputs | both fields right |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in report["rows"]:
        print(
            f"| {r['wrapper']} | {r['first_token_cold_s']:.3f} / {r['first_token_warm_s']:.3f} "
            f"| {r['prompt_tokens_per_s_cold']:.0f} / {r['prompt_tokens_per_s_warm']:.0f} "
            f"| {r['generated_tokens_per_s']:.1f} | {r['tool_calls']['valid']:.0%} "
            f"| {r['tool_calls']['right']:.0%} | {r['auto']['right_decision']:.0%} "
            f"| {r['auto']['right_quantity']:.0%} | {r['structured']['valid']:.0%} "
            f"| {r['structured']['right']:.0%} |"
        )


if __name__ == "__main__":
    main()

"""`langchain-erase` command line: the `demo` main job, `eval` and `bench`.

`demo` runs the whole product offline on the default local models: it embeds a real task's
demonstrations, answers queries through `FewShotPromptTemplate | LlamaCpp`, deletes the
demonstrations it used and shows that they no longer reach any prompt.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_erase import __version__
from langchain_erase.cli.args import (
    OneLineParser,
    check_model,
    existing_dir,
    int_at_least,
    usage_error_line,
)
from langchain_erase.cli.eval_commands import add_bench_parser, add_eval_parser
from langchain_erase.core.index import SELECTION_MODES
from langchain_erase.errors import InvalidParameterError
from langchain_erase.evaluation.tasks import (
    DATA_DIR_ENV,
    DEFAULT_DATA_DIR,
    load_instruction_induction_task,
)

if TYPE_CHECKING:
    from langchain_core.example_selectors import BaseExampleSelector
    from langchain_core.language_models import BaseLLM
    from langchain_core.prompt_values import PromptValue
    from langchain_core.prompts import FewShotPromptTemplate
    from langchain_core.runnables import Runnable

    from langchain_erase.example_selectors import ERASEExampleSelector

__all__ = [
    "DEFAULT_SELECTION",
    "DEMO_QUERIES",
    "build_parser",
    "demo_chain",
    "demo_llm",
    "is_right",
    "load_demo_examples",
    "main",
]

#: The demo's queries, each with the answer a reader expects.
DEMO_QUERIES = (
    ("A tender, funny and beautifully acted story.", "positive"),
    ("Two hours of my life I will never get back.", "negative"),
    ("The soundtrack is lovely but the script is lazy.", "negative"),
)
#: The demo's default selection mode, and why (printed with the answers).
DEFAULT_SELECTION = "similar"
_WHY_DEFAULT = (
    "the default: the best mean rank over the 25 tasks with an ICL signal in docs/results.md"
)
_TASK_DIR = Path("instruction_induction") / "sentiment"


def load_demo_examples(data_dir: Path | None, limit: int) -> tuple[str, list[dict[str, str]]]:
    """The sentiment demonstration pool (its `induce.json`), without its test examples.

    Args:
        data_dir: The task data directory (`--data-dir`), which must hold
            `instruction_induction/sentiment`. None: `DEFAULT_DATA_DIR` if it holds the task,
            else the set bundled with the package.
        limit: How many demonstrations to keep.

    Returns:
        Where the examples came from, and the examples as input/output dicts.

    Raises:
        InvalidParameterError: `data_dir` is given and holds no sentiment task.
        TaskFormatError: The task files are malformed.
    """
    directory = (DEFAULT_DATA_DIR if data_dir is None else data_dir) / _TASK_DIR
    if directory.is_dir():
        task = load_instruction_induction_task(directory)
        test = set(task.test_ids or ())
        rows = [{"input": e.input, "output": e.output} for e in task.examples if e.id not in test]
        source = str(directory / "induce.json")
    elif data_dir is None:
        bundled = resources.files("langchain_erase").joinpath("data/demo_sentiment.json")
        rows = json.loads(bundled.read_text(encoding="utf-8"))["examples"]
        source = "bundled demo set (langchain_erase/data/demo_sentiment.json)"
    else:
        raise InvalidParameterError(f"argument --data-dir: {data_dir} has no {_TASK_DIR} task")
    examples = [{"input": r["input"], "output": r["output"]} for r in rows]
    return source, examples[:limit]


def _fit(args: argparse.Namespace, examples: list[dict[str, str]]) -> ERASEExampleSelector:
    """The selector over `examples`, embedded with the local MiniLM."""
    from langchain_erase import ERASEExampleSelector
    from langchain_erase.embeddings import LlamaCppEmbeddings

    embeddings = LlamaCppEmbeddings(n_threads=args.n_threads, n_gpu_layers=args.n_gpu_layers)
    selector = ERASEExampleSelector.from_examples(
        examples,
        embeddings,
        k=args.k,
        seed=args.seed,
        input_keys=["input"],
        selection=args.selection,
        show_progress=True,
    )
    sizes = [len(bucket) for bucket in selector.buckets()]
    print(f"Fitted {len(selector)} examples into {len(sizes)} buckets of sizes {sizes}")
    print(f"state digest {selector.state_digest()[:16]}…")
    return selector


def demo_llm(model: str, *, n_threads: int | None, n_gpu_layers: int) -> BaseLLM:
    """The demo's local LLM: greedy, at most 3 tokens, one line (a one-word label).

    Args:
        model: A name in `MODEL_NAMES` or a GGUF path (loaded here).
        n_threads: llama.cpp threads (None: its default).
        n_gpu_layers: Layers offloaded to a GPU (0: none, -1: all).

    Returns:
        The LLM.
    """
    from langchain_erase.llms import local_llm

    return local_llm(
        model, n_threads=n_threads, n_gpu_layers=n_gpu_layers, max_tokens=3, stop=["\n"]
    )


def demo_chain(
    selector: BaseExampleSelector, llm: Runnable[PromptValue, str]
) -> tuple[FewShotPromptTemplate, Runnable[dict[str, str], str]]:
    """The demo's few-shot prompt over `selector`, and that prompt piped into `llm`.

    Args:
        selector: Chooses each query's demonstrations.
        llm: The completion model (`demo_llm`).

    Returns:
        The prompt (`format(input=review)`), and the chain from ``{"input": review}`` to the
        model's answer, stripped.
    """
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import FewShotPromptTemplate, PromptTemplate
    from langchain_core.runnables import RunnableLambda

    prompt = FewShotPromptTemplate(
        example_selector=selector,
        example_prompt=PromptTemplate.from_template("Review: {input}\nSentiment: {output}"),
        prefix="Classify the sentiment of each review as positive or negative.",
        suffix="Review: {input}\nSentiment:",
        input_variables=["input"],
    )
    return prompt, prompt | llm | StrOutputParser() | RunnableLambda(str.strip)


def is_right(answer: str, expected: str) -> bool:
    """Whether a demo answer is the expected label (case aside).

    Args:
        answer: What `demo_chain` returned.
        expected: The label of `DEMO_QUERIES`.

    Returns:
        True if they agree.
    """
    return answer.lower() == expected


def _answer(chain: Runnable[dict[str, str], str], query: str, expected: str) -> bool:
    """Print the model's answer to `query` beside the expected one; True if they agree."""
    answer = chain.invoke({"input": query})
    right = is_right(answer, expected)
    print(f"  {query!r} -> {answer!r} ({'right' if right else f'wrong: {expected}'})")
    return right


def _forget(selector: ERASEExampleSelector, ids: Sequence[str]) -> None:
    """Delete `ids` and print one receipt line each."""
    print(f"\nA user asks to be forgotten: deleting the {len(ids)} demonstrations used above.")
    for receipt in selector.delete_examples(ids):
        path = (
            f"refit ({receipt.reason}, iteration {receipt.iteration})"
            if receipt.refit
            else "constant-time path"
        )
        print(
            f"  {receipt.example_id[:12]}…  {path:32s} {receipt.seconds * 1e6:8.0f} µs  "
            f"digest {receipt.digest_before[:8]}… -> {receipt.digest_after[:8]}…"
        )


def run_demo(args: argparse.Namespace) -> int:
    """Build, query, delete, and prove the deleted examples are gone from every prompt.

    Args:
        args: The parsed `demo` arguments.

    Returns:
        0 if the deleted demonstrations reach no prompt and `verify()` holds, else 1.

    Raises:
        ERASEError: A typed error (data, model); raised before any model is loaded.
    """
    from langchain_erase import default_example_id
    from langchain_erase.llms import evict_on_delete

    started = time.perf_counter()
    source, examples = load_demo_examples(args.data_dir, args.limit)
    check_model(args.model)
    print(f"Task data: {source} ({len(examples)} demonstrations)")
    selector = _fit(args, examples)
    llm = demo_llm(args.model, n_threads=args.n_threads, n_gpu_layers=args.n_gpu_layers)
    evict_on_delete(selector, llm)  # deletions also clear llama.cpp's reused prompt context
    prompt, chain = demo_chain(selector, llm)
    why = f" ({_WHY_DEFAULT})" if args.selection == DEFAULT_SELECTION else ""
    print(f"\nSelection: {args.selection}{why}.")
    print(f"Answering {len(DEMO_QUERIES)} queries with {args.model} ({args.k}-shot):")
    right = sum(_answer(chain, query, expected) for query, expected in DEMO_QUERIES)
    print(f"{right} of {len(DEMO_QUERIES)} answered right.")
    used = {
        default_example_id(example): example
        for query, _ in DEMO_QUERIES
        for example in selector.select_examples({"input": query})
    }
    _forget(selector, sorted(used))

    prompts = [prompt.format(input=query) for query, _ in DEMO_QUERIES]
    leaked = [p for p in prompts for e in used.values() if f"Review: {e['input']}\n" in p]
    found = f"Deleted demonstrations found in the prompts of all {len(prompts)} queries"
    print(f"{found}: {len(leaked)}")
    verified = selector.verify()
    print(f"verify(): state equals a fresh fit without them: {verified}")
    print("  after deletion:", end="")
    _answer(chain, *DEMO_QUERIES[0])
    print(f"\nDemo finished in {time.perf_counter() - started:.0f} s.")
    return 0 if verified and not leaked else 1


def build_parser() -> argparse.ArgumentParser:
    """The `langchain-erase` parser with its `demo`, `eval` and `bench` subcommands.

    Returns:
        A parser whose usage errors are one line on stderr and exit code 2.
    """
    parser = OneLineParser(
        prog="langchain-erase",
        description="Few-shot example selection with exact, constant-time unlearning (ERASE).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    demo = subparsers.add_parser(
        "demo", help="run the main job offline on the default local models"
    )
    demo.add_argument(
        "--model", default="gemma-3-270m", help="gemma-3-270m, smollm2-135m or a GGUF path"
    )
    demo.add_argument(
        "--data-dir",
        type=existing_dir,
        default=None,
        help=f"a directory holding {_TASK_DIR} (default: ${DATA_DIR_ENV}, else shared/datasets "
        "beside the repository, else the bundled set)",
    )
    demo.add_argument("--limit", type=int_at_least(1), default=400, help="demonstrations to load")
    demo.add_argument("--k", type=int_at_least(1), default=4, help="demonstrations per prompt")
    demo.add_argument("--seed", type=int_at_least(0), default=0)
    demo.add_argument(
        "--selection",
        choices=SELECTION_MODES,
        default=DEFAULT_SELECTION,
        help=f"selection mode (default {DEFAULT_SELECTION}: {_WHY_DEFAULT.split(': ')[1]})",
    )
    demo.add_argument("--n-threads", type=int_at_least(1), default=None)
    demo.add_argument(
        "--n-gpu-layers", type=int_at_least(-1), default=0, help="GPU offload (0 = CPU, -1 = all)"
    )
    demo.set_defaults(func=run_demo)
    add_eval_parser(subparsers)
    add_bench_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand. A usage mistake (bad option, unknown or malformed task, unwritable
    `--out`) and the package's typed errors print one line on stderr and give exit code 2.

    Args:
        argv: The arguments after the program name; None reads `sys.argv`.

    Returns:
        The subcommand's exit code, or 2 after a typed error. Parsing errors raise
        `SystemExit(2)` as argparse does.
    """
    from langchain_erase.errors import ERASEError

    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ERASEError as err:
        sys.stderr.write(usage_error_line("langchain-erase", err))
        return 2
    return code

"""`langchain-erase eval`: accuracy of demonstration selectors on the same split and model.

Compared per task and seed: zero-shot; k random demonstrations; LangChain's
`SemanticSimilarityExampleSelector` (kNN) and `MaxMarginalRelevanceExampleSelector` on a
langchain-community FAISS store; ERASE in its `random`, `centroid`, `similar` and `fixed`
modes; Auto-CoT (`acot`: full-dimensional k-means, the member nearest each center); each
for every k. One result line per scored query is appended to a JSONL cache keyed by model,
task, seed and a digest of the demonstration pool, so an interrupted run resumes where it
stopped. Accuracies get 95% bootstrap intervals over the scored queries (pooled over seeds).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from tqdm.auto import tqdm

from langchain_erase.core.hashing import keyed_hash64
from langchain_erase.core.index import SelectionMode
from langchain_erase.errors import StateFileError
from langchain_erase.evaluation.embedding_cache import CachedEmbeddings
from langchain_erase.evaluation.scoring import LanguageModel, score_example
from langchain_erase.evaluation.tasks import (
    DEFAULT_DATA_DIR,
    Example,
    Split,
    expand_tasks,
    load_task,
    majority_baseline,
    split_task,
)

__all__ = [
    "DEFAULT_TASKS",
    "SELECTOR_NAMES",
    "EvalConfig",
    "Record",
    "ResultCache",
    "bootstrap_interval",
    "build_selector",
    "erase_variant",
    "evaluate_split",
    "run_eval",
    "summarize",
    "write_reports",
]

SELECTOR_NAMES = (
    "zero-shot",
    "random",
    "knn",
    "mmr",
    "erase-random",
    "erase-centroid",
    "erase-similar",
    "erase-knn",
    "erase-mmr",
    "erase-fixed",
    "acot",
)
DEFAULT_TASKS = ("sentiment", "singular_to_plural", "first_word_letter")
_ERASE_MODES: dict[str, SelectionMode] = {
    "erase-random": "random",
    "erase-centroid": "centroid",
    "erase-similar": "similar",
    "erase-knn": "knn",
    "erase-mmr": "mmr",
    "erase-fixed": "fixed",
}

Demonstrations = Callable[[Example], list[dict[str, str]]]


@dataclass(frozen=True)
class EvalConfig:
    """One comparison run; every field is written into the results."""

    tasks: tuple[str, ...] = DEFAULT_TASKS
    model: str = "gemma-3-270m"
    ks: tuple[int, ...] = (1, 2, 4, 8)
    seeds: tuple[int, ...] = (0,)
    limit: int | None = None
    selectors: tuple[str, ...] = SELECTOR_NAMES
    out_dir: Path = Path("results/eval")
    data_dir: Path = DEFAULT_DATA_DIR
    n_ctx: int = 4096
    n_threads: int | None = None
    bootstrap: int = 2000
    progress: bool = True


@dataclass(frozen=True)
class Record:
    """The result of one query under one selector configuration."""

    selector: str
    k: int
    example_id: str
    correct: bool
    prediction: str
    prompt_tokens: int
    seconds: float
    demo_ids: list[str] = field(default_factory=list)


class ResultCache:
    """Append-only JSONL of `Record`s; lines already there are not recomputed.

    A write cut short (full disk, kill) leaves a torn last line: it is dropped from the file
    on load and its record recomputed. A damaged line before the last is a `StateFileError`.
    """

    def __init__(self, path: Path) -> None:
        """Load the records already in `path` (none if it does not exist).

        Args:
            path: The JSONL file.

        Raises:
            StateFileError: A line other than the last is not a record.
        """
        self.path = path
        self._records: dict[tuple[str, int, str], Record] = {}
        if not path.exists():
            return
        data = path.read_bytes()
        lines = data.split(b"\n")  # the last item is what follows the final newline
        complete = 0  # bytes of the file up to the end of the last good line
        for number, line in enumerate(lines, start=1):
            record = self._parse(line) if line.strip() else None
            if record is None and line.strip():
                if any(rest.strip() for rest in lines[number:]):
                    raise StateFileError(
                        f"results cache {path} line {number} is damaged; delete the file to "
                        "recompute its results"
                    )
                with path.open("r+b") as f:  # the torn tail of an interrupted append
                    f.truncate(complete)
                return
            if record is not None:
                self._records[(record.selector, record.k, record.example_id)] = record
            complete += len(line) + 1
        if data and not data.endswith(b"\n"):  # cut just before its newline
            with path.open("ab") as f:
                f.write(b"\n")

    @staticmethod
    def _parse(line: bytes) -> Record | None:
        """The record on a JSONL line, or None when it is not one (cut short, damaged)."""
        try:
            fields = json.loads(line.decode("utf-8"))
            return Record(**fields) if isinstance(fields, dict) else None
        except (ValueError, TypeError):
            return None

    def get(self, selector: str, k: int, example_id: str) -> Record | None:
        """The cached record of one query under one configuration, if any.

        Args:
            selector: The selector name.
            k: The number of demonstrations.
            example_id: The query's id.

        Returns:
            The record, or None.
        """
        return self._records.get((selector, k, example_id))

    def add(self, record: Record) -> None:
        """Append `record` to the file and the in-memory index.

        Args:
            record: The scored query.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
        self._records[(record.selector, record.k, record.example_id)] = record


def _random_demonstrations(pool: Sequence[dict[str, str]], k: int, seed: int) -> Demonstrations:
    """k pool examples drawn uniformly per query, reproducibly from (seed, query id)."""

    def select(query: Example) -> list[dict[str, str]]:
        rng = np.random.default_rng(keyed_hash64(seed, "random-demos", str(k), query.id))
        return [pool[i] for i in rng.choice(len(pool), size=min(k, len(pool)), replace=False)]

    return select


def erase_variant(mode: str, p: int, epsilon: float) -> str:
    """The selector name of ERASE in `mode` with projection size p and lattice step epsilon
    (for ablations), e.g. `erase-random:p=16:epsilon=0.5`."""
    return f"erase-{mode}:p={p}:epsilon={epsilon:g}"


def _erase_parameters(params: str) -> dict[str, Any]:
    """`p=16:epsilon=0.5` -> {"p": 16, "epsilon": 0.5}; only these two are accepted."""
    out: dict[str, Any] = {}
    for item in filter(None, params.split(":")):
        key, _, value = item.partition("=")
        if key == "p":
            out["p"] = int(value)
        elif key == "epsilon":
            out["epsilon"] = float(value)
        else:
            raise ValueError(f"unknown ERASE parameter {key!r} (p and epsilon are accepted)")
    return out


def build_selector(
    name: str, k: int, pool: Sequence[dict[str, str]], embeddings: Embeddings, seed: int
) -> Demonstrations:
    """The demonstration function of selector `name` over `pool` (dicts with id/input/output)."""
    if name == "zero-shot":
        return lambda query: []
    if name == "random":
        return _random_demonstrations(pool, k, seed)
    if name in ("knn", "mmr"):
        from langchain_community.vectorstores import FAISS
        from langchain_core.example_selectors import (
            MaxMarginalRelevanceExampleSelector,
            SemanticSimilarityExampleSelector,
        )

        cls = (
            SemanticSimilarityExampleSelector
            if name == "knn"
            else (MaxMarginalRelevanceExampleSelector)
        )
        lc = cls.from_examples(list(pool), embeddings, FAISS, k=k, input_keys=["input"])
        return lambda query: lc.select_examples({"input": query.input})
    base, _, params = name.partition(":")
    if base in _ERASE_MODES:
        from langchain_erase import ERASEExampleSelector

        erase = ERASEExampleSelector.from_examples(
            pool,
            embeddings,
            k=k,
            seed=seed,
            input_keys=["input"],
            ids=[d["id"] for d in pool],
            selection=_ERASE_MODES[base],
            **_erase_parameters(params),
        )
        return lambda query: erase.select_examples({"input": query.input})
    if name == "acot":
        from langchain_erase.evaluation.baselines import acot_demonstrations

        demos = acot_demonstrations(pool, k, embeddings, seed)
        return lambda query: list(demos)
    raise ValueError(f"unknown selector {name!r}; choose from {SELECTOR_NAMES}")


def _pool_digest(split: Split) -> str:
    h = hashlib.sha256()
    for e in split.train:
        h.update(json.dumps(e.as_dict(), sort_keys=True).encode("utf-8"))
    return h.hexdigest()[:12]


def _configurations(config: EvalConfig) -> list[tuple[str, int]]:
    return [
        (name, 0 if name == "zero-shot" else k)
        for name in config.selectors
        for k in ([0] if name == "zero-shot" else config.ks)
    ]


def evaluate_split(
    split: Split,
    lm: LanguageModel,
    embeddings: Embeddings,
    config: EvalConfig,
    cache: ResultCache,
) -> list[Record]:
    """Score every configuration on `split.test`, reusing cached records."""
    pool = [e.as_dict() for e in split.train]
    outputs = {e.output for e in split.train}
    max_tokens = 2 + max(lm.count_tokens(" " + o) for o in outputs)
    records = []
    for name, k in _configurations(config):
        todo = [e for e in split.test if cache.get(name, k, e.id) is None]
        selector = build_selector(name, k, pool, embeddings, split.seed) if todo else None
        bar = tqdm(
            split.test,
            desc=f"{split.task.name} s{split.seed} {name} k={k}",
            disable=not config.progress,
            leave=False,
        )
        for example in bar:
            record = cache.get(name, k, example.id)
            if record is None and selector is not None:
                demos = selector(example)
                score = score_example(split.task, lm, demos, example, max_tokens=max_tokens)
                record = Record(
                    name,
                    k,
                    example.id,
                    score.correct,
                    score.prediction,
                    score.prompt_tokens,
                    score.seconds,
                    [d["id"] for d in demos],
                )
                cache.add(record)
            if record is not None:
                records.append(record)
        if isinstance(embeddings, CachedEmbeddings):
            embeddings.save()
    return records


def bootstrap_interval(
    correct: Sequence[bool], resamples: int, rng: np.random.Generator
) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of `correct`."""
    values = np.asarray(correct, dtype=np.float64)
    if len(values) == 0:
        return (float("nan"), float("nan"))
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return (float(lo), float(hi))


def summarize(
    records: dict[tuple[str, int], list[Record]], splits: Sequence[Split], resamples: int
) -> list[dict[str, Any]]:
    """One row per (task, selector, k): accuracy pooled over seeds, bootstrap interval,
    per-seed accuracies and mean prompt tokens / seconds per query."""
    rng = np.random.default_rng(0)
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    for split in splits:
        for r in records[(split.task.name, split.seed)]:
            row = rows.setdefault(
                (split.task.name, r.selector, r.k),
                {
                    "task": split.task.name,
                    "selector": r.selector,
                    "k": r.k,
                    "correct": [],
                    "per_seed": {},
                    "tokens": [],
                    "seconds": [],
                },
            )
            row["correct"].append(r.correct)
            row["per_seed"].setdefault(split.seed, []).append(r.correct)
            row["tokens"].append(r.prompt_tokens)
            row["seconds"].append(r.seconds)
    out = []
    for row in rows.values():
        lo, hi = bootstrap_interval(row["correct"], resamples, rng)
        out.append(
            {
                "task": row["task"],
                "selector": row["selector"],
                "k": row["k"],
                "n": len(row["correct"]),
                "accuracy": float(np.mean(row["correct"])),
                "ci95": [lo, hi],
                "per_seed_accuracy": {
                    str(s): float(np.mean(v)) for s, v in row["per_seed"].items()
                },
                "mean_prompt_tokens": float(np.mean(row["tokens"])),
                "mean_seconds": float(np.mean(row["seconds"])),
            }
        )
    return out


def _cell(row: dict[str, Any] | None) -> str:
    """`acc [CI]`, then each seed's accuracy when there are several (a fixed demonstration
    set, as in centroid mode, can vary far more across seeds than the CI over queries shows)."""
    if row is None:
        return "–"
    text = f"{100 * row['accuracy']:.0f} [{100 * row['ci95'][0]:.0f}, {100 * row['ci95'][1]:.0f}]"
    per_seed = row["per_seed_accuracy"]
    if len(per_seed) > 1:
        text += " (" + "/".join(f"{100 * v:.0f}" for v in per_seed.values()) + ")"
    return text


def _markdown(results: dict[str, Any]) -> str:
    rows, ks, seeds = results["rows"], results["config"]["ks"], results["config"]["seeds"]
    load = results["load_average"]
    lines = [
        f"Model `{results['model']}`, seeds {list(seeds)}, limit {results['config']['limit']}. "
        "Cells: accuracy % [95% bootstrap CI over the scored queries, pooled over seeds]"
        + (" (accuracy per seed)" if len(seeds) > 1 else "")
        + f". {load['cpus']} CPUs, 1-minute load average {load['start'][0]:.1f} at start, "
        f"{load['end'][0]:.1f} at end.",
        "",
    ]
    for task in dict.fromkeys(r["task"] for r in rows):
        task_rows = [r for r in rows if r["task"] == task]
        if not task_rows:
            continue
        lines += [
            f"### {task}",
            "",
            f"n = {max(r['n'] for r in task_rows)} queries per cell; majority-class baseline "
            f"{100 * results['baselines'][task]:.1f}%.",
            "",
            "| selector | " + " | ".join(f"k={k}" for k in ks) + " |",
            "|---" * (len(ks) + 1) + "|",
        ]
        for name in results["config"]["selectors"]:
            cells = [
                _cell(next((r for r in task_rows if r["selector"] == name and r["k"] == k), None))
                for k in ([0] if name == "zero-shot" else ks)
            ]
            if name == "zero-shot":
                cells += [""] * (len(ks) - 1)
                name = "zero-shot (k=0)"
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if "aggregate" in results:
        lines += _aggregate_markdown(results["aggregate"], results["config"]["selectors"])
    return "\n".join(lines)


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in results["rows"]))
    cols = min(4, len(tasks))
    rows_n = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.4 * rows_n), squeeze=False)
    for ax in axes.flat[len(tasks) :]:
        ax.set_visible(False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        rows = [r for r in results["rows"] if r["task"] == task]
        names = [n for n in results["config"]["selectors"] if n != "zero-shot"]
        for i, name in enumerate(names):
            sel = sorted((r for r in rows if r["selector"] == name), key=lambda r: r["k"])
            if not sel:
                continue
            x = np.log2([r["k"] for r in sel]) + (i - len(names) / 2) * 0.04
            acc = np.array([r["accuracy"] for r in sel])
            err = np.abs(np.array([r["ci95"] for r in sel]).T - acc)
            ax.errorbar(x, acc, yerr=err, marker="o", ms=3, capsize=2, lw=1, label=name)
        for r in rows:
            if r["selector"] == "zero-shot":
                ax.axhline(r["accuracy"], color="grey", ls="--", lw=1, label="zero-shot")
        ax.axhline(results["baselines"][task], color="black", ls=":", lw=1, label="majority")
        ax.set_xticks(np.log2(results["config"]["ks"]), [str(k) for k in results["config"]["ks"]])
        ax.set_xlabel("k demonstrations")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(task, fontsize=10)
    axes[0][0].set_ylabel("accuracy (95% CI)")
    axes.flat[len(tasks) - 1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_reports(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """results.json, results.md and accuracy.png in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "results.json", out_dir / "results.md", out_dir / "accuracy.png"]
    paths[0].write_text(json.dumps(results, indent=1), encoding="utf-8")
    paths[1].write_text(_markdown(results), encoding="utf-8")
    _plot(results, paths[2])
    return paths


def _aggregate(
    records: dict[tuple[str, int], list[Record]], splits: Sequence[Split], config: EvalConfig
) -> dict[str, Any]:
    """Across-task summary at k = 4 (or the largest k run), zero-shot included."""
    from langchain_erase.evaluation.aggregate import aggregate, random_score

    k = 4 if 4 in config.ks else max(config.ks)
    correct: dict[tuple[str, str], list[bool]] = {}
    for split in splits:
        for r in records[(split.task.name, split.seed)]:
            if r.k == k or r.selector == "zero-shot":
                correct.setdefault((split.task.name, r.selector), []).append(r.correct)
    randoms = {s.task.name: random_score(s) for s in splits}
    return {"k": k, **aggregate(correct, randoms, "zero-shot", config.bootstrap)}


def _aggregate_markdown(agg: dict[str, Any], selectors: Sequence[str]) -> list[str]:
    names = [s for s in selectors if any(s in t["selectors"] for t in agg["tasks"].values())]
    lines = [
        f"## All tasks, k = {agg['k']} (zero-shot k = 0)",
        "",
        f"Rule: {agg['rule']}. Cells: accuracy % [95% CI]; multiple-choice tasks also show "
        "BIG-bench's normalized score (100 (acc - random) / (100% - random)) after the slash.",
        "",
        "| task | signal | random | " + " | ".join(names) + " |",
        "|---" * (3 + len(names)) + "|",
    ]
    for task, t in agg["tasks"].items():
        cells = []
        for name in names:
            r = t["selectors"].get(name)
            if r is None:
                cells.append("–")
                continue
            cell = f"{100 * r['accuracy']:.0f} [{100 * r['ci95'][0]:.0f}, {100 * r['ci95'][1]:.0f}]"
            if "normalized" in r:
                cell += f" / {r['normalized']:.0f}"
            cells.append(cell)
        rnd = "–" if t["random_score"] is None else f"{100 * t['random_score']:.0f}"
        lines.append(
            f"| {task} | {'yes' if t['icl_signal'] else 'no'} | {rnd} | " + " | ".join(cells) + " |"
        )
    for key, title in (("overall", "every task"), ("signal", "tasks with an ICL signal")):
        part = agg[key]
        lines += [
            "",
            f"### Mean over {title} ({len(part['tasks'])}: {', '.join(part['tasks']) or 'none'})",
            "",
            "| selector | mean accuracy % [95% CI] | mean rank |",
            "|---|---|---|",
        ]
        for name, r in sorted(part["selectors"].items(), key=lambda kv: kv[1]["mean_rank"]):
            lines.append(
                f"| {name} | {100 * r['mean_accuracy']:.1f} [{100 * r['ci95'][0]:.1f}, "
                f"{100 * r['ci95'][1]:.1f}] | {r['mean_rank']:.2f} |"
            )
    return [*lines, ""]


def _model_tag(model: str) -> str:
    return Path(model).stem if model.endswith(".gguf") else model


def run_eval(
    config: EvalConfig,
    lm: LanguageModel | None = None,
    embeddings: Embeddings | None = None,
    command: Iterable[str] = (),
) -> dict[str, Any]:
    """Run (or resume) the comparison; `lm` and `embeddings` default to the local llama.cpp
    model named by `config.model` and MiniLM, with a disk cache of embeddings."""
    cache_dir = config.out_dir / "cache"
    if lm is None:
        from langchain_erase.evaluation.scoring import LlamaCppScorer
        from langchain_erase.llms import load_llama

        lm = LlamaCppScorer(
            load_llama(
                config.model,
                n_ctx=config.n_ctx,
                n_threads=config.n_threads,
            )
        )
    if embeddings is None:
        from langchain_erase.embeddings import LlamaCppEmbeddings

        embeddings = CachedEmbeddings(
            LlamaCppEmbeddings(n_threads=config.n_threads), cache_dir / "embeddings-minilm.npz"
        )
    started, load_before = time.time(), os.getloadavg()
    splits, records, baselines = [], {}, {}
    for task_name in expand_tasks(config.tasks, config.data_dir):
        task = load_task(task_name, config.data_dir)
        for seed in config.seeds:
            split = split_task(task, seed, limit=config.limit)
            cache = ResultCache(
                cache_dir
                / _model_tag(config.model)
                / task.name
                / f"seed{seed}-{_pool_digest(split)}.jsonl"
            )
            records[(task.name, seed)] = evaluate_split(split, lm, embeddings, config, cache)
            splits.append(split)
        baselines[task.name] = float(
            np.mean([majority_baseline(s) for s in splits if s.task.name == task.name])
        )
    results = {
        "model": config.model,
        "command": list(command),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "baselines": baselines,
        "rows": summarize(records, splits, config.bootstrap),
        "aggregate": _aggregate(records, splits, config),
        "splits": [s.record() for s in splits],
        "wall_seconds": time.time() - started,
        "load_average": {"start": load_before, "end": os.getloadavg(), "cpus": os.cpu_count()},
    }
    write_reports(results, config.out_dir)
    return results

"""Ablation of ERASE's projection size p and lattice step epsilon: the refit rate each
setting gives (how often a deletion forces a re-clustering; embeddings only, no LLM) beside
the accuracy it gives (ERASE random mode, k = 4, with the LLM).

Usage (resumable: finished rows are read back from --out, nothing is recomputed):
    python benchmarks/ablation.py --refit-tasks all --accuracy-tasks sentiment \
        --limit 40 --seeds 0 --n-threads 1
Writes --out/refit.jsonl, --out/accuracy/ (an `eval` run), --out/ablation.md and
--out/ablation.png. Embeddings are cached in --out; --reuse-embeddings reads another
run's cache (e.g. results/eval-all/cache/embeddings-minilm.npz) first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from langchain_erase import ERASEExampleSelector
from langchain_erase.evaluation.embedding_cache import CachedEmbeddings
from langchain_erase.evaluation.runner import EvalConfig, erase_variant, run_eval
from langchain_erase.evaluation.tasks import DEFAULT_DATA_DIR, expand_tasks, load_task, split_task


def refit_rows(args: argparse.Namespace, embeddings: CachedEmbeddings) -> list[dict[str, Any]]:
    """Refit rate, fit and deletion seconds per (task, p, epsilon), resuming from the JSONL."""
    path = args.out / "refit.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    done = {(r["task"], r["p"], r["epsilon"], r["seed"]) for r in rows}
    for name in expand_tasks(args.refit_tasks, args.data_dir):
        for seed in args.seeds:
            split = split_task(load_task(name, args.data_dir), seed)
            pool = [e.as_dict() for e in split.train]
            embeddings.embed_documents([d["input"] for d in pool])
            embeddings.save()
            for p in args.p:
                for eps in args.epsilon:
                    if (split.task.name, p, eps, seed) in done:
                        continue
                    selector = ERASEExampleSelector.from_examples(
                        pool,
                        embeddings,
                        k=args.k,
                        epsilon=eps,
                        p=p,
                        seed=seed,
                        input_keys=["input"],
                        ids=[d["id"] for d in pool],
                    )
                    rng = np.random.default_rng(seed)
                    count = min(args.deletions, len(pool) - 1)
                    victims = rng.choice(len(pool), size=count, replace=False)
                    receipts = [selector.delete_example(pool[i]["id"]) for i in victims.tolist()]
                    row = {
                        "task": split.task.name,
                        "p": p,
                        "epsilon": eps,
                        "seed": seed,
                        "n": len(pool),
                        "deletions": len(receipts),
                        "refit_rate": float(np.mean([r.refit for r in receipts])),
                        "delete_seconds_mean": float(np.mean([r.seconds for r in receipts])),
                    }
                    rows.append(row)
                    with path.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
    return rows


def complete(refit: list[dict[str, Any]], args: Any) -> list[dict[str, Any]]:
    """The rows of tasks measured under every (p, epsilon) setting (an interrupted run can
    leave one task part-done; comparing settings over different tasks would mislead)."""
    settings = {(p, e) for p in args.p for e in args.epsilon}
    per_task: dict[str, set[tuple[int, float]]] = {}
    for r in refit:
        per_task.setdefault(r["task"], set()).add((r["p"], r["epsilon"]))
    return [r for r in refit if per_task[r["task"]] >= settings]


def markdown(refit: list[dict[str, Any]], accuracy: dict[str, Any] | None, args: Any) -> str:
    tasks = sorted({r["task"] for r in refit})
    acc_rows = accuracy["rows"] if accuracy else []
    acc_tasks = sorted({r["task"] for r in acc_rows if r["selector"] != "zero-shot"})
    means = accuracy["aggregate"]["overall"]["selectors"] if accuracy else {}
    lines = [
        f"Refit rate: mean over {len(tasks)} task pools ({', '.join(tasks)}), "
        f"{args.deletions} seeded deletions each, k = {args.k}, seeds {args.seeds}. "
        "Accuracy: ERASE `random` mode, k = 4, "
        + (f"{acc_rows[0]['n']} queries per task ({', '.join(acc_tasks)})." if acc_rows else "")
        + f" 1-minute load average {os.getloadavg()[0]:.1f}.",
        "",
        "| p | ε | refit rate: mean / median [min, max] over tasks | mean delete | "
        + ("mean accuracy over the tasks [95% CI, stratified] | " if means else "")
        + " | ".join(f"accuracy {t} [95% CI]" for t in acc_tasks)
        + " |",
        "|---" * (4 + bool(means) + len(acc_tasks)) + "|",
    ]
    for p in args.p:
        for eps in args.epsilon:
            sel = [r for r in refit if r["p"] == p and r["epsilon"] == eps]
            if not sel:
                continue
            rates = [r["refit_rate"] for r in sel]
            cells = []
            mean = means.get(erase_variant("random", p, eps))
            if means:
                cells.append(
                    "–"
                    if mean is None
                    else f"{100 * mean['mean_accuracy']:.1f}% [{100 * mean['ci95'][0]:.1f}, "
                    f"{100 * mean['ci95'][1]:.1f}]"
                )
            for t in acc_tasks:
                a = next(
                    (
                        r
                        for r in acc_rows
                        if r["task"] == t and r["selector"] == erase_variant("random", p, eps)
                    ),
                    None,
                )
                cells.append(
                    "–"
                    if a is None
                    else f"{100 * a['accuracy']:.0f}% [{100 * a['ci95'][0]:.0f}, "
                    f"{100 * a['ci95'][1]:.0f}]"
                )
            lines.append(
                f"| {p} | {eps:g} | {100 * np.mean(rates):.1f}% / {100 * np.median(rates):.0f}% "
                f"[{100 * min(rates):.0f}, {100 * max(rates):.0f}] | "
                f"{1e3 * np.mean([r['delete_seconds_mean'] for r in sel]):.2f} ms | "
                + " | ".join(cells)
                + " |"
            )
    zero_shot = [
        f"{r['task']} {100 * r['accuracy']:.0f}%" for r in acc_rows if r["selector"] == "zero-shot"
    ]
    if zero_shot:
        lines.append("\nZero-shot accuracy, for comparison: " + ", ".join(zero_shot) + ".")
    return "\n".join(lines) + "\n"


def plot(refit: list[dict[str, Any]], accuracy: dict[str, Any] | None, args: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    means = accuracy["aggregate"]["overall"]["selectors"] if accuracy else {}
    for eps in args.epsilon:
        rates = [
            np.mean([r["refit_rate"] for r in refit if r["p"] == p and r["epsilon"] == eps])
            for p in args.p
        ]
        axes[0].plot(args.p, rates, marker="o", label=f"ε = {eps:g}")
        if means:
            found = [means.get(erase_variant("random", p, eps)) for p in args.p]
            acc = [m["mean_accuracy"] if m else np.nan for m in found]
            err = np.array(
                [
                    [m["mean_accuracy"] - m["ci95"][0], m["ci95"][1] - m["mean_accuracy"]]
                    if m
                    else [np.nan, np.nan]
                    for m in found
                ]
            ).T
            axes[1].errorbar(args.p, acc, yerr=err, marker="o", capsize=3, label=f"ε = {eps:g}")
    axes[0].set(xscale="log", xlabel="p", ylabel="refit rate per deletion", title="refit rate")
    axes[1].set(
        xscale="log",
        xlabel="p",
        ylabel="mean accuracy over the tasks",
        title="ERASE random, k = 4 (95% CI)",
    )
    for ax in axes:
        ax.minorticks_off()
        ax.set_xticks(args.p, [str(p) for p in args.p])
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "ablation.png", dpi=80)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refit-tasks", nargs="+", default=["all"])
    parser.add_argument("--accuracy-tasks", nargs="*", default=["sentiment"])
    parser.add_argument("--p", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--epsilon", type=float, nargs="+", default=[0.125, 0.25, 0.5])
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--deletions", type=int, default=50)
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--n-threads", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, default=Path("results/ablation"))
    parser.add_argument("--reuse-embeddings", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    from langchain_erase.embeddings import LlamaCppEmbeddings

    args.out.mkdir(parents=True, exist_ok=True)
    embeddings = CachedEmbeddings(
        LlamaCppEmbeddings(n_threads=args.n_threads), args.out / "embeddings-minilm.npz"
    )
    for path in args.reuse_embeddings:
        if path.exists():
            embeddings.update_from(path)
    refit = complete(refit_rows(args, embeddings), args)
    accuracy = None
    if args.accuracy_tasks:
        variants = [erase_variant("random", p, e) for p in args.p for e in args.epsilon]
        accuracy = run_eval(
            EvalConfig(
                tasks=tuple(args.accuracy_tasks),
                model=args.model,
                ks=(4,),
                seeds=tuple(args.seeds),
                limit=args.limit,
                selectors=("zero-shot", *variants),
                out_dir=args.out / "accuracy",
                data_dir=args.data_dir,
                n_threads=args.n_threads,
                progress=False,
            ),
            embeddings=embeddings,
            command=["python", *sys.argv],
        )
    (args.out / "ablation.md").write_text(markdown(refit, accuracy, args), encoding="utf-8")
    plot(refit, accuracy, args)
    print((args.out / "ablation.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""SISA that fine-tunes the language model itself, measured like for like with ERASE's ICL.

`langchain_erase.evaluation.sisa` trains a linear head on frozen embeddings: cheap, but not the
paper's baseline. Here every shard is a LoRA adapter on the LLM (the weights come from the GGUF the
project ships, dequantized by `transformers`), trained with SISA's schedule: examples go to
S shards and R slices by a keyed hash of their id; shard s trains on slice 1, then slices 1-2,
..., saving the adapter after each slice; a query is answered by every shard and decided by
majority vote. Unlearning one example restores its shard's adapter from the checkpoint before
the example's slice and retrains from there.

Everything is a function of the seed: adapter initialisation comes from a numpy Generator
keyed by (seed, shard), batch order from one keyed by (seed, shard, slice, epoch), and each
slice starts a fresh optimizer, so retraining from a checkpoint gives exactly the adapter a
from-scratch fit without the example gives (on the same machine and thread count).

Needs the optional extra `sisa-llm` (torch, transformers, accelerate, peft).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field

from langchain_erase.core.hashing import keyed_hash64
from langchain_erase.errors import UnknownExampleError
from langchain_erase.evaluation.scoring import normalize_answer
from langchain_erase.evaluation.tasks import Example, Split, Task

if TYPE_CHECKING:
    import torch

    from langchain_erase.example_selectors import ERASEExampleSelector

__all__ = [
    "CausalLM",
    "LLMSISAConfig",
    "LLMSISADeletion",
    "LLMSISAEnsemble",
    "answer",
    "correct",
    "load_causal_lm",
    "option_logprobs",
]


class LLMSISAConfig(BaseModel):
    """Shards x slices, the LoRA adapter and its training schedule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shards: int = Field(default=2, ge=1)
    slices: int = Field(default=2, ge=1)
    epochs_per_slice: int = Field(default=1, ge=1)
    batch_size: int = Field(default=8, ge=1)
    learning_rate: float = Field(default=2e-3, gt=0)
    lora_rank: int = Field(default=8, ge=1)
    lora_alpha: int = Field(default=16, gt=0)
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    max_new_tokens: int = Field(default=16, ge=1)
    seed: int = 0


@dataclass(frozen=True)
class LLMSISADeletion:
    """What one deletion cost: the shard retrained, from which slice, and the seconds."""

    example_id: str
    shard: int
    slice: int
    slices_retrained: int
    seconds: float


@dataclass
class CausalLM:
    """A `transformers` causal LM and its tokenizer, loaded from a GGUF file."""

    model: Any
    tokenizer: Any
    name: str
    peft: Any = None
    """The LoRA-wrapped model, created once (wrapping twice would stack adapters)."""


def load_causal_lm(gguf: Path, *, threads: int | None = 1) -> CausalLM:
    """Dequantize a GGUF checkpoint into a float32 `transformers` model on the CPU.

    Args:
        gguf: the GGUF file (e.g. `langchain_erase.llms.resolve_model_path("smollm2-135m")`).
        threads: torch intra-op threads (None leaves torch's default).

    Returns:
        The model (eval mode) and its tokenizer.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads is not None:
        torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    model.train(False)  # inference mode (no dropout) until a shard trains
    return CausalLM(model, tokenizer, gguf.stem)


class LLMSISAEnsemble:
    """S LoRA adapters on one base model, trained and unlearned with SISA's schedule.

    Args:
        lm: the base model (its weights are frozen; one adapter is swapped in per shard).
        task: gives the prompt format (no demonstrations) and the scoring kind.
        config: layout and training schedule.
    """

    def __init__(self, lm: CausalLM, task: Task, config: LLMSISAConfig) -> None:
        from peft import LoraConfig, get_peft_model

        self.lm, self.task, self.config = lm, task, config
        lora = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=0.0,
            target_modules=list(config.target_modules),
        )
        if lm.peft is None:
            lm.peft = get_peft_model(lm.model, lora)
        elif lm.peft.peft_config["default"].r != config.lora_rank:
            raise ValueError("this model already carries a LoRA adapter of another rank")
        self.model = lm.peft
        self._params = [p for n, p in self.model.named_parameters() if "lora_" in n]
        self._examples: dict[str, Example] = {}
        self._place: dict[str, tuple[int, int]] = {}
        self._members: list[list[set[str]]] = [
            [set() for _ in range(config.slices)] for _ in range(config.shards)
        ]
        # _checkpoints[s][0] is the initial adapter, [s][r + 1] the adapter after slice r.
        self._checkpoints: list[list[list[torch.Tensor]]] = []
        self.trained_examples = 0

    def __len__(self) -> int:
        return len(self._examples)

    def _placement(self, example_id: str) -> tuple[int, int]:
        h = keyed_hash64(self.config.seed, "sisa-llm", example_id)
        return h % self.config.shards, (h // self.config.shards) % self.config.slices

    def _initial_adapter(self, shard: int) -> list[torch.Tensor]:
        """LoRA's usual init (A uniform in +-1/sqrt(fan_in), B zero), drawn from a keyed
        generator rather than torch's global one."""
        import torch

        rng = np.random.default_rng(keyed_hash64(self.config.seed, "sisa-llm-init", str(shard)))
        out = []
        for p in self._params:
            if p.ndim == 2 and p.shape[0] == self.config.lora_rank:  # lora_A: (r, fan_in)
                bound = 1.0 / np.sqrt(p.shape[1])
                out.append(torch.from_numpy(rng.uniform(-bound, bound, p.shape)).to(p.dtype))
            else:
                out.append(torch.zeros_like(p))
        return out

    def _load(self, state: Sequence[torch.Tensor]) -> None:
        import torch

        with torch.no_grad():
            for p, value in zip(self._params, state, strict=True):
                p.copy_(value)

    def _save(self) -> list[torch.Tensor]:
        return [p.detach().clone() for p in self._params]

    def _encode(self, example: Example) -> tuple[list[int], list[int]]:
        """Prompt tokens (no demonstrations) and answer tokens (" output" and a newline)."""
        prompt = self.task.prompt([], example).rstrip(" ")
        tok = self.lm.tokenizer
        return (
            tok(prompt, add_special_tokens=False).input_ids,
            tok(" " + example.output + "\n", add_special_tokens=False).input_ids,
        )

    def _step(self, batch: Sequence[Example], optimizer: Any) -> None:
        import torch

        encoded = [self._encode(e) for e in batch]
        width = max(len(p) + len(a) for p, a in encoded)
        pad = self.lm.tokenizer.pad_token_id or 0
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (prompt, answer) in enumerate(encoded):
            seq = prompt + answer
            ids[row, : len(seq)] = torch.tensor(seq)
            labels[row, len(prompt) : len(seq)] = torch.tensor(answer)
            mask[row, : len(seq)] = 1
        loss = self.model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.trained_examples += len(batch)

    def _train_shard(self, shard: int, start: int) -> None:
        """Retrain `shard` from the checkpoint before slice `start` through the last slice."""
        import torch

        cfg = self.config
        checkpoints = self._checkpoints[shard][: start + 1]
        self._load(checkpoints[-1])
        self.model.train()
        for piece in range(start, cfg.slices):
            ids = sorted(i for p in range(piece + 1) for i in self._members[shard][p])
            optimizer = torch.optim.AdamW(self._params, lr=cfg.learning_rate, weight_decay=0.0)
            for epoch in range(cfg.epochs_per_slice):
                key = keyed_hash64(cfg.seed, "sisa-llm-order", str(shard), str(piece), str(epoch))
                order = np.random.default_rng(key).permutation(len(ids))
                for lo in range(0, len(ids), cfg.batch_size):
                    batch = [self._examples[ids[i]] for i in order[lo : lo + cfg.batch_size]]
                    self._step(batch, optimizer)
            checkpoints.append(self._save())
        self.model.eval()
        self._checkpoints[shard] = checkpoints

    def fit(self, examples: Sequence[Example]) -> None:
        """Train every shard from scratch on `examples` (ids must be distinct)."""
        for example in examples:
            self._examples[example.id] = example
            shard, piece = self._place[example.id] = self._placement(example.id)
            self._members[shard][piece].add(example.id)
        self._checkpoints = [[self._initial_adapter(s)] for s in range(self.config.shards)]
        for shard in range(self.config.shards):
            self._train_shard(shard, 0)

    def delete(self, example_id: str) -> LLMSISADeletion:
        """Forget one example: retrain its shard from the checkpoint before its slice."""
        if example_id not in self._place:
            raise UnknownExampleError(f"unknown example id {example_id!r}")
        start = time.perf_counter()
        shard, piece = self._place.pop(example_id)
        self._members[shard][piece].discard(example_id)
        del self._examples[example_id]
        self._train_shard(shard, piece)
        return LLMSISADeletion(
            example_id, shard, piece, self.config.slices - piece, time.perf_counter() - start
        )

    def adapter(self, shard: int) -> list[torch.Tensor]:
        """The current adapter weights of `shard` (copies)."""
        return [t.clone() for t in self._checkpoints[shard][-1]]

    def _answer(self, example: Example) -> str:
        """The loaded adapter's answer: greedy generation, or the likeliest option."""

        prompt, _ = self._encode(example)
        return answer(self.lm, self.task, example, prompt, self.config.max_new_tokens)[0]

    def predict(self, example: Example) -> tuple[str, list[str]]:
        """Majority vote of the shards' answers (ties to the answer of the lowest shard);
        returns the vote and each shard's answer."""
        answers = []
        for shard in range(self.config.shards):
            self._load(self._checkpoints[shard][-1])
            answers.append(self._answer(example))
        counts = Counter(answers)
        top = max(counts.values())
        return next(a for a in answers if counts[a] == top), answers


def option_logprobs(lm: CausalLM, prompt: Sequence[int], example: Example) -> list[float]:
    """Summed log-probability of each option's tokens (after a space) following `prompt`."""
    import torch

    out = []
    for option in example.options:
        tokens = lm.tokenizer(" " + option, add_special_tokens=False).input_ids
        ids = torch.tensor([list(prompt) + tokens])
        logits = lm.model(input_ids=ids).logits[0, len(prompt) - 1 : -1].double()
        logp = torch.log_softmax(logits, dim=-1)
        out.append(float(logp[torch.arange(len(tokens)), torch.tensor(tokens)].sum()))
    return out


def correct(task: Task, example: Example, answer: str) -> bool:
    """Exact match of a normalized answer, or the chosen option among the right ones."""
    if task.kind == "multiple_choice":
        return answer in example.answers
    return answer in {normalize_answer(a) for a in example.answers}


def answer(
    lm: CausalLM, task: Task, example: Example, prompt: Sequence[int], max_new_tokens: int
) -> tuple[str, float]:
    """The model's answer after `prompt` (the likeliest option, or greedy decoding up to the
    first line break) and the seconds the prompt's forward pass took (prefill)."""
    import torch

    with torch.no_grad():
        if task.kind == "multiple_choice":
            start = time.perf_counter()
            scores = option_logprobs(lm, prompt, example)
            return example.options[int(np.argmax(scores))], time.perf_counter() - start
        start = time.perf_counter()
        out = lm.model(input_ids=torch.tensor([list(prompt)]), use_cache=True)
        prefill = time.perf_counter() - start
        produced: list[int] = []
        text = ""
        for _ in range(max_new_tokens):
            token = int(out.logits[0, -1].argmax())
            if token == lm.tokenizer.eos_token_id:
                break
            produced.append(token)
            text = lm.tokenizer.decode(produced, skip_special_tokens=True)
            if "\n" in text.lstrip():
                break
            out = lm.model(
                input_ids=torch.tensor([[token]]),
                past_key_values=out.past_key_values,
                use_cache=True,
            )
    return normalize_answer(text), prefill


def _icl(
    lm: CausalLM,
    task: Task,
    selector: ERASEExampleSelector | None,
    queries: Sequence[Example],
    max_new_tokens: int,
) -> dict[str, float]:
    """Accuracy and per-query seconds of in-context learning with the base model (adapter
    off): prompt tokens, prefill seconds and the whole query's seconds."""
    outcomes, tokens, prefill, total = [], [], [], []
    for q in queries:
        demos = [] if selector is None else selector.select_examples({"input": q.input})
        prompt = lm.tokenizer(task.prompt(demos, q).rstrip(" "), add_special_tokens=False).input_ids
        start = time.perf_counter()
        text, seconds = answer(lm, task, q, prompt, max_new_tokens)
        total.append(time.perf_counter() - start)
        prefill.append(seconds)
        tokens.append(len(prompt))
        outcomes.append(correct(task, q, text))
    return {
        "accuracy": float(np.mean(outcomes)),
        "prompt_tokens": float(np.mean(tokens)),
        "prefill_seconds": float(np.mean(prefill)),
        "query_seconds": float(np.mean(total)),
    }


def measure_task(
    split: Split,
    lm: CausalLM,
    embeddings: Embeddings,
    config: LLMSISAConfig,
    *,
    pool_size: int,
    queries: int,
    deletions: int,
    k: int = 4,
) -> dict[str, Any]:
    """Like-for-like measurements on one split, with one model and runtime for both sides.

    SISA: fit on a seeded sample of `pool_size` pool examples, accuracy and seconds per
    query over the first `queries` test queries, seconds per deletion over `deletions`
    seeded deletions. ICL with the same base model (adapter off): zero-shot, and ERASE
    (random and fixed modes, k demonstrations) on the same pool sample.

    Args:
        split: a `Split` of the task.
        lm: the model (from `load_causal_lm`).
        embeddings: embeddings for ERASE.
        config: SISA's layout and schedule.
        pool_size: how many pool examples both sides learn from.
        queries: test queries scored.
        deletions: unlearning requests timed.
        k: ERASE's demonstrations.

    Returns:
        A JSON-able dict of the measurements, with the inputs of `langchain_erase.evaluation.cost`.
    """
    from langchain_erase import ERASEExampleSelector
    from langchain_erase.evaluation.cost import (
        CostInputs,
        ICLMeasurement,
        SISAMeasurement,
        holistic_cost,
    )

    rng = np.random.default_rng(keyed_hash64(config.seed, "sisa-llm-pool", split.task.name))
    train = split.train
    picked = sorted(rng.choice(len(train), size=min(pool_size, len(train)), replace=False))
    pool = [train[i] for i in picked]
    tests = list(split.test[:queries])
    ensemble = LLMSISAEnsemble(lm, split.task, config)
    start = time.perf_counter()
    ensemble.fit(pool)
    fit_seconds = time.perf_counter() - start
    outcomes, query_seconds = [], []
    for q in tests:
        start = time.perf_counter()
        vote, _ = ensemble.predict(q)
        query_seconds.append(time.perf_counter() - start)
        outcomes.append(correct(split.task, q, vote))
    victims = [pool[i].id for i in rng.choice(len(pool), size=min(deletions, len(pool) - 1))]
    victims = list(dict.fromkeys(victims))
    deletion_seconds = [ensemble.delete(v).seconds for v in victims]
    rows = [e.as_dict() for e in pool]
    embeddings.embed_documents([r["input"] for r in rows])  # warm the cache: fit times clustering
    icl: dict[str, dict[str, float]] = {}
    erase_deletions: list[float] = []
    refits = prefix_changes = 0
    erase_fit_seconds = 0.0
    with ensemble.model.disable_adapter():
        icl["zero-shot"] = _icl(lm, split.task, None, tests, config.max_new_tokens)
        for mode in ("random", "fixed"):
            start = time.perf_counter()
            selector = ERASEExampleSelector.from_examples(
                rows,
                embeddings,
                k=k,
                seed=config.seed,
                input_keys=["input"],
                ids=[r["id"] for r in rows],
                selection=mode,
            )
            erase_fit_seconds = time.perf_counter() - start
            icl[f"erase-{mode}"] = _icl(lm, split.task, selector, tests, config.max_new_tokens)
        if victims:
            probe = {"input": tests[0].input}
            for victim in victims:
                before = selector.select_examples(probe)
                receipt = selector.delete_example(victim)
                erase_deletions.append(receipt.seconds)
                refits += receipt.refit
                prefix_changes += selector.select_examples(probe) != before
    fixed = icl["erase-fixed"]
    fixed_tokens = [
        len(lm.tokenizer(split.task.prompt([], q).rstrip(" "), add_special_tokens=False).input_ids)
        for q in tests
    ]
    seconds_per_token = fixed["prefill_seconds"] / fixed["prompt_tokens"]
    inputs = CostInputs(
        model=lm.name,
        icl=ICLMeasurement(
            k=k,
            prompt_tokens=fixed["prompt_tokens"],
            query_tokens=float(np.mean(fixed_tokens)),
            seconds_per_token=seconds_per_token,
            answer_seconds=max(0.0, fixed["query_seconds"] - fixed["prefill_seconds"]),
            deletion_seconds=float(np.mean(erase_deletions)),
            refit_probability=refits / len(victims),
            prefix_invalidation_probability=None,
            fixed_prefix_invalidation_probability=prefix_changes / len(victims),
            fit_seconds=erase_fit_seconds,
        ),
        sisa=SISAMeasurement(
            label=f"SISA LoRA {lm.name}",
            shards=config.shards,
            slices=config.slices,
            retrain_seconds=float(np.mean(deletion_seconds)),
            infer_seconds_per_model=float(np.mean(query_seconds)) / config.shards,
        ),
    )
    return {
        "task": split.task.name,
        "seed": split.seed,
        "model": lm.name,
        "pool_size": len(pool),
        "queries": len(tests),
        "sisa": {
            "accuracy": float(np.mean(outcomes)),
            "fit_seconds": fit_seconds,
            "query_seconds": float(np.mean(query_seconds)),
            "deletion_seconds": float(np.mean(deletion_seconds)),
            "deletion_seconds_all": deletion_seconds,
            "trained_examples": ensemble.trained_examples,
        },
        "icl": icl,
        "cost": holistic_cost(inputs).model_dump(),
    }

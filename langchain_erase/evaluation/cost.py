"""Holistic unlearning cost: total = U * C_unlearn + Q * C_infer (design note, last section).

In-context learning pays at every query for its longer prompt but almost nothing to unlearn;
fine-tuning (SISA here) pays a shard retrain per unlearning request and S model runs per
query. Which is cheaper depends on the ratio of unlearning requests U to queries Q, so the
calculator reports totals and the break-even U/Q. Every input of `holistic_cost` is a
measurement the user makes on their own machine and model (`langchain-erase bench` makes them);
`project_flops` is a separate FLOP-count extrapolation to larger LLMs and says so in its output.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BreakEven",
    "CostInputs",
    "CostReport",
    "FlopProjection",
    "ICLMeasurement",
    "MethodCost",
    "ProjectionInputs",
    "SISAMeasurement",
    "Scenario",
    "break_even",
    "holistic_cost",
    "project_flops",
    "sisa_expected_retrain_fraction",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ICLMeasurement(BaseModel):
    """Measured ERASE in-context-learning costs for one model and k."""

    model_config = _FROZEN

    k: int = Field(ge=0)
    prompt_tokens: float = Field(ge=0, description="mean prompt tokens per query, k demos")
    query_tokens: float = Field(ge=0, description="mean tokens after the demonstration prefix")
    seconds_per_token: float = Field(gt=0, description="measured prompt-eval seconds per token")
    answer_seconds: float = Field(
        default=0.0, ge=0, description="per-query seconds beyond prompt eval (decoding)"
    )
    deletion_seconds: float = Field(ge=0, description="mean ERASE deletion seconds, refits in")
    refit_probability: float = Field(ge=0, le=1)
    prefix_invalidation_probability: float | None = Field(
        ge=0,
        le=1,
        description="share of deletions that change the cached centroid prefix (None: not "
        "measured)",
    )
    fixed_prefix_invalidation_probability: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="share of deletions that change the fixed-mode prefix (None: not measured)",
    )
    fit_seconds: float = Field(ge=0, description="seconds to fit the selector from scratch")


class SISAMeasurement(BaseModel):
    """Measured SISA costs: per-deletion retrain and per-query inference of S models."""

    model_config = _FROZEN

    label: str = Field(default="SISA", description="names the learner in reports")
    shards: int = Field(ge=1)
    slices: int = Field(ge=1)
    retrain_seconds: float = Field(ge=0, description="mean seconds per deletion")
    infer_seconds_per_model: float = Field(ge=0, description="per query, one shard model")
    shared_infer_seconds: float = Field(
        default=0.0, ge=0, description="per query, work all shards share (the embedding)"
    )


class MethodCost(BaseModel):
    """One method's unit costs in seconds."""

    model_config = _FROZEN

    name: str
    unlearn_seconds: float = Field(ge=0)
    infer_seconds: float = Field(ge=0)


class Scenario(BaseModel):
    """A workload: U unlearning requests and Q queries, and each method's total seconds."""

    model_config = _FROZEN

    unlearn_requests: int = Field(ge=0)
    queries: int = Field(ge=0)
    total_seconds: dict[str, float] = Field(default_factory=dict)


class BreakEven(BaseModel):
    """When `first` is cheaper than `second`: U/Q above or below `ratio`, always, or never."""

    model_config = _FROZEN

    first: str
    second: str
    first_cheaper_when: Literal["above", "below", "always", "never", "equal"]
    ratio: float | None = None


class CostInputs(BaseModel):
    """Everything `holistic_cost` needs; `more_sisa` adds other measured SISA learners (e.g.
    the fine-tuned LLM beside the linear one), `others` any measured method (e.g. kNN delete)."""

    model_config = _FROZEN

    model: str
    icl: ICLMeasurement
    sisa: SISAMeasurement
    more_sisa: list[SISAMeasurement] = Field(default_factory=list)
    others: list[MethodCost] = Field(default_factory=list)


class CostReport(BaseModel):
    """Unit costs, totals for the requested workloads and pairwise break-even ratios."""

    model_config = _FROZEN

    inputs: CostInputs
    methods: list[MethodCost]
    scenarios: list[Scenario]
    break_even: list[BreakEven]


def _solve(first: str, second: str, du: float, di: float) -> BreakEven:
    """Where U*du + Q*di < 0 (first cheaper), as a condition on r = U/Q."""
    if du == 0 and di == 0:
        return BreakEven(first=first, second=second, first_cheaper_when="equal")
    if du <= 0 and di <= 0:
        return BreakEven(first=first, second=second, first_cheaper_when="always")
    if du >= 0 and di >= 0:
        return BreakEven(first=first, second=second, first_cheaper_when="never")
    return BreakEven(
        first=first,
        second=second,
        first_cheaper_when="above" if du < 0 else "below",
        ratio=-di / du,
    )


def break_even(first: MethodCost, second: MethodCost) -> BreakEven:
    """The U/Q ratio at which `first` and `second` cost the same, and which side `first` wins."""
    return _solve(
        first.name,
        second.name,
        first.unlearn_seconds - second.unlearn_seconds,
        first.infer_seconds - second.infer_seconds,
    )


def _sisa_method(sisa: SISAMeasurement) -> MethodCost:
    return MethodCost(
        name=f"{sisa.label} S={sisa.shards} R={sisa.slices}",
        unlearn_seconds=sisa.retrain_seconds,
        infer_seconds=sisa.shared_infer_seconds + sisa.shards * sisa.infer_seconds_per_model,
    )


def _icl_methods(icl: ICLMeasurement) -> list[MethodCost]:
    """ERASE without prefix reuse, then with a cached prefix (centroid mode, and fixed mode
    when measured): a cached query computes only its own tokens, and a deletion that changes
    the prefix costs one re-evaluation of the prefix."""
    prefix_seconds = (icl.prompt_tokens - icl.query_tokens) * icl.seconds_per_token
    cached_query_seconds = icl.query_tokens * icl.seconds_per_token + icl.answer_seconds
    cached = [
        (mode, probability)
        for mode, probability in (
            ("centroid", icl.prefix_invalidation_probability),
            ("fixed", icl.fixed_prefix_invalidation_probability),
        )
        if probability is not None
    ]
    return [
        MethodCost(
            name=f"ERASE ICL k={icl.k}",
            unlearn_seconds=icl.deletion_seconds,
            infer_seconds=icl.prompt_tokens * icl.seconds_per_token + icl.answer_seconds,
        ),
        *(
            MethodCost(
                name=f"ERASE ICL k={icl.k}, cached {mode} prefix",
                unlearn_seconds=icl.deletion_seconds + probability * prefix_seconds,
                infer_seconds=cached_query_seconds,
            )
            for mode, probability in cached
        ),
    ]


def _methods(inputs: CostInputs) -> tuple[list[MethodCost], list[MethodCost]]:
    """The ERASE methods, and every method (ERASE first)."""
    icl = inputs.icl
    erase = _icl_methods(icl)
    full_prompt = erase[0].infer_seconds
    others = [
        MethodCost(
            name=f"ICL k={icl.k}, refit on every deletion",
            unlearn_seconds=icl.fit_seconds,
            infer_seconds=full_prompt,
        ),
        *(_sisa_method(s) for s in (inputs.sisa, *inputs.more_sisa)),
        *inputs.others,
    ]
    return erase, erase + others


def holistic_cost(inputs: CostInputs, workloads: list[tuple[int, int]] | None = None) -> CostReport:
    """Unit costs per method, totals for each (U, Q) workload, break-even of each ERASE
    variant against every other method.

    Args:
        inputs: the measured unit costs.
        workloads: (U, Q) pairs to total; three defaults with Q = 1000.

    Returns:
        The report (methods, scenario totals, break-even ratios).
    """
    erase, methods = _methods(inputs)
    scenarios = [
        Scenario(
            unlearn_requests=u,
            queries=q,
            total_seconds={m.name: u * m.unlearn_seconds + q * m.infer_seconds for m in methods},
        )
        for u, q in (workloads or [(1, 1000), (100, 1000), (1000, 1000)])
    ]
    pairs = [break_even(first, m) for first in erase for m in methods if m is not first]
    return CostReport(inputs=inputs, methods=methods, scenarios=scenarios, break_even=pairs)


class ProjectionInputs(BaseModel):
    """Sizes for a FLOP count: the LLM, its prompts, the training set and SISA's schedule."""

    model_config = _FROZEN

    parameters: float = Field(gt=0, description="LLM parameter count N")
    prompt_tokens: float = Field(ge=0)
    query_tokens: float = Field(ge=0)
    train_examples: int = Field(ge=1)
    tokens_per_example: float = Field(gt=0)
    shards: int = Field(ge=1)
    slices: int = Field(ge=1)
    epochs: float = Field(default=1.0, gt=0, description="fine-tuning epochs per slice")
    prefix_invalidation_probability: float = Field(default=0.0, ge=0, le=1)


class FlopProjection(BaseModel):
    """A projection from FLOP counts, not a measurement: 2N FLOPs per token forward, 6N per
    token trained, attention and memory traffic ignored."""

    model_config = _FROZEN

    kind: Literal["projection"] = "projection"
    note: str = "FLOP-count projection (2N/token forward, 6N/token trained), not a measurement"
    parameters: float
    icl_infer_flops: float
    icl_cached_infer_flops: float
    icl_unlearn_flops: float
    icl_cached_unlearn_flops: float
    sisa_infer_flops: float
    sisa_unlearn_flops: float
    icl_vs_sisa: BreakEven
    icl_cached_vs_sisa: BreakEven


def sisa_expected_retrain_fraction(slices: int) -> float:
    """Expected shard-data passes per deletion with cumulative slice training: a deletion in
    slice j (uniform) retrains slices j..R, slice m on m/R of the shard, so the mean over j is
    sum_m m^2 / R^2 = (R+1)(2R+1)/(6R) shard-epochs (1 for R = 1, about R/3 for large R)."""
    return (slices + 1) * (2 * slices + 1) / (6 * slices)


def project_flops(p: ProjectionInputs) -> FlopProjection:
    """Per-query and per-deletion FLOPs of ICL and SISA fine-tuning at parameter count N, and
    the break-even U/Q they imply (a ratio, so the FLOP rate of the hardware cancels out)."""
    n = p.parameters
    shard_tokens = p.train_examples / p.shards * p.tokens_per_example
    sisa_unlearn = 6 * n * shard_tokens * p.epochs * sisa_expected_retrain_fraction(p.slices)
    sisa_infer = 2 * n * p.query_tokens * p.shards
    icl_infer = 2 * n * p.prompt_tokens
    cached_infer = 2 * n * p.query_tokens
    cached_unlearn = p.prefix_invalidation_probability * 2 * n * (p.prompt_tokens - p.query_tokens)
    return FlopProjection(
        parameters=n,
        icl_infer_flops=icl_infer,
        icl_cached_infer_flops=cached_infer,
        icl_unlearn_flops=0.0,
        icl_cached_unlearn_flops=cached_unlearn,
        sisa_infer_flops=sisa_infer,
        sisa_unlearn_flops=sisa_unlearn,
        icl_vs_sisa=_solve("ICL", "SISA", -sisa_unlearn, icl_infer - sisa_infer),
        icl_cached_vs_sisa=_solve(
            "ICL cached prefix", "SISA", cached_unlearn - sisa_unlearn, cached_infer - sisa_infer
        ),
    )

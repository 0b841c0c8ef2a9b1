"""Holistic cost: totals, break-even ratios and the FLOP projection's arithmetic."""

from __future__ import annotations

import pytest

from langchain_erase.evaluation.cost import (
    CostInputs,
    ICLMeasurement,
    MethodCost,
    ProjectionInputs,
    SISAMeasurement,
    break_even,
    holistic_cost,
    project_flops,
    sisa_expected_retrain_fraction,
)

ICL = ICLMeasurement(
    k=4,
    prompt_tokens=100,
    query_tokens=20,
    seconds_per_token=0.001,
    deletion_seconds=0.0001,
    refit_probability=0.05,
    prefix_invalidation_probability=0.1,
    fit_seconds=2.0,
)
SISA = SISAMeasurement(
    shards=4,
    slices=4,
    retrain_seconds=1.0,
    infer_seconds_per_model=0.001,
    shared_infer_seconds=0.01,
)


def test_break_even_cases() -> None:
    cheap_unlearn = MethodCost(name="a", unlearn_seconds=0.0, infer_seconds=2.0)
    cheap_infer = MethodCost(name="b", unlearn_seconds=10.0, infer_seconds=1.0)
    be = break_even(cheap_unlearn, cheap_infer)
    assert be.first_cheaper_when == "above" and be.ratio == pytest.approx(0.1)
    assert break_even(cheap_infer, cheap_unlearn).first_cheaper_when == "below"
    dominant = MethodCost(name="c", unlearn_seconds=0.0, infer_seconds=0.5)
    assert break_even(dominant, cheap_infer).first_cheaper_when == "always"
    assert break_even(cheap_infer, dominant).first_cheaper_when == "never"
    assert break_even(dominant, dominant).first_cheaper_when == "equal"


def test_holistic_cost_totals_follow_the_formula() -> None:
    report = holistic_cost(CostInputs(model="m", icl=ICL, sisa=SISA), [(10, 1000)])
    by_name = {m.name: m for m in report.methods}
    icl = by_name["ERASE ICL k=4"]
    assert icl.infer_seconds == pytest.approx(0.1)
    cached = by_name["ERASE ICL k=4, cached centroid prefix"]
    assert cached.infer_seconds == pytest.approx(0.02)
    assert cached.unlearn_seconds == pytest.approx(0.0001 + 0.1 * 80 * 0.001)
    sisa = by_name["SISA S=4 R=4"]
    assert sisa.infer_seconds == pytest.approx(0.014)
    totals = report.scenarios[0].total_seconds
    assert totals[icl.name] == pytest.approx(10 * 0.0001 + 1000 * 0.1)
    assert totals[sisa.name] == pytest.approx(10 * 1.0 + 1000 * 0.014)
    assert all(b.first.startswith("ERASE") for b in report.break_even)


def test_sisa_retrain_fraction() -> None:
    assert sisa_expected_retrain_fraction(1) == 1.0
    # R = 2: slice 1 deletion retrains 1/2 + 1, slice 2 deletion retrains 1 -> mean 1.25
    assert sisa_expected_retrain_fraction(2) == pytest.approx(1.25)


def test_flop_projection_is_marked_and_scales_with_parameters() -> None:
    inputs = ProjectionInputs(
        parameters=1e9,
        prompt_tokens=100,
        query_tokens=20,
        train_examples=1000,
        tokens_per_example=20,
        shards=4,
        slices=1,
    )
    proj = project_flops(inputs)
    assert proj.kind == "projection" and "not a measurement" in proj.note
    assert proj.icl_infer_flops == pytest.approx(2e9 * 100)
    assert proj.sisa_unlearn_flops == pytest.approx(6e9 * 250 * 20)
    assert proj.sisa_infer_flops == pytest.approx(2e9 * 20 * 4)
    assert proj.icl_vs_sisa.first_cheaper_when == "above"
    bigger = project_flops(inputs.model_copy(update={"parameters": 1e10}))
    assert bigger.icl_vs_sisa.ratio == pytest.approx(proj.icl_vs_sisa.ratio)


def test_fixed_prefix_and_more_sisa_learners_are_costed() -> None:
    icl = ICL.model_copy(update={"fixed_prefix_invalidation_probability": 0.5})
    llm = SISA.model_copy(update={"label": "SISA LLM", "retrain_seconds": 30.0})
    report = holistic_cost(CostInputs(model="m", icl=icl, sisa=SISA, more_sisa=[llm]))
    by_name = {m.name: m for m in report.methods}
    fixed = by_name["ERASE ICL k=4, cached fixed prefix"]
    assert fixed.infer_seconds == pytest.approx(0.02)
    assert fixed.unlearn_seconds == pytest.approx(0.0001 + 0.5 * 80 * 0.001)
    assert by_name["SISA LLM S=4 R=4"].unlearn_seconds == 30.0
    firsts = {b.first for b in report.break_even}
    assert fixed.name in firsts and "SISA S=4 R=4" not in firsts
    vs_llm = next(
        b for b in report.break_even if b.first == fixed.name and b.second == "SISA LLM S=4 R=4"
    )
    assert vs_llm.first_cheaper_when == "above"
    assert vs_llm.ratio == pytest.approx((0.02 - 0.014) / (30.0 - 0.0401))

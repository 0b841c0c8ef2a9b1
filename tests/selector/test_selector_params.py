"""`SelectorParams`: declared once, validated at creation, frozen, and round-tripping to the
JSON that stores and snapshots have always kept."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from langchain_erase.errors import InvalidParameterError, StateFileError
from langchain_erase.selector.params import SelectorParams

#: What a store written before this object existed holds for a default mmr selector.
OLD_MMR_JSON: dict[str, Any] = {
    "k": 4,
    "epsilon": 0.25,
    "seed": 0,
    "gamma": 0.2,
    "max_iter": 30,
    "p": 8,
    "selection": "mmr",
    "input_keys": ["input"],
    "example_keys": None,
    "fetch_k": 20,
    "lambda_mult": 0.5,
}


def test_the_json_keeps_the_keys_stores_and_snapshots_have() -> None:
    params = SelectorParams.create(selection="mmr", input_keys=["input"])
    assert params.to_json() == OLD_MMR_JSON
    assert SelectorParams.from_json(OLD_MMR_JSON) == params
    plain = SelectorParams.create().to_json()
    assert "fetch_k" not in plain and "lambda_mult" not in plain  # only mmr keeps them
    assert SelectorParams.from_json(plain) == SelectorParams.create()


def test_it_is_frozen() -> None:
    params = SelectorParams.create()
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.k = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"k": 0}, "k"),
        ({"p": 0}, "p must be an integer"),
        ({"p": True}, "p must be an integer"),
        ({"selection": "best"}, "selection must be one of"),
        ({"fetch_k": 3}, "only to selection='mmr'"),
        ({"selection": "mmr", "lambda_mult": 2}, "lambda_mult"),
        ({"selection": "mmr", "fetch_k": 0}, "fetch_k"),
        ({"input_keys": "input"}, "input_keys must be a list"),
        ({"example_keys": [1]}, "example_keys must be a list"),
        ({"epsilon": "wide"}, "epsilon must be a finite number"),
    ],
)
def test_invalid_parameters_are_refused_with_a_typed_error(
    bad: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        SelectorParams.create(**bad)


def test_damaged_stored_parameters_are_a_state_file_error() -> None:
    with pytest.raises(StateFileError, match="invalid parameters"):
        SelectorParams.from_json({**OLD_MMR_JSON, "k": -1})
    with pytest.raises(StateFileError, match="invalid parameters"):
        SelectorParams.from_json({**OLD_MMR_JSON, "colour": "red"})


def test_replace_validates_and_reports_differences() -> None:
    stored = SelectorParams.create(k=3, selection="mmr")
    assert stored.replace() == stored
    other = stored.replace(k=5, selection="knn")
    assert other.fetch_k is None and other.lambda_mult is None
    assert stored.differences(other) == [
        "fetch_k=20 (given None)",
        "k=3 (given 5)",
        "lambda_mult=0.5 (given None)",
        "selection='mmr' (given 'knn')",
    ]
    with pytest.raises(InvalidParameterError):
        stored.replace(p=0)


def test_the_index_it_makes_carries_every_parameter() -> None:
    params = SelectorParams.create(k=3, seed=9, p=4, selection="mmr", fetch_k=7)
    index = params.new_index(similar_screen=False)
    assert (index.params.k, index.params.seed, index.p, index.selection) == (3, 9, 4, "mmr")
    assert (index.fetch_k, index.lambda_mult, index.similar_screen) == (7, 0.5, False)

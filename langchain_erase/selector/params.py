"""`SelectorParams`: the parameters that define a selector's state, declared once.

A frozen, validated value: every parameter is checked when it is made (typed
`InvalidParameterError`), so nothing downstream re-checks. It round-trips to the JSON that
stores (`StoreHeader.params`) and snapshots keep, with the keys they have always had:
``k, epsilon, seed, gamma, max_iter, p, selection, input_keys, example_keys`` and, for
``selection="mmr"`` only, ``fetch_k, lambda_mult``. Per-process options that never change a
selection (``similar_screen``, ``show_progress``) are not part of it.

    >>> params = SelectorParams.create(k=3, selection="mmr")
    >>> params.to_json()["fetch_k"], params.lambda_mult
    (20, 0.5)
    >>> SelectorParams.from_json(params.to_json()) == params
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_erase.core import QKMeansParams
from langchain_erase.core.index import (
    DEFAULT_FETCH_K,
    DEFAULT_LAMBDA_MULT,
    SELECTION_MODES,
    ERASEIndex,
    SelectionMode,
)
from langchain_erase.core.qkmeans import MAX_P
from langchain_erase.errors import InvalidParameterError, StateFileError
from langchain_erase.inputs import encodable

__all__ = [
    "DEFAULT_EPSILON",
    "DEFAULT_GAMMA",
    "DEFAULT_MAX_ITER",
    "DEFAULT_P",
    "ParameterViews",
    "SelectorParams",
]

#: Defaults chosen with benchmarks/bench_selector.py (see docs/benchmarks.md).
DEFAULT_P = 8
DEFAULT_EPSILON = 0.25
DEFAULT_GAMMA = 0.2
DEFAULT_MAX_ITER = 30


def _keys(name: str, keys: object) -> tuple[str, ...] | None:
    """A list of key names as a tuple (None or empty: None), or InvalidParameterError."""
    if keys is None:
        return None
    listed = (
        None
        if isinstance(keys, str | bytes | Mapping) or not isinstance(keys, Iterable)
        else list(keys)
    )
    if listed is None or not all(isinstance(key, str) and encodable(key) for key in listed):
        raise InvalidParameterError(
            f"{name} must be a list of strings (valid Unicode), got {keys!r}"
        )
    return tuple(listed) or None


@dataclass(frozen=True)
class SelectorParams:
    """The state-defining parameters of an example selector (see `ERASEExampleSelector`).

    Make one with `create` (defaults filled in, everything validated) or `from_json`.

    Attributes:
        k: Clusters, i.e. demonstrations per prompt.
        epsilon: Lattice width of the quantized k-means.
        seed: Seed of every random choice.
        gamma: Balance threshold.
        max_iter: Lloyd iterations.
        p: Projected dimension.
        selection: The selection mode.
        input_keys: Keys whose values are embedded (None: all, sorted).
        example_keys: Keys returned by a selection (None: all).
        fetch_k: "mmr" only: candidates per query (None in other modes).
        lambda_mult: "mmr" only: similarity weight (None in other modes).
    """

    k: int
    epsilon: float
    seed: int
    gamma: float
    max_iter: int
    p: int
    selection: SelectionMode
    input_keys: tuple[str, ...] | None
    example_keys: tuple[str, ...] | None
    fetch_k: int | None
    lambda_mult: float | None

    @classmethod
    def create(
        cls,
        *,
        k: int = 4,
        epsilon: float = DEFAULT_EPSILON,
        seed: int = 0,
        gamma: float = DEFAULT_GAMMA,
        max_iter: int = DEFAULT_MAX_ITER,
        p: int = DEFAULT_P,
        selection: SelectionMode = "random",
        input_keys: Sequence[str] | None = None,
        example_keys: Sequence[str] | None = None,
        fetch_k: int | None = None,
        lambda_mult: float | None = None,
    ) -> SelectorParams:
        """Validated parameters, defaults filled in (mmr's fetch_k 20, lambda_mult 0.5).

        Args:
            k: Clusters.
            epsilon: Lattice width.
            seed: Seed.
            gamma: Balance threshold.
            max_iter: Lloyd iterations.
            p: Projected dimension, in [1, MAX_P].
            selection: One of `SELECTION_MODES`.
            input_keys: Keys that are embedded.
            example_keys: Keys that are returned.
            fetch_k: "mmr" only: a positive integer.
            lambda_mult: "mmr" only: a number in [0, 1].

        Returns:
            The parameters.

        Raises:
            InvalidParameterError: A parameter is out of range or of the wrong type.
        """
        if selection not in SELECTION_MODES:
            raise InvalidParameterError(
                f"selection must be one of {SELECTION_MODES}, got {selection!r}"
            )
        if selection != "mmr":
            if fetch_k is not None or lambda_mult is not None:
                raise InvalidParameterError("fetch_k and lambda_mult apply only to selection='mmr'")
        else:
            fetch_k = DEFAULT_FETCH_K if fetch_k is None else fetch_k
            lambda_mult = DEFAULT_LAMBDA_MULT if lambda_mult is None else lambda_mult
            if isinstance(fetch_k, bool) or not isinstance(fetch_k, int) or fetch_k < 1:
                raise InvalidParameterError(f"fetch_k must be a positive integer, got {fetch_k!r}")
            if (
                isinstance(lambda_mult, bool)
                or not isinstance(lambda_mult, int | float)
                or not 0.0 <= lambda_mult <= 1.0
            ):
                raise InvalidParameterError(
                    f"lambda_mult must be a number in [0, 1], got {lambda_mult!r}"
                )
            lambda_mult = float(lambda_mult)
        if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= MAX_P:
            raise InvalidParameterError(f"p must be an integer in [1, {MAX_P}], got {p!r}")
        inputs, outputs = _keys("input_keys", input_keys), _keys("example_keys", example_keys)
        try:  # TypeError: a string where a number belongs
            QKMeansParams(k=k, epsilon=epsilon, seed=seed, gamma=gamma, max_iter=max_iter)
        except (ValueError, TypeError) as err:
            raise InvalidParameterError(str(err)) from None
        return cls(
            k=k,
            epsilon=epsilon,
            seed=seed,
            gamma=gamma,
            max_iter=max_iter,
            p=p,
            selection=selection,
            input_keys=inputs,
            example_keys=outputs,
            fetch_k=fetch_k,
            lambda_mult=lambda_mult,
        )

    @classmethod
    def from_json(cls, stored: Mapping[str, Any], where: str = "the store") -> SelectorParams:
        """Parameters as a store or snapshot keeps them.

        Args:
            stored: The JSON object (see the module docstring for its keys).
            where: What holds it, for the message.

        Returns:
            The parameters.

        Raises:
            StateFileError: The object is not valid parameters (a damaged or foreign file).
        """
        try:
            return cls.create(**dict(stored))
        except (TypeError, ValueError) as err:  # InvalidParameterError is a ValueError
            raise StateFileError(f"{where} has invalid parameters: {err}") from None

    def replace(self, **changes: Any) -> SelectorParams:
        """These parameters with some changed, validated again.

        Args:
            **changes: Parameters to change (as `create` takes them).

        Returns:
            The new parameters.
        """
        current = self.to_json()
        if changes.get("selection", self.selection) != "mmr":
            current.pop("fetch_k", None)
            current.pop("lambda_mult", None)
        return SelectorParams.create(**{**current, **changes})

    def to_json(self) -> dict[str, Any]:
        """Returns:
        The JSON object stores and snapshots keep (same keys as ever)."""
        out = {
            "k": self.k,
            "epsilon": self.epsilon,
            "seed": self.seed,
            "gamma": self.gamma,
            "max_iter": self.max_iter,
            "p": self.p,
            "selection": self.selection,
            "input_keys": None if self.input_keys is None else list(self.input_keys),
            "example_keys": None if self.example_keys is None else list(self.example_keys),
        }
        if self.selection == "mmr":
            out.update(fetch_k=self.fetch_k, lambda_mult=self.lambda_mult)
        return out

    def differences(self, other: SelectorParams) -> list[str]:
        """Args:
            other: Other parameters.

        Returns:
            ``name=<mine> (given <other's>)`` for each parameter that differs, sorted."""
        mine, theirs = self.to_json(), other.to_json()
        return [
            f"{name}={mine.get(name)!r} (given {theirs.get(name)!r})"
            for name in sorted(set(mine) | set(theirs))
            if mine.get(name) != theirs.get(name)
        ]

    @property
    def clustering(self) -> QKMeansParams:
        """The quantized k-means parameters."""
        return QKMeansParams(
            k=self.k,
            epsilon=self.epsilon,
            seed=self.seed,
            gamma=self.gamma,
            max_iter=self.max_iter,
        )

    def new_index(self, *, similar_screen: bool = True) -> ERASEIndex:
        """An empty index with these parameters.

        Args:
            similar_screen: "similar" only: the float16 FAISS screen (see `ERASEIndex`).

        Returns:
            The index.
        """
        return ERASEIndex(
            self.clustering,
            self.p,
            self.selection,
            {
                "input_keys": None if self.input_keys is None else list(self.input_keys),
                "example_keys": None if self.example_keys is None else list(self.example_keys),
            },
            fetch_k=DEFAULT_FETCH_K if self.fetch_k is None else self.fetch_k,
            lambda_mult=DEFAULT_LAMBDA_MULT if self.lambda_mult is None else self.lambda_mult,
            similar_screen=similar_screen,
        )


class ParameterViews:
    """Mixin: a selector's parameters as read-only properties (from its `_params`)."""

    _params: SelectorParams

    @property
    def parameters(self) -> SelectorParams:
        """Every state-defining parameter (frozen; its `to_json()` is what stores keep)."""
        return self._params

    @property
    def params(self) -> QKMeansParams:
        """The clustering parameters."""
        return self._params.clustering

    @property
    def p(self) -> int:
        """The projected dimension."""
        return self._params.p

    @property
    def selection(self) -> SelectionMode:
        """The selection mode."""
        return self._params.selection

    @property
    def input_keys(self) -> list[str] | None:
        """Keys whose values are embedded (None: all)."""
        keys = self._params.input_keys
        return None if keys is None else list(keys)

    @property
    def example_keys(self) -> list[str] | None:
        """Keys a selection returns (None: all)."""
        keys = self._params.example_keys
        return None if keys is None else list(keys)

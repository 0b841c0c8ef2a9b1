"""Bad input at every entry point: a typed error from langchain_erase.errors, and the
selector's state and its store exactly as before (digest, examples, stored rows, log)."""

from __future__ import annotations

import itertools
import math
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import DIM, FaultyEmbeddings, examples, fake, frozen

from langchain_erase.errors import (
    DuplicateExampleError,
    EmbeddingError,
    ERASEError,
    InputTooLongError,
    InvalidExampleError,
    InvalidParameterError,
    UnknownExampleError,
)
from langchain_erase.example_selectors import ERASEExampleSelector

Sel = ERASEExampleSelector
_RUNS = itertools.count()  # fresh example texts for every hypothesis run
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(params=["memory", "store"])
def selector(request: pytest.FixtureRequest, backend_target: str) -> Any:
    """A selector with 20 examples, in memory or backed by a store of every storage backend
    (`backend_target`; the in-memory case repeats per backend), closed afterwards."""
    params: dict[str, Any] = {"k": 3, "seed": 2, "input_keys": ["input"]}
    if request.param == "memory":
        sel = Sel(fake(), **params)
    else:
        sel = Sel.open(backend_target, fake(), log_key="bad-input tests", **params)
    sel.add_examples(examples(20))
    yield sel
    sel.close()


def _with_embeddings(sel: Sel, embeddings: Any) -> Sel:
    sel.embeddings = embeddings
    return sel


def _faulty_add(mode: str) -> Callable[[Sel], object]:
    return lambda s: _with_embeddings(s, FaultyEmbeddings(mode)).add_examples(examples(3, "new"))


def _circular() -> list[object]:
    loop: list[object] = []
    loop.append(loop)
    return loop


#: name -> (call on a selector, expected error); untyped callers are the point

BAD_CALLS: dict[str, tuple[Callable[[Any], object], type[ERASEError]]] = {
    "examples_none": (lambda s: s.add_examples(None), InvalidExampleError),
    "examples_str": (lambda s: s.add_examples("input"), InvalidExampleError),
    "examples_dict": (lambda s: s.add_examples({"input": "x"}), InvalidExampleError),
    "empty_dict": (lambda s: s.add_examples([{}]), InvalidExampleError),
    "not_a_dict": (lambda s: s.add_examples([["input", "x"]]), InvalidExampleError),
    "missing_input_key": (lambda s: s.add_examples([{"output": "y"}]), InvalidExampleError),
    "nan_value": (lambda s: s.add_examples([{"input": float("nan")}]), InvalidExampleError),
    "set_value": (lambda s: s.add_examples([{"input": {1, 2}}]), InvalidExampleError),
    "bytes_value": (lambda s: s.add_examples([{"input": b"x"}]), InvalidExampleError),
    "object_in_list": (lambda s: s.add_examples([{"input": [1, object()]}]), InvalidExampleError),
    "circular_list": (lambda s: s.add_examples([{"input": _circular()}]), InvalidExampleError),
    "int_key": (lambda s: s.add_examples([{"input": "x", 1: "y"}]), InvalidExampleError),
    "nested_int_key": (lambda s: s.add_examples([{"input": {1: "y"}}]), InvalidExampleError),
    "one_bad_in_batch": (
        lambda s: s.add_examples([*examples(5, "ok"), {"input": b"1"}]),
        InvalidExampleError,
    ),
    "duplicate_in_batch": (
        lambda s: s.add_examples(examples(2, "d") + examples(1, "d")),
        DuplicateExampleError,
    ),
    "duplicate_ids_in_batch": (
        lambda s: s.add_examples(examples(2, "n"), ids=["same", "same"]),
        DuplicateExampleError,
    ),
    "already_present": (lambda s: s.add_examples(examples(1)), DuplicateExampleError),
    "present_id": (
        lambda s: s.add_examples(examples(1, "n"), ids=[s.ids[0]]),
        DuplicateExampleError,
    ),
    "ids_wrong_count": (lambda s: s.add_examples(examples(2, "n"), ids=["a"]), InvalidExampleError),
    "ids_str": (lambda s: s.add_examples(examples(1, "n"), ids="a"), InvalidExampleError),
    "empty_id": (lambda s: s.add_examples(examples(1, "n"), ids=[""]), InvalidExampleError),
    "int_id": (lambda s: s.add_examples(examples(1, "n"), ids=[7]), InvalidExampleError),
    "unknown_id": (lambda s: s.delete_example("nope"), UnknownExampleError),
    "non_str_id": (lambda s: s.delete_example(3), UnknownExampleError),
    "unhashable_id": (lambda s: s.delete_example(["x"]), UnknownExampleError),
    "batch_unknown_last": (lambda s: s.delete_examples([*s.ids[:3], "nope"]), UnknownExampleError),
    "batch_duplicate": (lambda s: s.delete_examples([s.ids[0], s.ids[0]]), DuplicateExampleError),
    "batch_unhashable": (lambda s: s.delete_examples([s.ids[0], ["x"]]), UnknownExampleError),
    "batch_str": (lambda s: s.delete_examples(s.ids[0]), UnknownExampleError),
    "batch_none": (lambda s: s.delete_examples(None), UnknownExampleError),
    "get_unknown": (lambda s: s.get_example("nope"), UnknownExampleError),
    "select_not_dict": (lambda s: s.select_examples("x"), InvalidExampleError),
    "select_missing_key": (lambda s: s.select_examples({"other": "x"}), InvalidExampleError),
    "select_inf_value": (lambda s: s.select_examples({"input": math.inf}), InvalidExampleError),
    **{
        f"embeddings_{mode}": (_faulty_add(mode), EmbeddingError)
        for mode in ("nan", "inf", "zero", "wrong_dim", "ragged", "short", "raise", "not_numbers")
    },
    "embeddings_raise_mid_batch": (  # 600 texts are embedded in 3 calls; the 2nd raises
        lambda s: _with_embeddings(s, FaultyEmbeddings("raise", good_calls=1)).add_examples(
            examples(600, "many")
        ),
        EmbeddingError,
    ),
    "embeddings_nan_mid_batch": (
        lambda s: _with_embeddings(s, FaultyEmbeddings("nan", good_calls=1)).add_examples(
            examples(600, "many")
        ),
        EmbeddingError,
    ),
    "other_dimension": (  # e.g. reopened with another model
        lambda s: _with_embeddings(s, fake(DIM * 2)).add_examples(examples(2, "new")),
        EmbeddingError,
    ),
    "vectors_nan": (
        lambda s: s.add_examples(examples(2, "v"), vectors=[[np.nan] * DIM, [1.0] * DIM]),
        EmbeddingError,
    ),
    "vectors_wrong_count": (
        lambda s: s.add_examples(examples(2, "v"), vectors=[[1.0] * DIM]),
        EmbeddingError,
    ),
    "vectors_wrong_dim": (
        lambda s: s.add_examples(examples(1, "v"), vectors=[[1.0] * (DIM + 1)]),
        EmbeddingError,
    ),
    "input_too_long_keeps_its_type": (
        lambda s: _with_embeddings(s, _TooLong()).add_examples(examples(1, "long")),
        InputTooLongError,
    ),
    # lone surrogates cannot be encoded as UTF-8: they raised a bare UnicodeEncodeError
    "lone_surrogate_in_id": (
        lambda s: s.add_examples(examples(1, "u"), ids=["id-\ud800"]),
        InvalidExampleError,
    ),
    "lone_surrogate_in_embedded_value": (
        lambda s: s.add_examples([{"input": "x\udcff", "output": "y"}]),
        InvalidExampleError,
    ),
    "lone_surrogate_in_other_value_with_custom_id": (
        lambda s: s.add_examples([{"input": "fine", "output": "\ud800"}], ids=["custom"]),
        InvalidExampleError,
    ),
    "lone_surrogate_in_key": (
        lambda s: s.add_examples([{"input": "fine", "\udfff": "y"}]),
        InvalidExampleError,
    ),
    "lone_surrogate_after_valid_examples": (
        lambda s: s.add_examples(
            [*examples(3, "s"), {"input": "a", "output": "\udc80"}], ids=["a", "b", "c", "d"]
        ),
        InvalidExampleError,
    ),
    "lone_surrogate_in_query": (
        lambda s: s.select_examples({"input": "query \ud800"}),
        InvalidExampleError,
    ),
    "ids_generator_too_short": (
        lambda s: s.add_examples(examples(3, "g"), ids=(f"g{i}" for i in range(2))),
        InvalidExampleError,
    ),
    "vectors_complex": (
        lambda s: s.add_examples(examples(2, "c"), vectors=np.full((2, DIM), 1 + 1j)),
        EmbeddingError,
    ),
    "model_returns_complex": (
        lambda s: _with_embeddings(s, _ComplexModel()).add_examples(examples(2, "c")),
        EmbeddingError,
    ),
    "vectors_overflow_float32": (  # was refused, but only after a RuntimeWarning
        lambda s: s.add_examples(examples(1, "o"), vectors=[[1e300] * DIM]),
        EmbeddingError,
    ),
    # an unordered collection pairs ids with examples in hash order (varies per process)
    "ids_set": (
        lambda s: s.add_examples(examples(3, "set"), ids={"x", "y", "z"}),
        InvalidExampleError,
    ),
    "ids_dict": (
        lambda s: s.add_examples(examples(2, "map"), ids={"x": "a", "y": "b"}),
        InvalidExampleError,
    ),
    "save_to_unencodable_path": (
        lambda s: s.save("snapshot-\ud800"),
        InvalidParameterError,
    ),
}


class _ComplexModel(FaultyEmbeddings):
    """A model whose vectors come back as complex numpy arrays (the imaginary part was
    dropped with only a ComplexWarning)."""

    def __init__(self) -> None:
        super().__init__("raise")

    def embed_documents(self, texts: list[str]) -> list[Any]:
        return [np.asarray(row) * (1 + 1j) for row in self.inner.embed_documents(texts)]


class _TooLong(FaultyEmbeddings):
    """A model that refuses over-long inputs with the package's own typed error."""

    def __init__(self) -> None:
        super().__init__("raise")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise InputTooLongError("text has more tokens than the model's context")


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_call_raises_typed_error_and_changes_nothing(selector: Sel, name: str) -> None:
    call, expected = BAD_CALLS[name]
    before = frozen(selector)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a refusal, not a warning (numpy's ComplexWarning)
        with pytest.raises(expected):
            call(selector)
    assert frozen(selector) == before
    selector.embeddings = fake()
    assert selector.verify()


@pytest.mark.parametrize(
    "params",
    [
        {"k": 0},
        {"k": -3},
        {"k": 2.5},
        {"k": True},
        {"k": "4"},
        {"epsilon": 0.0},
        {"epsilon": -0.25},
        {"epsilon": float("nan")},
        {"epsilon": float("inf")},
        {"epsilon": "0.25"},
        {"gamma": -0.1},
        {"gamma": 1.5},
        {"gamma": "0.2"},
        {"gamma": float("nan")},
        {"p": 0},
        {"p": 1000},
        {"max_iter": 0},
        {"seed": 2**70},
        {"seed": "0"},
        {"seed": 1.5},
        {"selection": "best"},
        {"input_keys": "input"},
        {"input_keys": [1]},
        {"example_keys": "output"},
        {"input_keys": ["\ud800"]},
        {"example_keys": ["output", "\udfff"]},
    ],
)
def test_bad_parameters_are_refused_everywhere(tmp_path: Path, params: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameterError):
        Sel(fake(), **params)
    with pytest.raises(InvalidParameterError):
        Sel.from_examples(examples(3), fake(), **params)
    path = tmp_path / "new.db"
    with pytest.raises(InvalidParameterError):
        Sel.open(path, fake(), **params)
    assert list(tmp_path.iterdir()) == []  # a refused open leaves no file behind


def test_valid_corner_inputs_are_accepted(tmp_path: Path) -> None:
    """Not errors: k > n (fewer buckets), an empty batch, extra keys, a huge text."""
    sel = Sel.open(tmp_path / "s.db", fake(), k=50, input_keys=["input"], example_keys=["input"])
    assert sel.add_examples([]) == []
    huge = {"input": "w" * 2_000_000, "output": "y", "extra": "ignored for embedding"}
    [huge_id] = sel.add_examples([huge, *examples(4)])[:1]
    assert len(sel.select_examples({"input": "q", "unused": "prompt variable"})) == 5
    assert sel.select_examples({"input": "q"})[0].keys() == {"input"}
    sel.close()
    back = Sel.open(tmp_path / "s.db", fake())
    assert back.get_example(huge_id) == huge and back.verify()
    back.delete_example(huge_id)
    back.close()


@st.composite
def junk(draw: st.DrawFn) -> Any:
    """Anything an untyped caller might pass as one example."""
    # text with lone surrogates too (hypothesis leaves them out of st.text by default)
    odd_text = st.text(
        st.sampled_from(["a", " ", "é", "\ud800", "\udcff", "\U0001f600"]), max_size=8
    )
    scalar = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=20),
        odd_text,
        st.binary(),
    )
    value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3), max_leaves=5)
    key = st.one_of(
        st.text(max_size=8), odd_text, st.integers(), st.sampled_from(["input", "output"])
    )
    almost_valid = st.fixed_dictionaries({"input": odd_text}, optional={"output": odd_text})
    return draw(st.one_of(value, st.dictionaries(key, value, max_size=4), almost_valid))


@PROPERTY
@given(batch=st.lists(junk(), max_size=4))
def test_any_junk_batch_is_added_whole_or_refused_whole(selector: Sel, batch: list[Any]) -> None:
    before = frozen(selector)
    try:
        added = selector.add_examples(batch)
    except ERASEError:
        assert frozen(selector) == before
        return
    assert len(added) == len(batch) and all(i in selector for i in added)
    assert selector.verify()


@PROPERTY
@given(
    mode=st.sampled_from(["nan", "inf", "zero", "wrong_dim", "ragged", "short", "raise"]),
    good_calls=st.integers(0, 2),
    n=st.integers(1, 600),
)
def test_any_faulty_model_leaves_nothing_half_added(
    selector: Sel, mode: str, good_calls: int, n: int
) -> None:
    before = frozen(selector)
    selector.embeddings = FaultyEmbeddings(mode, good_calls)
    try:
        selector.add_examples(examples(n, f"run{next(_RUNS)}"))
    except EmbeddingError:
        assert frozen(selector) == before
    else:  # every call that faulted came after the batch was embedded
        assert good_calls * 256 >= n
    selector.embeddings = fake()
    assert selector.verify()


@PROPERTY
@given(ids=st.lists(st.one_of(st.text(max_size=6), st.integers(), st.none()), max_size=4))
def test_any_unknown_ids_delete_nothing(selector: Sel, ids: list[Any]) -> None:
    before = frozen(selector)
    with pytest.raises((UnknownExampleError, DuplicateExampleError)):
        selector.delete_examples([*ids, "not-an-id"])
    assert frozen(selector) == before


@PROPERTY
@given(
    params=st.fixed_dictionaries(
        {},
        optional={
            "k": st.one_of(st.integers(-3, 5), st.floats(), st.text(max_size=2)),
            "epsilon": st.one_of(st.floats(), st.integers(-2, 2), st.none()),
            "gamma": st.one_of(st.floats(), st.text(max_size=2)),
            "p": st.one_of(st.integers(-2, 100), st.booleans()),
            "max_iter": st.one_of(st.integers(-2, 2000), st.floats()),
            "seed": st.one_of(st.integers(), st.floats()),
        },
    )
)
def test_any_parameters_build_a_selector_or_raise_invalid_parameter(params: dict[str, Any]) -> None:
    try:
        sel = Sel(fake(), **params)
    except InvalidParameterError:
        return
    if sel.p > DIM:  # regression: p above the embedding dimension crashed the fit
        with pytest.raises(EmbeddingError, match="dimension"):
            sel.add_examples(examples(6))
        assert len(sel) == 0 and sel.dimension is None
        return
    sel.add_examples(examples(6))
    assert sel.verify()


def test_p_above_the_embedding_dimension_is_refused_not_crashed() -> None:
    sel = Sel(fake(), p=DIM + 1)
    with pytest.raises(EmbeddingError, match="dimension"):
        sel.add_examples(examples(4))
    assert len(sel) == 0 and sel.verify()


class _ModelLoadedError(RuntimeError):
    """Raised if a refused CLI call got as far as loading a language model."""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "usage"),
        (["no-such-command"], "usage"),
        (["demo", "--k", "four"], "usage"),
        (["demo", "--seed", "1.5"], "usage"),
        (["demo", "--selection", "best"], "usage"),
        (["demo", "--limit", "ten"], "usage"),
        (["eval", "--k", "x"], "usage"),
        (["bench", "--sizes"], "usage"),
        (["demo", "--limit", "-1"], "usage"),
        (["demo", "--k", "0"], "usage"),
        (["demo", "--k", "-2"], "usage"),
        (["demo", "--model", "nosuch"], "argument --model: 'nosuch' is neither"),
    ],
)
def test_cli_refuses_bad_arguments_before_loading_a_model(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: str,
) -> None:
    from langchain_erase import cli

    monkeypatch.setattr("langchain_erase.embeddings.LlamaCppEmbeddings", lambda **_: fake())

    def no_model(*_: object, **__: object) -> None:
        raise _ModelLoadedError

    monkeypatch.setattr("langchain_erase.llms.local_llm", no_model)
    if expected == "usage":
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
    else:  # a typed error: one line on stderr, exit code 2
        assert cli.main(argv) == 2
        assert expected in capsys.readouterr().err


def test_refused_add_with_a_lone_surrogate_leaves_no_half_added_example(tmp_path: Path) -> None:
    # in memory, a custom id plus a surrogate in a value that is not embedded was half added:
    # len() counted it, verify() and save() raised, deleting it raised KeyError
    sel = Sel.from_examples(examples(5), fake(), k=2, input_keys=["input"])
    with pytest.raises(InvalidExampleError):
        sel.add_examples([{"input": "fine", "output": "bad \ud800"}], ids=["custom"])
    assert len(sel) == 5 and "custom" not in sel and sel.verify()
    with pytest.raises(UnknownExampleError):
        sel.delete_example("custom")
    sel.save(tmp_path / "snapshot")
    assert Sel.load(tmp_path / "snapshot", fake()).state_digest() == sel.state_digest()


@pytest.mark.parametrize("selection", ["random", "centroid", "similar"])
def test_query_with_a_lone_surrogate_is_a_typed_error_in_every_mode(selection: str) -> None:
    sel = Sel.from_examples(examples(6), fake(), k=2, selection=selection, input_keys=["input"])
    with pytest.raises(InvalidExampleError):
        sel.select_examples({"input": "\udcff"})


def test_ids_from_a_generator_are_accepted(selector: Sel) -> None:
    added = selector.add_examples(examples(3, "gen"), ids=(f"gen-{i}" for i in range(3)))
    assert added == ["gen-0", "gen-1", "gen-2"]
    assert all(i in selector for i in added) and selector.verify()


def test_similar_mode_switching_between_empty_and_nonempty_never_fails() -> None:
    # the emptiness check and the query embedding ran outside the lock: a selector emptied
    # and refilled by another thread raised "similar mode needs a query vector"
    sel = Sel(fake(), k=2, selection="similar", input_keys=["input"])
    pool = examples(2, "toggle")
    errors: list[BaseException] = []
    sizes: set[int] = set()
    done = threading.Event()

    def toggle() -> None:
        try:
            for _ in range(400):
                ids = sel.add_examples(pool)
                sel.delete_examples(ids)
        except BaseException as err:  # reported below
            errors.append(err)
        finally:
            done.set()

    def select() -> None:
        try:
            while not done.is_set():
                sizes.add(len(sel.select_examples({"input": "which one"})))
        except BaseException as err:
            errors.append(err)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=toggle), threading.Thread(target=select)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[0]
    assert not any(thread.is_alive() for thread in threads)
    assert 0 in sizes and sizes - {0}, sizes  # both states were seen by the selecting thread


@pytest.mark.parametrize(
    "where",
    [
        {"name": "set-\ud800"},
        {"log_key": "key-\udfff"},
        {"path": "store-\ud800.db"},
    ],
    ids=lambda where: next(iter(where)),
)
def test_unencodable_store_name_key_or_path_is_refused(
    tmp_path: Path, where: dict[str, str]
) -> None:
    # lone surrogates there raised a bare UnicodeEncodeError
    arguments = dict(where)
    path = tmp_path / arguments.pop("path", "s.db")
    with pytest.raises(InvalidParameterError):
        Sel.open(path, fake(), **arguments)
    assert list(tmp_path.iterdir()) == []


def test_loading_from_an_unencodable_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError):
        Sel.load(tmp_path / "snapshot-\ud800", fake())

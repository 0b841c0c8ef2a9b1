"""LlamaCppEmbeddings without a real model: LangChain's standard unit suite, and llama.cpp
running the tiny synthetic BERT from ``tiny_bert``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from langchain_tests.unit_tests import EmbeddingsUnitTests
from pydantic import ValidationError
from tiny_bert import HIDDEN, POSITIONS, write_model_dir

from langchain_erase.embeddings import LlamaCppEmbeddings, _l2_normalize
from langchain_erase.errors import EmbeddingError, InputTooLongError, ModelNotFoundError
from langchain_erase.models.gguf_convert import convert_bert_to_gguf

TEXTS = ["hello world", "unaffable", "hello, hello world!", "", "world world world"]


class TestLlamaCppEmbeddingsStandard(EmbeddingsUnitTests):
    """Construction only: the model loads lazily, so these need no GGUF."""

    @property
    def embeddings_class(self) -> type[LlamaCppEmbeddings]:
        return LlamaCppEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, object]:
        return {"n_ctx": 128, "n_threads": 1}


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    out = root / "tiny.gguf"
    convert_bert_to_gguf(write_model_dir(root / "model"), out)
    return out


@pytest.fixture(scope="module")
def tiny(tiny_gguf: Path) -> LlamaCppEmbeddings:
    return LlamaCppEmbeddings(model_path=tiny_gguf, n_ctx=POSITIONS, n_threads=1, batch_size=2)


def test_vectors_are_unit_length(tiny: LlamaCppEmbeddings) -> None:
    vectors = np.array(tiny.embed_documents(TEXTS))
    assert vectors.shape == (len(TEXTS), HIDDEN)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-12)


def test_batched_equals_one_by_one(tiny: LlamaCppEmbeddings) -> None:
    batched = np.array(tiny.embed_documents(TEXTS))
    single = np.array([tiny.embed_query(text) for text in TEXTS])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_too_long_input_raises_instead_of_truncating(tiny: LlamaCppEmbeddings) -> None:
    fits = "hello " * (POSITIONS - 2)  # + [CLS] and [SEP] = the whole context
    assert len(tiny.embed_query(fits)) == HIDDEN
    with pytest.raises(InputTooLongError, match=f"text 1 has {POSITIONS + 1} tokens"):
        tiny.embed_documents(["hello", fits + "world"])
    assert isinstance(InputTooLongError("x"), EmbeddingError)


def test_model_loads_once(tiny: LlamaCppEmbeddings) -> None:
    tiny.embed_query("hello")
    first = tiny._llama
    tiny.embed_documents(TEXTS)
    assert tiny._llama is first


async def test_async_matches_sync(tiny: LlamaCppEmbeddings) -> None:
    assert await tiny.aembed_query("hello world") == tiny.embed_query("hello world")
    assert await tiny.aembed_documents(TEXTS[:2]) == tiny.embed_documents(TEXTS[:2])


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    embeddings = LlamaCppEmbeddings(model_path=tmp_path / "nope.gguf")
    with pytest.raises(ModelNotFoundError, match=r"nope\.gguf"):
        embeddings.embed_query("hello")


@pytest.mark.parametrize("field", ["n_ctx", "batch_size", "n_threads"])
def test_rejects_non_positive_sizes(field: str) -> None:
    with pytest.raises(ValidationError):
        LlamaCppEmbeddings.model_validate({field: 0})


def test_zero_or_non_finite_vectors_are_errors() -> None:
    assert _l2_normalize([[3.0, 4.0]], 0) == [[0.6, 0.8]]
    with pytest.raises(EmbeddingError, match="text 5"):
        _l2_normalize([[1.0, 0.0], [0.0, 0.0]], 4)
    with pytest.raises(EmbeddingError, match="text 0"):
        _l2_normalize([[float("nan"), 1.0]], 0)
    with pytest.raises(EmbeddingError, match="one pooled vector per text"):
        _l2_normalize([[[1.0]]], 0)

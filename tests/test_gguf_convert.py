"""The MiniLM -> GGUF converter on a tiny synthetic BERT (no real model, no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from tiny_bert import (
    CONFIG,
    FFN,
    HEADS,
    HIDDEN,
    LAYERS,
    POSITIONS,
    SPECIAL,
    VOCAB,
    state_dict,
    write_model_dir,
)

from langchain_erase import gguf_convert
from langchain_erase.errors import ModelConversionError
from langchain_erase.models.gguf_convert import (
    MINILM_GGUF_NAME,
    convert_bert_to_gguf,
    ensure_minilm_gguf,
    gguf_tensor_name,
    read_wordpiece_vocab,
    sha256_file,
)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_model_dir(tmp_path / "tiny-bert")


@pytest.fixture
def converted(model_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "tiny.gguf"
    convert_bert_to_gguf(model_dir, out)
    return out


def _field(reader: gguf.GGUFReader, key: str) -> Any:
    return reader.fields[key].contents()


@pytest.mark.parametrize(
    ("hf_name", "expected"),
    [
        ("embeddings.word_embeddings.weight", "token_embd.weight"),
        ("bert.embeddings.LayerNorm.gamma", "token_embd_norm.weight"),
        ("embeddings.LayerNorm.beta", "token_embd_norm.bias"),
        ("embeddings.token_type_embeddings.weight", "token_types.weight"),
        ("embeddings.position_embeddings.weight", "position_embd.weight"),
        ("encoder.layer.3.attention.self.query.bias", "blk.3.attn_q.bias"),
        ("encoder.layer.0.attention.output.dense.weight", "blk.0.attn_output.weight"),
        ("encoder.layer.11.attention.output.LayerNorm.weight", "blk.11.attn_output_norm.weight"),
        ("encoder.layer.1.intermediate.dense.weight", "blk.1.ffn_up.weight"),
        ("encoder.layer.1.output.dense.bias", "blk.1.ffn_down.bias"),
        ("encoder.layer.2.output.LayerNorm.bias", "blk.2.layer_output_norm.bias"),
        ("embeddings.position_ids", None),
        ("pooler.dense.weight", None),
        ("cls.predictions.bias", None),
    ],
)
def test_tensor_names_follow_llama_cpp(hf_name: str, expected: str | None) -> None:
    assert gguf_tensor_name(hf_name) == expected


@pytest.mark.parametrize("bad", ["encoder.layer.0.attention.self.rotary.weight", "lm_head.weight"])
def test_unknown_tensor_is_an_error_not_a_silent_drop(bad: str) -> None:
    with pytest.raises(ModelConversionError, match="unexpected BERT tensor"):
        gguf_tensor_name(bad)


def test_wordpiece_vocab_uses_phantom_space_and_strips_continuations() -> None:
    vocab = read_wordpiece_vocab(VOCAB, SPECIAL, lowercase=True, strip_accents=True)
    mapped = dict(zip(VOCAB, vocab.tokens, strict=True))
    assert mapped["hello"] == "\u2581hello"
    assert mapped["##aff"] == "aff"
    assert mapped["#"] == "\u2581#"
    assert mapped["###"] == "#"
    assert mapped["[CLS]"] == "[CLS]"
    assert mapped["[unused0]"] == "\u2581[unused0]"  # not special: an ordinary word piece
    control = {VOCAB[i] for i, t in enumerate(vocab.token_types) if t == gguf.TokenType.CONTROL}
    assert control == set(SPECIAL.values())
    assert vocab.special_ids == {"unk": 2, "sep": 4, "pad": 0, "cls": 3, "mask": 5}


def test_wordpiece_vocab_rejects_missing_special_token() -> None:
    with pytest.raises(ModelConversionError, match="not in the vocabulary"):
        read_wordpiece_vocab(VOCAB[1:], SPECIAL, lowercase=True, strip_accents=True)
    with pytest.raises(ModelConversionError, match="lacks special tokens"):
        read_wordpiece_vocab(VOCAB, {"unk": "[UNK]"}, lowercase=True, strip_accents=True)


def test_wordpiece_vocab_rejects_collisions() -> None:
    with pytest.raises(ModelConversionError, match="collides"):
        read_wordpiece_vocab([*VOCAB, "##\u2581hello"], SPECIAL, lowercase=True, strip_accents=True)


def test_round_trip_metadata(converted: Path) -> None:
    reader = gguf.GGUFReader(converted)
    assert _field(reader, "general.architecture") == "bert"
    assert _field(reader, "bert.context_length") == POSITIONS
    assert _field(reader, "bert.embedding_length") == HIDDEN
    assert _field(reader, "bert.feed_forward_length") == FFN
    assert _field(reader, "bert.block_count") == LAYERS
    assert _field(reader, "bert.attention.head_count") == HEADS
    assert _field(reader, "bert.attention.causal") is False
    assert _field(reader, "bert.pooling_type") == gguf.PoolingType.MEAN
    assert _field(reader, "tokenizer.ggml.model") == "bert"
    assert _field(reader, "tokenizer.ggml.token_type_count") == 2
    tokens = _field(reader, "tokenizer.ggml.tokens")
    assert tokens[VOCAB.index("##able")] == "able"
    assert tokens[VOCAB.index("world")] == "\u2581world"
    types = _field(reader, "tokenizer.ggml.token_type")
    assert types[VOCAB.index("[SEP]")] == gguf.TokenType.CONTROL
    assert types[VOCAB.index("world")] == gguf.TokenType.NORMAL
    assert _field(reader, "tokenizer.ggml.bos_token_id") == VOCAB.index("[CLS]")
    assert _field(reader, "tokenizer.ggml.seperator_token_id") == VOCAB.index("[SEP]")
    assert _field(reader, "tokenizer.ggml.padding_token_id") == VOCAB.index("[PAD]")
    assert _field(reader, "tokenizer.ggml.unknown_token_id") == VOCAB.index("[UNK]")
    assert _field(reader, "tokenizer.ggml.mask_token_id") == VOCAB.index("[MASK]")
    assert _field(reader, "tokenizer.ggml.add_bos_token") is True
    assert _field(reader, "tokenizer.ggml.add_sep_token") is True
    assert _field(reader, "tokenizer.ggml.normalizer.lowercase") is True
    assert _field(reader, "tokenizer.ggml.normalizer.strip_accents") is True


def test_round_trip_tensors_are_exact_f32(converted: Path) -> None:
    state = state_dict()
    tensors = {t.name: t for t in gguf.GGUFReader(converted).tensors}
    by_gguf_name = {gguf_tensor_name(name): array for name, array in state.items()}
    by_gguf_name.pop(None)
    assert set(tensors) == set(by_gguf_name)
    for gguf_name, tensor in tensors.items():
        assert tensor.tensor_type == gguf.GGMLQuantizationType.F32
        np.testing.assert_array_equal(np.asarray(tensor.data), by_gguf_name[gguf_name])


def test_conversion_is_deterministic(model_dir: Path, converted: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.gguf"
    convert_bert_to_gguf(model_dir, again)
    assert again.read_bytes() == converted.read_bytes()


def test_vocab_size_mismatch_is_rejected(model_dir: Path, tmp_path: Path) -> None:
    (model_dir / "config.json").write_text(json.dumps({**CONFIG, "vocab_size": 99}))
    with pytest.raises(ModelConversionError, match="vocab_size"):
        convert_bert_to_gguf(model_dir, tmp_path / "bad.gguf")


def test_ensure_builds_once_and_rebuilds_corrupt_file(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gguf_convert, "_minilm_source_dir", lambda: model_dir)
    cache = tmp_path / "cache"
    path = ensure_minilm_gguf(cache)
    assert path == cache / MINILM_GGUF_NAME
    sidecar = path.with_name(path.name + ".sha256")
    assert sidecar.read_text().split() == [sha256_file(path), MINILM_GGUF_NAME]
    good = path.read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == [path.name, sidecar.name]  # no temp left

    mtime = path.stat().st_mtime_ns
    assert ensure_minilm_gguf(cache) == path
    assert path.stat().st_mtime_ns == mtime  # valid file: not rebuilt

    corrupt = bytearray(good)
    corrupt[-1] ^= 0xFF
    path.write_bytes(bytes(corrupt))
    assert ensure_minilm_gguf(cache).read_bytes() == good

    sidecar.unlink()
    assert ensure_minilm_gguf(cache).read_bytes() == good
    assert sidecar.exists()


def test_llama_cpp_tokenizes_the_converted_vocab_like_wordpiece(converted: Path) -> None:
    import llama_cpp

    llm = llama_cpp.Llama(
        str(converted),
        embedding=True,
        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
        n_ctx=POSITIONS,
        n_batch=POSITIONS,
        n_ubatch=POSITIONS,
        verbose=False,
    )
    ids = llm.tokenize(b"Hello, unaffable World! zzz #")
    words = ["[CLS]", "hello", ",", "un", "##aff", "##able", "world", "!", "[UNK]", "#", "[SEP]"]
    assert ids == [VOCAB.index(w) for w in words]
    vector = llm.embed("hello world")
    assert len(vector) == HIDDEN

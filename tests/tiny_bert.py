"""A tiny synthetic BERT in sentence-transformers layout, shared by unit tests.

Small enough to build in milliseconds, real enough for llama.cpp to load, so the converter and
the embeddings wrapper are tested end to end without downloading or shipping a model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import save_file

__all__ = ["CONFIG", "FFN", "HEADS", "HIDDEN", "LAYERS", "POSITIONS", "SPECIAL", "VOCAB",
           "state_dict", "write_model_dir"]  # fmt: skip

VOCAB = [
    "[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "hello", "world", "un", "##aff", "##able", ",", "!", "#", "###",
]  # fmt: skip
SPECIAL = {"unk": "[UNK]", "sep": "[SEP]", "pad": "[PAD]", "cls": "[CLS]", "mask": "[MASK]"}
HIDDEN, FFN, LAYERS, HEADS, POSITIONS = 8, 16, 2, 2, 32
CONFIG: dict[str, Any] = {
    "_name_or_path": "tests/tiny-bert",
    "architectures": ["BertModel"],
    "hidden_size": HIDDEN,
    "intermediate_size": FFN,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS,
    "max_position_embeddings": POSITIONS,
    "layer_norm_eps": 1e-12,
    "type_vocab_size": 2,
    "vocab_size": len(VOCAB),
}


def state_dict() -> dict[str, npt.NDArray[Any]]:
    rng = np.random.default_rng(0)

    def rand(*shape: int) -> npt.NDArray[np.float32]:
        return rng.standard_normal(shape).astype(np.float32) * 0.1

    state: dict[str, npt.NDArray[Any]] = {
        "embeddings.word_embeddings.weight": rand(len(VOCAB), HIDDEN),
        "embeddings.position_embeddings.weight": rand(POSITIONS, HIDDEN),
        "embeddings.token_type_embeddings.weight": rand(2, HIDDEN),
        "embeddings.LayerNorm.weight": np.ones(HIDDEN, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(HIDDEN, np.float32),
        "embeddings.position_ids": np.arange(POSITIONS, dtype=np.int64)[None, :],
        "pooler.dense.weight": rand(HIDDEN, HIDDEN),
        "pooler.dense.bias": rand(HIDDEN),
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):  # fmt: skip
            state[p + part + ".weight"] = rand(HIDDEN, HIDDEN)
            state[p + part + ".bias"] = rand(HIDDEN)
        state[p + "intermediate.dense.weight"] = rand(FFN, HIDDEN)
        state[p + "intermediate.dense.bias"] = rand(FFN)
        state[p + "output.dense.weight"] = rand(HIDDEN, FFN)
        state[p + "output.dense.bias"] = rand(HIDDEN)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            state[p + norm + ".weight"] = np.ones(HIDDEN, np.float32)
            state[p + norm + ".bias"] = np.zeros(HIDDEN, np.float32)
    return state


def write_model_dir(root: Path) -> Path:
    """A sentence-transformers-shaped directory like the MiniLM package's."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(CONFIG))
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    tok_config = {f"{kind}_token": text for kind, text in SPECIAL.items()}
    (root / "tokenizer_config.json").write_text(
        json.dumps({**tok_config, "do_lower_case": True, "strip_accents": None})
    )
    modules = [
        {"path": "", "type": "sentence_transformers.models.Transformer"},
        {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (root / "modules.json").write_text(json.dumps(modules))
    (root / "1_Pooling").mkdir(exist_ok=True)
    (root / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True})
    )
    save_file(state_dict(), str(root / "model.safetensors"))
    return root

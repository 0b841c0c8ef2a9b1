"""The public surface: `__all__` lists exactly what the package means to export."""

from __future__ import annotations

import importlib
from pathlib import Path

import langchain_erase

EXPECTED = {
    "DeletionReceipt",
    "DuplicateExampleError",
    "ERASEError",
    "ERASEExampleSelector",
    "ERASERetriever",
    "EmbeddingError",
    "EmbeddingModelMismatchError",
    "ForkedProcessError",
    "InputTooLongError",
    "InvalidExampleError",
    "InvalidParameterError",
    "LlamaCppEmbeddings",
    "ModelConversionError",
    "ModelNotFoundError",
    "SelectedExample",
    "StaleSnapshotError",
    "StateFileError",
    "StoreLockedError",
    "StoreUnavailableError",
    "UnknownExampleError",
    "__version__",
    "default_example_id",
    "local_chat_model",
    "local_llm",
}


def test_all_is_exact_and_importable() -> None:
    assert set(langchain_erase.__all__) == EXPECTED
    for name in langchain_erase.__all__:
        assert hasattr(langchain_erase, name)


def test_core_has_no_langchain_import() -> None:
    import sys

    for name in list(sys.modules):
        if name.startswith("langchain_erase.core"):
            del sys.modules[name]
    core = importlib.import_module("langchain_erase.core")
    for module in (
        "hashing",
        "projection",
        "qkmeans",
        "buckets",
        "neighbors",
        "index",
        "canonical",
    ):
        source = importlib.import_module(f"langchain_erase.core.{module}").__file__
        assert source is not None
        text = Path(source).read_text()
        assert "import langchain_core" not in text and "from langchain_core" not in text
    assert core.__all__


def test_storage_imports_nothing_above_it() -> None:
    """Backends take and return rows: they import only `errors` and `storage` itself."""
    storage = Path(langchain_erase.__file__).parent / "storage"
    for source in storage.glob("*.py"):
        for line in source.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("from", "import"):
                module = words[1]
                if module.startswith("langchain"):
                    assert module == "langchain_erase.errors" or module.startswith(
                        "langchain_erase.storage"
                    ), (source.name, module)

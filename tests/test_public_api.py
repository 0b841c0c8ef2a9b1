"""The public surface: `__all__` lists exactly what the package means to export."""

from __future__ import annotations

import langchain_erase

EXPECTED = {
    "DeletionReceipt",
    "DuplicateExampleError",
    "ERASEError",
    "ERASEExampleSelector",
    "ERASERetriever",
    "ERASEVectorStore",
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

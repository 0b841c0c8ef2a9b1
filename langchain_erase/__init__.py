"""langchain-erase: few-shot example selection whose data can be exactly unlearned.

ERASE (Muresanu, Thudi, Zhang, Papernot, arXiv 2402.00751) picks in-context demonstrations
with quantized k-means, so deleting an example is almost always just dropping it from its
bucket, and the result is bit-for-bit the selector fitted without it.
"""

from importlib.metadata import PackageNotFoundError, version

from langchain_erase import _moved
from langchain_erase.embeddings import LlamaCppEmbeddings
from langchain_erase.errors import (
    DuplicateExampleError,
    EmbeddingError,
    EmbeddingModelMismatchError,
    ERASEError,
    ForkedProcessError,
    InputTooLongError,
    InvalidExampleError,
    InvalidParameterError,
    ModelConversionError,
    ModelNotFoundError,
    StaleSnapshotError,
    StateFileError,
    StoreLockedError,
    StoreUnavailableError,
    UnknownExampleError,
)
from langchain_erase.example_selectors import ERASEExampleSelector, default_example_id
from langchain_erase.llms import local_chat_model, local_llm
from langchain_erase.receipts import DeletionReceipt
from langchain_erase.retrievers import ERASERetriever
from langchain_erase.selections import SelectedExample
from langchain_erase.vectorstores import ERASEVectorStore

_moved.install()

try:
    __version__ = version("langchain-erase")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
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
]

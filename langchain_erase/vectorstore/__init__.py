"""Internals of `langchain_erase.vectorstores.ERASEVectorStore`.

`params` (the frozen parameters), `documents` (documents as stored rows, the metadata
filter), `retriever` (the checked `VectorStoreRetriever`) and `stores` (opening a SQLite or
PostgreSQL document set as a write session).
"""

from langchain_erase.vectorstore.params import VectorStoreParams
from langchain_erase.vectorstore.retriever import ERASEVectorStoreRetriever

__all__ = ["ERASEVectorStoreRetriever", "VectorStoreParams"]

"""RAG that can forget, offline: the project's docs in an `ERASEVectorStore`, local models.

Steps (see docs/rag.md):
1. Split Markdown files into chunks (one source per file, in ``metadata["source"]``).
2. Index them with LangChain's indexing API into an `ERASEVectorStore`, embedded by the local
   MiniLM (`LlamaCppEmbeddings`).
3. Answer a question with ``retriever | format_docs | prompt | local_llm``.
4. Forget one source through `index(..., cleanup="full")` without it; the store's deletion
   listener collects a receipt per removed chunk.
5. Check: no chunk of the forgotten source reaches any retrieval (its own chunks as queries),
   the store equals a fresh build of the surviving chunks' rows (state digest; built from the
   stored vectors, since llama.cpp's embeddings differ in the last bits with the batch a
   text is embedded in), and the last receipt's ``digest_after`` is the store's digest.

Usage:
    python examples/rag/rag.py docs/usage.md docs/deploy.md docs/models.md --forget docs/deploy.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, NamedTuple

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.indexing import InMemoryRecordManager, index
from langchain_core.language_models import BaseLLM
from langchain_core.prompts import PromptTemplate

from langchain_erase import ERASEVectorStore
from langchain_erase.receipts import DeletionReceipt

PROMPT = PromptTemplate.from_template(
    "Answer the question from the context.\n\nContext:\n{context}\n\nQuestion: {question}\nAnswer:"
)
MAX_CHARS = 600


def split_markdown(path: Path) -> list[Document]:
    """Paragraph chunks of at most about MAX_CHARS characters, tagged with their source."""
    pieces = [
        text[start : start + MAX_CHARS]
        for paragraph in path.read_text().split("\n\n")
        if (text := paragraph.strip())
        for start in range(0, len(text), MAX_CHARS)
    ]
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + len(piece) < MAX_CHARS:
            chunks[-1] += "\n\n" + piece
        else:
            chunks.append(piece)
    return [
        Document(page_content=c, metadata={"source": str(path), "chunk": i})
        for i, c in enumerate(chunks)
    ]


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(f"[{d.metadata['source']}] {d.page_content}" for d in docs)


class Report(NamedTuple):
    """What one run showed."""

    answer: str
    sources_before: list[str]
    removed_chunks: int
    forgotten_hits: int
    equals_fresh_build: bool
    receipt_digest_is_current: bool
    receipts: list[DeletionReceipt]


def _index(docs: list[Document], manager: InMemoryRecordManager, store: Any) -> dict[str, Any]:
    return dict(
        index(docs, manager, store, cleanup="full", source_id_key="source", key_encoder="sha256")
    )


def run(
    files: list[Path], forget: Path, question: str, embeddings: Embeddings, llm: BaseLLM
) -> Report:
    """Index `files`, answer `question`, forget `forget`, and check that it is gone."""
    corpus = {path: split_markdown(path) for path in files}
    store = ERASEVectorStore(embeddings)
    receipts: list[DeletionReceipt] = []
    store.add_deletion_listener(receipts.append)
    manager = InMemoryRecordManager("rag/docs")
    manager.create_schema()
    _index([d for docs in corpus.values() for d in docs], manager, store)

    retriever = store.as_retriever(search_kwargs={"k": 3})
    chain = {"context": retriever | format_docs, "question": lambda q: q} | PROMPT | llm
    sources_before = [d.metadata["source"] for d in retriever.invoke(question)]
    answer = str(chain.invoke(question)).strip()

    survivors = [d for path, docs in corpus.items() if path != forget for d in docs]
    forgotten = str(forget)
    stored, vectors = store.rows()  # the rows as indexed (a re-embedding may differ in bits)
    keep = [n for n, d in enumerate(stored) if d.metadata["source"] != forgotten]
    removed = _index(survivors, manager, store)["num_deleted"]

    hits = sum(
        d.metadata["source"] == forgotten
        for chunk in corpus[forget]
        for d in store.similarity_search(chunk.page_content, k=5)
    )
    fresh = ERASEVectorStore(embeddings)  # a fresh build of the surviving rows
    fresh.add_embeddings(
        [stored[n].page_content for n in keep],
        vectors[keep],
        [stored[n].metadata for n in keep],
        [str(stored[n].id) for n in keep],
    )
    return Report(
        answer=answer,
        sources_before=sources_before,
        removed_chunks=removed,
        forgotten_hits=hits,
        equals_fresh_build=store.state_digest() == fresh.state_digest() and store.verify(),
        receipt_digest_is_current=bool(receipts)
        and receipts[-1].digest_after == store.state_digest(),
        receipts=receipts,
    )


def main() -> None:
    from langchain_erase import LlamaCppEmbeddings, local_llm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--forget", type=Path, required=True)
    parser.add_argument("--question", default="How do I deploy the service?")
    args = parser.parse_args()
    report = run(
        args.files,
        args.forget,
        args.question,
        LlamaCppEmbeddings(n_threads=2),
        local_llm("gemma-3-270m", n_ctx=2048, n_threads=2, max_tokens=48),
    )
    print("answer:", report.answer)
    print("sources used before forgetting:", report.sources_before)
    print(f"forgot {args.forget}: {report.removed_chunks} chunks, {len(report.receipts)} receipts")
    print("chunks of it in any retrieval since:", report.forgotten_hits)
    print("store equals a fresh build of the survivors:", report.equals_fresh_build)
    print(
        "last receipt:", json.dumps(report.receipts[-1].model_dump() if report.receipts else None)
    )


if __name__ == "__main__":
    main()

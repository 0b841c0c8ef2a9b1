"""The retriever RAG recipe of docs/usage.md on the real local models (MiniLM + Gemma)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import RunnableParallel, RunnablePassthrough

from langchain_erase import ERASEExampleSelector, LlamaCppEmbeddings, local_llm
from langchain_erase.evaluation.tasks import load_task

pytestmark = pytest.mark.integration

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
PROMPT = PromptTemplate.from_template("{demos}\n\nReview: {question}\nSentiment:")


def as_demonstrations(docs: list[Document]) -> str:
    return "\n\n".join(f"Review: {d.page_content}\nSentiment: {d.metadata['output']}" for d in docs)


@pytest.fixture(scope="module")
def embeddings() -> LlamaCppEmbeddings:
    return LlamaCppEmbeddings(n_threads=2)


@pytest.fixture(scope="module")
def pool() -> list[dict[str, str]]:
    task = load_task("sentiment", data_dir=DATASETS)
    held_out = set(task.test_ids or ())
    return [{"input": e.input, "output": e.output} for e in task.examples if e.id not in held_out][
        :200
    ]


@pytest.mark.parametrize("mode", ["knn", "mmr"])
def test_rag_chain_answers_from_retrieved_demonstrations_and_forgets(
    mode: str, pool: list[dict[str, str]], embeddings: LlamaCppEmbeddings
) -> None:
    selector = ERASEExampleSelector.from_examples(
        pool, embeddings, k=4, input_keys=["input"], selection=mode
    )
    retriever = selector.as_retriever()
    llm = local_llm("gemma-3-270m", n_ctx=1024, n_threads=2, max_tokens=4, stop=["\n"])
    chain = (
        RunnableParallel(demos=retriever | as_demonstrations, question=RunnablePassthrough())
        | PROMPT
        | llm
    )
    question = "A wonderful, moving film with brilliant acting."
    docs = retriever.invoke(question)
    assert len(docs) == 4 and all(d.metadata["output"] in {"positive", "negative"} for d in docs)
    answers: list[Any] = []
    answers.append(chain.invoke(question).strip().lower())
    assert answers[0] == "positive", answers
    # Semantic retrieval on a real model: the top demonstration is about the same thing.
    assert "positive" in [d.metadata["output"] for d in docs]
    # Forget the demonstrations it used; they never come back, and the state is a fresh fit's.
    selector.delete_examples([d.id for d in docs if d.id is not None])
    again = retriever.invoke(question)
    assert not {d.id for d in again} & {d.id for d in docs}
    assert selector.verify()
    answers.append(chain.invoke(question).strip().lower())
    assert answers[1] in {"positive", "negative"}

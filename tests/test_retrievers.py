"""ERASERetriever: documents with ids, LangChain's retriever standard suite, and tracing."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_core.tracers.context import collect_runs
from langchain_tests.integration_tests import RetrieversIntegrationTests

from langchain_erase import ERASEExampleSelector, InvalidParameterError
from langchain_erase.retrievers import ERASERetriever

EMB = DeterministicFakeEmbedding(size=16)
EXAMPLES = [{"input": f"word{i}", "output": f"WORD{i}", "n": i} for i in range(40)]


def selector(**kw: Any) -> ERASEExampleSelector:
    return ERASEExampleSelector.from_examples(EXAMPLES, EMB, k=4, input_keys=["input"], **kw)


class TestERASERetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return ERASERetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"selector": selector(), "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "word7"


class TestERASERetrieverKnnStandard(TestERASERetrieverStandard):
    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"selector": selector(selection="knn"), "k": 5}


def test_knn_and_mmr_retrievers_return_k_documents_over_all_examples() -> None:
    for mode in ("knn", "mmr"):
        retriever = selector(selection=mode).as_retriever()
        assert len(retriever.invoke("word3")) == 4  # the selector's k
        docs = retriever.invoke("word3", k=9)  # more than k: not limited by buckets
        assert len(docs) == 9 and all(d.metadata["erase_bucket"] is None for d in docs)


@pytest.mark.parametrize("mode", ["random", "centroid", "similar", "knn", "mmr"])
def test_documents_carry_ids_embedded_text_other_fields_bucket_and_digest(mode: str) -> None:
    sel = selector(selection=mode)
    docs = sel.as_retriever().invoke("hello")
    records = sel.select_with_ids({"input": "hello"})
    assert [d.id for d in docs] == [r.id for r in records] and len(docs) == 4
    for doc, record in zip(docs, records, strict=True):
        example = sel.get_example(record.id)
        assert doc.page_content == example["input"] == record.text
        assert doc.metadata == {
            "output": example["output"],
            "n": example["n"],
            "erase_bucket": record.bucket,
            "erase_state_digest": sel.state_digest(),
        }
    assert [r.example for r in records] == sel.select_examples({"input": "hello"})


async def test_async_matches_sync_and_deleted_examples_never_come_back() -> None:
    sel = selector(selection="similar")
    retriever = sel.as_retriever(k=3)
    docs = retriever.invoke("word3")
    assert await retriever.ainvoke("word3") == docs and len(docs) == 3
    assert docs[0].id is not None
    before = docs[0].metadata["erase_state_digest"]
    sel.delete_example(docs[0].id)
    after = await retriever.ainvoke("word3")
    assert docs[0].id not in {d.id for d in after}
    assert {d.metadata["erase_state_digest"] for d in after} == {sel.state_digest()} != {before}


def test_k_per_call_and_typed_errors() -> None:
    sel = selector()
    retriever = sel.as_retriever(k=3)
    assert [d.id for d in retriever.invoke("x", k=1)] == [d.id for d in retriever.invoke("x")][:1]
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InvalidParameterError):
            sel.as_retriever(k=bad)
        with pytest.raises(InvalidParameterError):
            retriever.invoke("x", k=bad)
    two_keys = ERASEExampleSelector.from_examples(EXAMPLES, EMB, k=2, input_keys=["input", "n"])
    with pytest.raises(InvalidParameterError, match="one input key"):
        two_keys.as_retriever()


def test_a_selector_without_input_keys_embeds_the_query_as_it_is() -> None:
    sel = ERASEExampleSelector.from_examples(
        [{"text": f"t{i}"} for i in range(10)], EMB, k=2, selection="similar"
    )
    docs = sel.as_retriever().invoke("t3")
    assert "t3" in {d.page_content for d in docs}
    assert all(set(d.metadata) == {"erase_bucket", "erase_state_digest"} for d in docs)


class _Collector(BaseCallbackHandler):
    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.ended: list[list[Document]] = []

    def on_retriever_start(  # type: ignore[override]
        self, serialized: dict[str, Any], query: str, *, metadata: dict[str, Any], **kw: Any
    ) -> None:
        self.started.append((query, metadata))

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kw: Any) -> None:  # type: ignore[override]
        self.ended.append(list(documents))


def test_a_callback_handler_sees_the_retriever_run_with_ids_and_digest() -> None:
    sel = selector(selection="similar")
    handler = _Collector()
    chain = RunnableParallel(demos=sel.as_retriever(), question=RunnableLambda(lambda q: q))
    out = chain.invoke("word5", config={"callbacks": [handler]})
    assert handler.started == [("word5", handler.started[0][1])]
    assert handler.started[0][1]["ls_vector_store_provider"] == "ERASE"
    assert handler.started[0][1]["erase_selection"] == "similar"
    [docs] = handler.ended
    assert [d.id for d in docs] == [r.id for r in sel.select_with_ids({"input": "word5"})]
    assert docs == out["demos"]
    assert {d.metadata["erase_state_digest"] for d in docs} == {sel.state_digest()}


def test_collected_runs_show_the_retriever_run() -> None:
    sel = selector()
    retriever = sel.as_retriever()
    with collect_runs() as cb:
        docs = retriever.invoke("word2")
    [run] = cb.traced_runs
    assert run.run_type == "retriever" and run.outputs is not None
    assert [d.id for d in run.outputs["documents"]] == [d.id for d in docs]


async def test_astream_events_include_retriever_start_and_end() -> None:
    sel = selector()
    events = [e async for e in sel.as_retriever().astream_events("word9", version="v2")]
    kinds = [e["event"] for e in events]
    assert kinds == ["on_retriever_start", "on_retriever_end"]
    documents = events[-1]["data"]["output"]
    assert [d.id for d in documents] == [r.id for r in sel.select_with_ids({"input": "word9"})]
    assert all(d.metadata["erase_state_digest"] == sel.state_digest() for d in documents)


class TestERASERetrieverSimilaritySearchTypeStandard(TestERASERetrieverStandard):
    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"selector": selector(selection="knn"), "search_type": "similarity", "k": 5}


@pytest.mark.parametrize("mode", ["similar", "knn", "mmr", "random"])
def test_search_kwargs_k_is_honoured_like_a_vector_store_retriever(mode: str) -> None:
    sel = selector(selection=mode)
    docs = sel.as_retriever(search_kwargs={"k": 2}).invoke("word3")
    assert [d.id for d in docs] == [r.id for r in sel.select_with_ids({"input": "word3"}, k=2)]
    assert len(docs) == 2
    same = sel.as_retriever(k=2, search_kwargs={"k": 2})
    assert [d.id for d in same.invoke("word3")] == [d.id for d in docs]
    with pytest.raises(InvalidParameterError, match="disagree"):
        sel.as_retriever(k=3, search_kwargs={"k": 2})
    with pytest.raises(InvalidParameterError, match="positive integer"):
        sel.as_retriever(search_kwargs={"k": 0})


def test_a_search_type_is_honoured_only_by_the_selection_that_performs_it() -> None:
    knn, mmr = selector(selection="knn"), selector(selection="mmr")
    for sel, search_type in ((knn, "similarity"), (mmr, "mmr")):
        docs = sel.as_retriever(search_type=search_type, search_kwargs={"k": 3}).invoke("word4")
        assert [d.id for d in docs] == [r.id for r in sel.select_with_ids({"input": "word4"}, k=3)]
    for sel in (knn, selector(selection="similar"), selector()):
        with pytest.raises(InvalidParameterError, match=r"selection='mmr'.*ERASEVectorStore"):
            sel.as_retriever(search_type="mmr")
    with pytest.raises(InvalidParameterError, match="selection='knn'"):
        selector(selection="similar").as_retriever(search_type="similarity")
    with pytest.raises(InvalidParameterError, match=r"does not score.*ERASEVectorStore"):
        knn.as_retriever(search_type="similarity_score_threshold")
    for unknown in ("nearest", ["similarity"]):
        with pytest.raises(InvalidParameterError, match="search_type must be one of"):
            knn.as_retriever(search_type=unknown)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("filter", {"output": "WORD3"}, "no metadata filter.*ERASEVectorStore"),
        ("fetch_k", 10, "fixed at construction.*fetch_k"),
        ("lambda_mult", 0.3, "fixed at construction.*lambda_mult"),
        ("score_threshold", 0.5, "does not score"),
        ("kk", 2, "takes only 'k'"),
    ],
)
def test_search_kwargs_a_selector_cannot_honour_are_refused(
    key: str, value: object, message: str
) -> None:
    sel = selector(selection="mmr")
    search_kwargs: dict[str, Any] = {key: value}
    with pytest.raises(InvalidParameterError, match=f"search_kwargs\\['{key}'\\].*{message}"):
        sel.as_retriever(search_kwargs=search_kwargs)
    with pytest.raises(InvalidParameterError, match=message):  # per call, as invoke kwargs
        sel.as_retriever().invoke("word3", **search_kwargs)


@pytest.mark.parametrize("query", [{"input": "word3"}, 3, None, ["word3"]])
async def test_a_query_that_is_not_a_string_is_refused(query: object) -> None:
    retriever = selector(selection="similar").as_retriever()
    with pytest.raises(InvalidParameterError, match="a retriever query is a string"):
        retriever.invoke(query)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="a retriever query is a string"):
        await retriever.ainvoke(query)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["random", "centroid", "fixed", "similar", "knn", "mmr"])
def test_query_independent_modes_warn_that_documents_ignore_the_query(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    sel = selector(selection=mode)
    with caplog.at_level(logging.WARNING, logger="langchain_erase"):
        retriever = sel.as_retriever()
        retriever.invoke("word1")
        retriever.invoke("word2")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if mode in ("random", "centroid", "fixed"):  # once, when the retriever is built
        assert len(warnings) == 1 and "do not depend on what the query means" in warnings[0]
    else:
        assert warnings == []

"""Reference deployment: a FastAPI service over one shared example set.

Run (SQLite on one host, or PostgreSQL for many hosts)::

    export LANGCHAIN_ERASE_LOG_KEY=change-me          # the same on every host
    export ERASE_STORE=/var/lib/app/examples.db       # or postgresql://user:pw@db/app
    uvicorn --app-dir examples/service app:app --workers 4

Each worker opens its own selector in the lifespan handler (after uvicorn has started the
worker process: connections never cross a fork) and follows the store. Endpoints:

- ``POST /select`` ``{"input": "..."}``: the selected examples;
- ``POST /examples`` ``{"examples": [{...}], "ids": [...]?}``: add, returns the ids;
- ``DELETE /examples/{id}``: delete, returns the receipt (log position, erasure status);
- ``GET /health``: worker pid, state digest, log position, size, consistency repairs.

The embedding model is `DeterministicFakeEmbedding` (``ERASE_DIM``, default 64) so that the
example runs anywhere; replace `make_embeddings` with your model.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI, HTTPException, Request
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from pydantic import BaseModel

from langchain_erase import (
    DuplicateExampleError,
    ERASEExampleSelector,
    InvalidExampleError,
    InvalidParameterError,
    StoreUnavailableError,
    UnknownExampleError,
)

T = TypeVar("T")


def make_embeddings() -> Embeddings:
    """The embedding model every worker uses (must be the same on every host)."""
    return DeterministicFakeEmbedding(size=int(os.environ.get("ERASE_DIM", "64")))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.selector = ERASEExampleSelector.open(
        os.environ["ERASE_STORE"],
        make_embeddings(),
        name=os.environ.get("ERASE_SET", "default"),
        consistency=os.environ.get("ERASE_CONSISTENCY", "strong"),  # type: ignore[arg-type]
        k=int(os.environ.get("ERASE_K", "4")),
        seed=0,
    )
    yield
    app.state.selector.close()


app = FastAPI(title="langchain-erase example service", lifespan=lifespan)


class SelectRequest(BaseModel):
    input: str


class AddRequest(BaseModel):
    examples: list[dict[str, str]]
    ids: list[str] | None = None


def _call(fn: Callable[[], T]) -> T:
    """Run a selector call, mapping typed errors to HTTP statuses (never a 500 for them)."""
    try:
        return fn()
    except UnknownExampleError as err:
        raise HTTPException(404, str(err)) from None
    except DuplicateExampleError as err:
        raise HTTPException(409, str(err)) from None
    except (InvalidExampleError, InvalidParameterError) as err:
        raise HTTPException(422, str(err)) from None
    except StoreUnavailableError as err:
        raise HTTPException(503, str(err)) from None


def _selector(request: Request) -> ERASEExampleSelector:
    selector: ERASEExampleSelector = request.app.state.selector
    return selector


@app.post("/select")
def select(body: SelectRequest, request: Request) -> dict[str, Any]:
    selector = _selector(request)
    examples = _call(lambda: selector.select_examples({"input": body.input}))
    return {"examples": examples, "position": selector.log_position, "pid": os.getpid()}


@app.post("/examples")
def add(body: AddRequest, request: Request) -> dict[str, Any]:
    selector = _selector(request)
    ids = _call(lambda: selector.add_examples(body.examples, ids=body.ids))
    return {"ids": ids, "position": selector.log_position, "pid": os.getpid()}


@app.delete("/examples/{example_id}")
def delete(example_id: str, request: Request) -> dict[str, Any]:
    receipt = _call(lambda: _selector(request).delete_example(example_id))
    return {
        "position": receipt.position,
        "digest_after": receipt.digest_after,
        "erasure_complete": receipt.erasure_complete,
        "pid": os.getpid(),
    }


@app.get("/health")
def health(request: Request, verify: bool = False) -> dict[str, Any]:
    selector = _selector(request)

    def state() -> dict[str, Any]:
        position = selector.sync()
        return {
            "pid": os.getpid(),
            "digest": selector.state_digest(),
            "position": position,
            "examples": len(selector),
            "consistency_repairs": selector.consistency_repairs,
            "verified": selector.verify() if verify else None,
        }

    return _call(state)

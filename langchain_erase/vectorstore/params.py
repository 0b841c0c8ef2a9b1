"""`VectorStoreParams`: the frozen, validated parameters of an `ERASEVectorStore`.

Declared once; a store writes them into its header (`stored`) and a reopen compares them.
Everything that can change an answer is part of the state's identity (its digest): the seed,
the clustering behind the receipts, and the search settings `exact_below`, `cells` and
`nprobe`. `screen` never changes an answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from langchain_erase.core.index import ERASEIndex
from langchain_erase.core.neighbors import CellSearch
from langchain_erase.core.qkmeans import MAX_K, MAX_P, QKMeansParams
from langchain_erase.errors import InvalidParameterError

__all__ = ["STORE_KIND", "VectorStoreParams"]

#: Marks a store's header as a vector store's (a selector's store is refused, and back).
STORE_KIND = "erase-vectorstore-1"


class VectorStoreParams(BaseModel):
    """Parameters of an `ERASEVectorStore` (immutable; invalid values are refused).

    Search is an exact scan below `exact_below` documents. From `exact_below` on, documents
    are grouped into `cells` keyed-sample cells (`langchain_erase.core.cells`) and a query
    reads the `nprobe` cells nearest to it: **`nprobe` is the recall knob** (measured in
    docs/benchmarks.md). Either way every answer is a function of the stored set, so a
    deletion leaves the store equal to a fresh build without the deleted documents.

    The clustering (`clusters`, `epsilon`, `p`, `gamma`, `max_iter`) is ERASE's quantized
    k-means, kept so that receipts and digests are those of the selector; it does not affect
    similarity search.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    seed: int = Field(default=0, description="Seed of every keyed choice (cell centers, ...).")
    exact_below: int = Field(default=16384, ge=2, description="Exact scan below this size.")
    cells: int = Field(default=4096, ge=1, description="Keyed-sample cells from exact_below on.")
    nprobe: int = Field(default=32, ge=1, description="Cells read per query (recall knob).")
    screen: bool = Field(default=True, description="Read cells through the float16 screen.")
    clusters: int = Field(default=4, ge=1, le=MAX_K, description="Quantized k-means clusters.")
    epsilon: float = Field(default=0.25, gt=0.0, description="Quantized k-means lattice width.")
    p: int = Field(default=8, ge=1, le=MAX_P, description="Projected dimension.")
    gamma: float = Field(default=0.2, ge=0.0, lt=1.0, description="Balance threshold.")
    max_iter: int = Field(default=30, ge=1, description="Lloyd iterations.")

    @model_validator(mode="after")
    def _search_consistent(self) -> VectorStoreParams:
        if not self.nprobe <= self.cells < self.exact_below:
            raise ValueError("need nprobe <= cells < exact_below")
        return self

    @classmethod
    def of(cls, **values: Any) -> VectorStoreParams:
        """Validated parameters, InvalidParameterError otherwise.

        Args:
            **values: Any of the fields.

        Returns:
            The parameters.
        """
        try:
            return cls(**values)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}"
                for e in err.errors()
            )
            raise InvalidParameterError(f"invalid vector store parameters: {problems}") from None

    def stored(self) -> dict[str, Any]:
        """Returns:
        The JSON-able form a store's header keeps (with the store kind)."""
        return {"kind": STORE_KIND, **self.model_dump()}

    def new_index(self) -> ERASEIndex:
        """Returns:
        An empty index with these parameters ("knn" over keyed-sample cells)."""
        return ERASEIndex(
            QKMeansParams(
                k=self.clusters,
                epsilon=self.epsilon,
                seed=self.seed,
                gamma=self.gamma,
                max_iter=self.max_iter,
            ),
            self.p,
            "knn",
            {"kind": STORE_KIND},
            search=CellSearch(self.cells, self.nprobe, self.exact_below, self.screen),
        )

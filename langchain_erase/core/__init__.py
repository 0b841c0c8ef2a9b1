"""The pure algorithm core of ERASE: no LangChain import anywhere below this package.

`projection` turns stored embeddings into exact fixed-point coordinates, `qkmeans` clusters
them with quantized k-means whose deletion and insertion checks are exact (seeding races
decided exactly by `race`), and `buckets` holds the per-cluster indexes that pick one
demonstration per cluster (`cells`: the sublinear `similar` search; `threads`: the
per-query thread limit); `index.ERASEIndex` owns all of them for one example set (rows in,
rows out, exact single changes).
"""

from langchain_erase.core.buckets import BucketIndex
from langchain_erase.core.index import ERASEIndex
from langchain_erase.core.projection import FixedPointProjection
from langchain_erase.core.qkmeans import (
    ChangeOutcome,
    QKMeansParams,
    QuantizedKMeans,
    RefitReason,
)

__all__ = [
    "BucketIndex",
    "ChangeOutcome",
    "ERASEIndex",
    "FixedPointProjection",
    "QKMeansParams",
    "QuantizedKMeans",
    "RefitReason",
]

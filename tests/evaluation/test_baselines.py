"""Auto-CoT baseline: full-dimensional k-means, the member nearest each center."""

from __future__ import annotations

import numpy as np
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from langchain_erase.evaluation.baselines import acot_demonstrations


class GroupEmbeddings(Embeddings):
    """'g<group> <offset>' -> a unit axis per group, nudged by `offset` along the next axis:
    three tight, well-separated groups whose member with offset 0 sits at the group mean."""

    def _vec(self, text: str) -> list[float]:
        group, offset = text.split()
        v = np.zeros(8)
        v[2 * int(group[1:])] = 1.0
        v[2 * int(group[1:]) + 1] = float(offset)
        return v.tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


def test_acot_picks_the_member_nearest_each_cluster_center() -> None:
    pool = [
        {"id": f"{g}-{o}", "input": f"g{g} {o}", "output": str(g)}
        for g in range(3)
        for o in (-0.02, 0.0, 0.02)
    ]
    picks = acot_demonstrations(pool, 3, GroupEmbeddings(), seed=0)
    assert sorted(d["id"] for d in picks) == ["0-0.0", "1-0.0", "2-0.0"]


def test_acot_is_seeded_and_capped_at_the_pool_size() -> None:
    pool = [{"id": f"p{i}", "input": f"text {i}", "output": "x"} for i in range(40)]
    emb = DeterministicFakeEmbedding(size=16)
    first = acot_demonstrations(pool, 4, emb, seed=3)
    assert first == acot_demonstrations(pool, 4, emb, seed=3)
    assert len(first) == 4 and len({d["id"] for d in first}) == 4
    assert len(acot_demonstrations(pool[:2], 4, emb, seed=0)) == 2
    assert acot_demonstrations(pool, 0, emb, seed=0) == []

"""CachedEmbeddings: each text embedded once, and a resumed run sees identical vectors."""

from __future__ import annotations

from pathlib import Path

from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from langchain_erase.evaluation.embedding_cache import CachedEmbeddings


def test_texts_are_embedded_once_and_documents_and_queries_apart(tmp_path: Path) -> None:
    inner = DeterministicFakeEmbedding(size=8)
    cached = CachedEmbeddings(inner, tmp_path / "cache.npz")
    first = cached.embed_documents(["a", "b", "a"])
    assert cached.computed == 2 and first[0] == first[2] == inner.embed_documents(["a"])[0]
    cached.embed_documents(["b", "a"])
    assert cached.computed == 2
    cached.embed_query("a")
    assert cached.computed == 3  # queries are cached apart from documents

    cached.save()
    resumed = CachedEmbeddings(inner, tmp_path / "cache.npz")
    assert resumed.embed_documents(["a", "b"]) == first[:2] and resumed.computed == 0
    assert resumed.embed_query("a") == cached.embed_query("a") and resumed.computed == 0


def test_without_a_path_nothing_is_written(tmp_path: Path) -> None:
    cached = CachedEmbeddings(DeterministicFakeEmbedding(size=4))
    cached.embed_documents(["x"])
    cached.save()
    assert list(tmp_path.iterdir()) == []


def test_save_rewrites_the_file_only_after_new_embeddings(tmp_path: Path) -> None:
    path = tmp_path / "cache.npz"
    cached = CachedEmbeddings(DeterministicFakeEmbedding(size=4), path)
    cached.embed_documents(["x"])
    cached.save()
    path.write_bytes(b"sentinel")  # a rewrite would replace this
    cached.embed_documents(["x"])
    cached.save()
    assert path.read_bytes() == b"sentinel"
    cached.embed_documents(["y"])
    cached.save()
    assert CachedEmbeddings(DeterministicFakeEmbedding(size=4), path).embed_documents(["y"])


def test_texts_longer_than_the_window_are_embedded_from_a_prefix() -> None:
    from langchain_erase.embeddings import LlamaCppEmbeddings

    inner = LlamaCppEmbeddings(n_ctx=32, n_threads=1)
    cached = CachedEmbeddings(inner)
    long_text = " ".join(["word"] * 60)
    vectors = cached.embed_documents(["short text", long_text])
    assert cached.truncated > 0 and len(vectors) == 2
    assert vectors[0] == inner.embed_documents(["short text"])[0]
    assert cached.embed_query(long_text) and cached.computed == 3


def test_runs_sharing_the_file_keep_each_others_vectors(tmp_path: Path) -> None:
    path = tmp_path / "cache.npz"
    inner = DeterministicFakeEmbedding(size=4)
    first, second = CachedEmbeddings(inner, path), CachedEmbeddings(inner, path)
    first.embed_documents(["x"])
    second.embed_query("y")
    first.save()
    second.save()  # must merge what `first` wrote, not overwrite it
    resumed = CachedEmbeddings(inner, path)
    assert resumed.embed_documents(["x"]) == first.embed_documents(["x"])
    assert resumed.embed_query("y") == second.embed_query("y")
    assert resumed.computed == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.npz", "cache.npz.lock"]
    assert path.stat().st_mode & 0o777 == 0o600


class _Ones(Embeddings):
    """Every text to the same vector, unlike DeterministicFakeEmbedding."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[1.0] * 4 for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0] * 4


def test_a_vector_already_used_is_kept_when_another_file_is_merged(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    other = CachedEmbeddings(DeterministicFakeEmbedding(size=4), path)
    other.embed_documents(["x", "z"])
    other.save()
    cached = CachedEmbeddings(_Ones())
    used = cached.embed_documents(["x"])
    assert cached.update_from(path) == 2
    assert cached.embed_documents(["x"]) == used == [[1.0] * 4]  # not the file's vector
    assert cached.embed_documents(["z"]) == other.embed_documents(["z"])

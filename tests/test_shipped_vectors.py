"""The shipped corpus's vectors: they cover the corpus, match the model, and spare indexing a model run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coach import embeddings
from coach.config import load_settings
from coach.embeddings import MiniLMEmbedding, shipped_vectors, vector_key, write_vectors
from coach.index import planned_texts

pytestmark = pytest.mark.real_embeddings

FIX = ('python -c "from coach.config import load_settings; from coach.index import write_shipped_vectors; '
       'write_shipped_vectors(load_settings())"')


def test_the_shipped_vectors_cover_the_shipped_corpus_and_are_the_models_own() -> None:
    texts = planned_texts(load_settings())
    shipped = shipped_vectors()
    missing = [text[:60] for text in texts if vector_key(text) not in shipped]
    assert not missing, f"corpus/ changed: recompute the shipped vectors with {FIX} ({missing[:3]})"
    sample = [texts[0], texts[len(texts) // 2], texts[-1]]
    fresh = embeddings._runtime(2).embed(sample)
    for text, vector in zip(sample, fresh, strict=True):
        assert float(np.dot(vector, shipped[vector_key(text)])) > 0.9999


def test_a_text_with_a_shipped_vector_is_not_embedded_again(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "vectors.npz"
    write_vectors(path, ["A shipped passage about budgets."])
    monkeypatch.setattr(embeddings, "SHIPPED_VECTORS", path)
    embeddings.shipped_vectors.cache_clear()
    try:
        calls: list[list[str]] = []
        real = embeddings._runtime(2)

        class Counting:
            def embed(self, texts: list[str]) -> np.ndarray:
                calls.append(texts)
                return real.embed(texts)

        monkeypatch.setattr(embeddings, "_runtime", lambda threads: Counting())
        vectors = MiniLMEmbedding()(["A shipped passage about budgets.", "A new organisation document."])
        assert calls == [["A new organisation document."]]  # only the text without a shipped vector
        assert float(np.dot(vectors[0], real.embed(["A shipped passage about budgets."])[0])) > 0.9999
    finally:
        embeddings.shipped_vectors.cache_clear()

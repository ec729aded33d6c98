"""The corpus index: a Chroma collection of document chunks, built idempotently by one writer at a time.

Chunk ids are the document id plus a hash of the chunk text, and each chunk records a fingerprint of its whole
document. A build compares fingerprints: an unchanged document is left alone (a second build adds nothing), a
changed one has all its old chunks replaced, a removed one loses its chunks. Everything is read and chunked
before the collection is touched, so a bad corpus file fails the build with nothing half-written.

One writer at a time: a build holds ``data_dir/index.lock`` (``filelock``), waiting a bounded time for another
writer and then raising ``IndexBusy``. Readers do not lock. The embedded ``PersistentClient`` lives under
``data_dir/chroma``; with ``chroma_url`` set the same code talks to a Chroma server. Each embedding function
gets its own collection, so switching to the fake embedder never mixes vectors of different models.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import chromadb
import filelock
from chromadb.config import Settings as ChromaSettings
from pydantic import BaseModel

from coach.config import Settings
from coach.corpus import Chunk, Document, chunk_document, load_documents
from coach.embeddings import default_embedding, embedding_kind
from coach.errors import ConfigError, IndexBusy

Progress = Callable[[int, int], None]
COLLECTION_PREFIX = "coach-corpus"
ADD_BATCH = 32
DEFAULT_LOCK_TIMEOUT_S = 30.0
_client_lock = threading.Lock()


class Passage(BaseModel):
    """A retrieved chunk: its exact text (a verbatim slice of the document) and where it comes from."""

    text: str
    source: str
    doc_id: str
    title: str
    position: int
    chunk_id: str
    score: float


class IndexReport(BaseModel):
    """What a build did."""

    documents: int
    chunks: int
    added: int
    removed: int


def _fingerprint(document: Document, chunks: list[Chunk]) -> str:
    """Changes whenever anything stored for the document would change."""
    parts = [document.title, document.source, document.origin, *(c.id for c in chunks)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _metadata(chunk: Chunk, fingerprint: str) -> dict[str, Any]:
    """Chroma metadata of one chunk."""
    return {"doc_id": chunk.doc_id, "title": chunk.title, "source": chunk.source, "position": chunk.position,
            "origin": chunk.origin, "start": chunk.start, "doc_fingerprint": fingerprint}


def _client(settings: Settings) -> Any:
    """An embedded persistent client, or an HTTP client when ``chroma_url`` is set; telemetry off."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"COACH_CHROMA_URL={settings.chroma_url!r} is not an http(s) URL.",
                              hint="Use e.g. http://localhost:8000, or unset it to use the embedded index.")
        port = url.port or (443 if url.scheme == "https" else 8000)
        return chromadb.HttpClient(host=url.hostname, port=port, ssl=url.scheme == "https", settings=chroma_settings)
    path = settings.data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    with _client_lock:  # Chroma's shared-system registry is not thread-safe when two clients open at once
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


class CorpusIndex:
    """The corpus in a Chroma collection: ``build`` it, ``query`` it for passages."""

    def __init__(self, settings: Settings, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.settings = settings
        self.lock_timeout_s = lock_timeout_s
        self.embedding = default_embedding(settings.threads)
        self._client = _client(settings)
        self.collection = self._client.get_or_create_collection(
            name=f"{COLLECTION_PREFIX}-{embedding_kind()}",
            embedding_function=self.embedding,
            configuration={"hnsw": {"space": "cosine"}},
        )

    def build(self, progress: Progress | None = None) -> IndexReport:
        """Bring the collection in line with the corpus; returns what was added and removed."""
        documents = load_documents(self.settings)  # may raise CorpusError: nothing written yet
        planned = {d.id: (d, chunk_document(d)) for d in documents}
        lock = filelock.FileLock(str(self.settings.data_dir / "index.lock"), timeout=self.lock_timeout_s)
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            with lock:
                added, removed = self._apply(planned, progress)
        except filelock.Timeout:
            raise IndexBusy(f"Another process has been indexing the corpus for over {self.lock_timeout_s:.0f} s.",
                            hint="Wait for it to finish and run `coach index` again.") from None
        return IndexReport(documents=len(planned), chunks=sum(len(c) for _, c in planned.values()),
                           added=added, removed=removed)

    def _stored(self) -> dict[str, tuple[str, list[str]]]:
        """doc_id -> (fingerprint, chunk ids) of what the collection holds now."""
        stored: dict[str, tuple[str, list[str]]] = {}
        got = self.collection.get(include=["metadatas"])
        for chunk_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
            doc_id = str(meta.get("doc_id", ""))
            fingerprint = str(meta.get("doc_fingerprint", ""))
            previous = stored.get(doc_id, (fingerprint, []))
            stored[doc_id] = (fingerprint if previous[0] == fingerprint else "", [*previous[1], chunk_id])
        return stored

    def _apply(self, planned: dict[str, tuple[Document, list[Chunk]]], progress: Progress | None) -> tuple[int, int]:
        """Delete stale chunks, add new ones; returns (added, removed)."""
        stored = self._stored()
        unchanged = {doc_id for doc_id, (document, chunks) in planned.items()
                     if doc_id in stored and stored[doc_id][0] == _fingerprint(document, chunks)
                     and set(stored[doc_id][1]) == {c.id for c in chunks}}  # a crash mid-add leaves a partial set
        stale = [chunk_id for doc_id, (_, ids) in stored.items() if doc_id not in unchanged for chunk_id in ids]
        fresh = [(chunk, _fingerprint(document, chunks)) for doc_id, (document, chunks) in planned.items()
                 if doc_id not in unchanged for chunk in chunks]
        if stale:
            self.collection.delete(ids=stale)
        for i in range(0, len(fresh), ADD_BATCH):
            batch = fresh[i : i + ADD_BATCH]
            self.collection.add(ids=[c.id for c, _ in batch], documents=[c.text for c, _ in batch],
                                metadatas=[_metadata(c, f) for c, f in batch])
            if progress:
                progress(i + len(batch), len(fresh))
        return len(fresh), len(stale)

    def query(self, text: str, k: int = 4, doc_ids: list[str] | None = None) -> list[Passage]:
        """The ``k`` chunks closest to ``text`` (optionally only from ``doc_ids``), best first."""
        if not text.strip() or k <= 0:
            return []
        where: Any = None
        if doc_ids:
            where = {"doc_id": doc_ids[0]} if len(doc_ids) == 1 else {"doc_id": {"$in": list(doc_ids)}}
        result = self.collection.query(query_texts=[text], n_results=k, where=where,
                                       include=["documents", "metadatas", "distances"])
        rows = zip(result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0],
                   strict=True)
        return [Passage(text=doc, source=str(meta["source"]), doc_id=str(meta["doc_id"]), title=str(meta["title"]),
                        position=int(meta["position"]), chunk_id=chunk_id, score=round(1.0 - float(dist), 4))
                for chunk_id, doc, meta, dist in rows]

    def stats(self) -> dict[str, int]:
        """How many documents and chunks the collection holds."""
        got = self.collection.get(include=["metadatas"])
        doc_ids = {str(meta.get("doc_id")) for meta in got["metadatas"] or []}
        return {"documents": len(doc_ids), "chunks": len(got["ids"])}


_indexes: dict[tuple[str, ...], CorpusIndex] = {}
_indexes_lock = threading.Lock()


def open_index(settings: Settings) -> CorpusIndex:
    """The process-wide ``CorpusIndex`` for these settings (created on first use)."""
    key = (str(settings.data_dir), settings.chroma_url or "", str(settings.corpus_dir), embedding_kind())
    with _indexes_lock:
        if key not in _indexes:
            _indexes[key] = CorpusIndex(settings)
        return _indexes[key]

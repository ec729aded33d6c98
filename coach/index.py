"""The corpus index: a Chroma collection of document chunks, built idempotently by one writer at a time.

Chunk ids are the document id plus a hash of the chunk text, and each chunk records a fingerprint of its whole
document. A build compares fingerprints: an unchanged document is left alone (a second build adds nothing), a
changed one has all its old chunks replaced, a removed one loses its chunks. Everything is read and chunked
before the collection is touched, so a bad corpus file fails the build with nothing half-written.

One writer at a time: a build holds ``data_dir/index.lock`` (``filelock``), waiting a bounded time for another
writer and then raising ``IndexBusy``. Instances that share a Chroma server do not share that file, so when the
sessions live in PostgreSQL a build also holds a PostgreSQL advisory lock: one writer across every instance.
(With a Chroma server and SQLite sessions, only instances sharing a data dir are serialised.) Readers do not
lock. The embedded ``PersistentClient`` lives under ``data_dir/chroma``; with ``chroma_url`` set the same code
talks to a Chroma server. Each embedding function gets its own collection, so switching to the fake embedder
never mixes vectors of different models.

With a Chroma server several instances share one collection but not their data dirs, so a build never
deletes an organisation document it cannot see on its own disk (another instance may have added it); such a
document leaves the index only through ``remove_organisation_document`` (the Library's Remove button).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
import filelock
import httpx
from chromadb.config import Settings as ChromaSettings
from pydantic import BaseModel

from coach.config import Settings, redact_url
from coach.corpus import Chunk, Document, Principle, chunk_document, load_documents, load_principles, normalise_space
from coach.embeddings import SHIPPED_VECTORS, default_embedding, embedding_kind, write_vectors
from coach.errors import CoachError, ConfigError, IndexBusy, StorageError

Progress = Callable[[int, int], None]
COLLECTION_PREFIX = "coach-corpus"
ADD_BATCH = 32
DEFAULT_LOCK_TIMEOUT_S = 30.0
LOCK_POLL_S = 0.2
# Any constant shared by all coach processes (the migrations' lock is 7_316_614_401): one index writer.
PG_INDEX_LOCK = 7_316_614_402
_client_lock = threading.Lock()


class IndexUnavailable(CoachError):
    """The Chroma server named by ``COACH_CHROMA_URL`` cannot be reached."""


def _unreachable(settings: Settings) -> IndexUnavailable:
    return IndexUnavailable(f"Cannot reach the Chroma server at {redact_url(settings.chroma_url or '')}.",
                            hint="Start it (chroma run) or fix COACH_CHROMA_URL.")


@contextlib.contextmanager
def _reaching(settings: Settings) -> Iterator[None]:
    """Turn a lost connection to the Chroma server into one ``IndexUnavailable`` line (no traceback)."""
    try:
        yield
    except httpx.TransportError:  # refused, reset, timed out, unknown host
        if not settings.chroma_url:
            raise
        raise _unreachable(settings) from None
    except ValueError as exc:  # chromadb.HttpClient's own "Could not connect to a Chroma server" check
        if not settings.chroma_url or "connect" not in str(exc).lower():
            raise
        raise _unreachable(settings) from None


_CANNOT_WRITE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}


@contextlib.contextmanager
def _writable(settings: Settings) -> Iterator[None]:
    """A data folder that is read-only, not ours or full becomes one ``StorageError`` naming it; the index the
    folder holds is left as it was."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _CANNOT_WRITE:
            raise
        reason = "is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "is read-only or not writable by you"
        raise StorageError(f"Cannot write to the data folder {settings.data_dir}: it {reason}.",
                           hint="Free space or make it writable, or set COACH_DATA_DIR to another folder.") from None


@contextlib.contextmanager
def _team_writer(settings: Settings, timeout_s: float) -> Iterator[bool]:
    """With a Chroma server and PostgreSQL sessions, hold the team-wide advisory lock; yields False on timeout.

    Transaction-scoped (``pg_try_advisory_xact_lock``), like the migrations' lock: it goes with the
    transaction, so a crashed writer never leaves it behind.
    """
    if not settings.chroma_url or settings.database_url is None:  # an embedded index is one data dir's
        yield True
        return
    from sqlalchemy import text

    from coach.sessions import open_database

    database = open_database(settings)
    if not database.is_postgres:
        yield True
        return
    deadline = time.monotonic() + timeout_s
    with database.engine.connect() as conn, conn.begin():
        while not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": PG_INDEX_LOCK}).scalar():
            if time.monotonic() >= deadline:
                yield False
                return
            time.sleep(LOCK_POLL_S)
        yield True


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


@dataclasses.dataclass
class _StoredDocument:
    """What the collection holds for one document: its fingerprints, record ids and number of chunks."""

    origin: str
    fingerprints: set[str] = dataclasses.field(default_factory=set)
    ids: list[str] = dataclasses.field(default_factory=list)
    chunks: int = 0


class _Record(BaseModel):
    """One entry of the collection: a chunk, or a retrieval key that points at a chunk."""

    id: str
    text: str
    metadata: dict[str, Any]

    @property
    def is_chunk(self) -> bool:
        return self.metadata["kind"] == "chunk"


def _chunk_record(chunk: Chunk) -> _Record:
    """The collection entry of a chunk (its text is the passage returned by queries)."""
    return _Record(id=chunk.id, text=chunk.text, metadata={
        "kind": "chunk", "doc_id": chunk.doc_id, "title": chunk.title, "source": chunk.source,
        "position": chunk.position, "origin": chunk.origin, "start": chunk.start, "chunk_id": chunk.id})


def _target_chunk(principle: Principle, chunks: list[Chunk]) -> Chunk | None:
    """The chunk holding the principle's quote (or, if a chunk border cuts it, its opening words)."""
    quote = normalise_space(principle.quote)
    for probe in (quote, quote[:60]):
        for chunk in chunks:
            if probe in normalise_space(chunk.text):
                return chunk
    return None


def _principle_keys(principles: list[Principle], chunks: list[Chunk]) -> list[_Record]:
    """Retrieval keys for one essay: each principle's name and statement, look-for items and quote.

    They are written in the language of drafts and problems ("next steps with no named owner"), which
    the essays' own wording often is not; a query that matches a key retrieves the chunk the key points at.
    """
    records = []
    for principle in principles:
        target = _target_chunk(principle, chunks)
        if target is None:
            continue
        texts = [f"{principle.name}. {principle.statement}", principle.quote, *principle.look_for]
        for text in texts:
            digest = hashlib.sha256(f"{target.id}\x1f{text}".encode()).hexdigest()[:16]
            metadata = {**_chunk_record(target).metadata, "kind": "key", "principle_id": principle.id}
            records.append(_Record(id=f"{target.doc_id}:key:{digest}", text=text, metadata=metadata))
    return records


def _plan(documents: list[Document], principles: list[Principle]) -> dict[str, list[_Record]]:
    """doc_id -> every record the collection should hold for it, each stamped with the document's fingerprint."""
    planned: dict[str, list[_Record]] = {}
    for document in documents:
        chunks = chunk_document(document)
        own = [p for p in principles if p.source == document.id]
        records = [*map(_chunk_record, chunks), *_principle_keys(own, chunks)]
        parts = [document.title, document.source, document.origin, *(r.id for r in records)]
        fingerprint = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
        for record in records:
            record.metadata["doc_fingerprint"] = fingerprint
        planned[document.id] = records
    return planned


def planned_texts(settings: Settings) -> list[str]:
    """Every text the index embeds for this corpus (chunks and principle keys), in order."""
    documents = load_documents(settings)
    planned = _plan(documents, load_principles(settings, documents))
    return [record.text for records in planned.values() for record in records]


def write_shipped_vectors(settings: Settings, path: Path = SHIPPED_VECTORS) -> Path:
    """Recompute the vectors shipped for the corpus (run after changing ``corpus/``; a test says when)."""
    write_vectors(path, planned_texts(settings))
    return path


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
        # A chunk's id holds the hash of its text, so the text behind an id never changes: queries ask Chroma
        # for ids and distances only and read texts from here (filled from the collection on first use).
        self._texts: dict[str, str] = {}
        # Two processes creating the embedded store in a fresh data dir at once race in Chroma's own schema
        # set-up ("table collections already exists"): opening is one process at a time.
        opening: Any = contextlib.nullcontext()
        if not settings.chroma_url:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            opening = filelock.FileLock(str(settings.data_dir / "chroma-open.lock"), timeout=lock_timeout_s)
        try:
            with _writable(settings), opening, _reaching(settings):
                self._client = _client(settings)
                self.collection = self._client.get_or_create_collection(
                    name=f"{COLLECTION_PREFIX}-{embedding_kind()}",
                    embedding_function=self.embedding,
                    configuration={"hnsw": {"space": "cosine"}},
                )
        except filelock.Timeout:
            raise IndexBusy(f"Another process has been opening the index for over {lock_timeout_s:.0f} s.",
                            hint="Wait for it to finish and try again.") from None

    def build(self, progress: Progress | None = None) -> IndexReport:
        """Bring the collection in line with the corpus; returns how many chunks were added and removed."""
        documents = load_documents(self.settings)  # may raise CorpusError: nothing written yet
        planned = _plan(documents, load_principles(self.settings, documents))
        with self._writing("indexing the corpus", "run `coach index` again"):
            added, removed, kept = self._apply(planned, progress)
        chunks = sum(r.is_chunk for records in planned.values() for r in records)
        return IndexReport(documents=len(planned) + len(kept), chunks=chunks + sum(s.chunks for s in kept),
                           added=added, removed=removed)

    @contextlib.contextmanager
    def _writing(self, doing: str, then: str) -> Iterator[None]:
        """Hold the writer lock (``data_dir/index.lock``) while the collection changes."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.settings.data_dir / "index.lock"), timeout=self.lock_timeout_s)
        busy = IndexBusy(f"Another process has been {doing} for over {self.lock_timeout_s:.0f} s.",
                         hint=f"Wait for it to finish and {then}.")
        try:
            with (_writable(self.settings), lock, _team_writer(self.settings, self.lock_timeout_s) as held,
                  _reaching(self.settings)):
                if not held:
                    raise busy
                yield
        except filelock.Timeout:
            raise busy from None

    def _stored(self) -> dict[str, _StoredDocument]:
        """doc_id -> what the collection holds for it now."""
        stored: dict[str, _StoredDocument] = {}
        got = self.collection.get(include=["metadatas"])
        for record_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
            doc_id = str(meta.get("doc_id", ""))
            document = stored.setdefault(doc_id, _StoredDocument(origin=str(meta.get("origin", ""))))
            document.fingerprints.add(str(meta.get("doc_fingerprint", "")))
            document.ids.append(record_id)
            document.chunks += meta.get("kind") == "chunk"
        return stored

    def _apply(self, planned: dict[str, list[_Record]],
               progress: Progress | None) -> tuple[int, int, list[_StoredDocument]]:
        """Delete the records of changed or removed documents, add the new ones.

        Returns the chunks added and removed, and the organisation documents kept although this instance
        cannot see them: with a Chroma server they may come from another instance, and only
        ``remove_organisation_document`` (the Library's Remove) takes them out.
        """
        stored = self._stored()
        unchanged = {doc_id for doc_id, records in planned.items()
                     if doc_id in stored and stored[doc_id].fingerprints == {records[0].metadata["doc_fingerprint"]}
                     and set(stored[doc_id].ids) == {r.id for r in records}}  # a crash mid-add leaves a partial set
        kept = {doc_id for doc_id, document in stored.items()
                if self.settings.chroma_url and document.origin == "organisation" and doc_id not in planned}
        gone = [doc_id for doc_id in stored if doc_id not in unchanged | kept]
        stale = [record_id for doc_id in gone for record_id in stored[doc_id].ids]
        fresh = [r for doc_id, records in planned.items() if doc_id not in unchanged for r in records]
        if stale:
            self.collection.delete(ids=stale)
        for i in range(0, len(fresh), ADD_BATCH):
            batch = fresh[i : i + ADD_BATCH]
            self.collection.add(ids=[r.id for r in batch], documents=[r.text for r in batch],
                                metadatas=[r.metadata for r in batch])
            if progress:
                progress(i + len(batch), len(fresh))
        removed = sum(stored[doc_id].chunks for doc_id in gone)
        return sum(r.is_chunk for r in fresh), removed, [stored[doc_id] for doc_id in kept]

    def remove_organisation_document(self, doc_id: str) -> int:
        """Take one organisation document out of the index now; returns how many chunks it had."""
        with self._writing("changing the index", "remove the document again"):
            got = self.collection.get(where={"$and": [{"doc_id": doc_id}, {"origin": "organisation"}]},
                                      include=["metadatas"])
            if got["ids"]:
                self.collection.delete(ids=got["ids"])
        return sum(meta.get("kind") == "chunk" for meta in got["metadatas"] or [])

    def query(self, text: str, k: int = 4, doc_ids: list[str] | None = None) -> list[Passage]:
        """The ``k`` chunks best matching ``text`` directly or through a principle key, best first."""
        if not text.strip() or k <= 0:
            return []
        where: Any = None
        if doc_ids:
            where = {"doc_id": doc_ids[0]} if len(doc_ids) == 1 else {"doc_id": {"$in": list(doc_ids)}}
        with _reaching(self.settings):
            result = self.collection.query(query_texts=[text], n_results=4 * k + 12, where=where,
                                           include=["metadatas", "distances"])
        best: dict[str, tuple[float, dict[str, Any]]] = {}
        for meta, dist in zip(result["metadatas"][0], result["distances"][0], strict=True):
            chunk_id = str(meta["chunk_id"])
            score = 1.0 - float(dist)
            if chunk_id not in best or score > best[chunk_id][0]:
                best[chunk_id] = (score, dict(meta))
        top = sorted(best.items(), key=lambda item: -item[1][0])[:k]
        texts = self._chunk_texts([chunk_id for chunk_id, _ in top])
        return [Passage(text=texts[chunk_id], source=str(meta["source"]), doc_id=str(meta["doc_id"]),
                        title=str(meta["title"]), position=int(meta["position"]), chunk_id=chunk_id,
                        score=round(score, 4))
                for chunk_id, (score, meta) in top if chunk_id in texts]

    def _chunk_texts(self, chunk_ids: list[str]) -> dict[str, str]:
        """The texts of these chunks: from memory, or in one read of the collection for those not seen yet."""
        missing = [chunk_id for chunk_id in chunk_ids if chunk_id not in self._texts]
        if missing:
            with _reaching(self.settings):
                got = self.collection.get(ids=missing, include=["documents"])
            self._texts.update(zip(got["ids"], (str(d) for d in got["documents"] or []), strict=True))
        return {chunk_id: self._texts[chunk_id] for chunk_id in chunk_ids if chunk_id in self._texts}

    def stats(self) -> dict[str, int]:
        """How many documents and chunks the collection holds (retrieval keys not counted)."""
        with _reaching(self.settings):
            got = self.collection.get(where={"kind": "chunk"}, include=["metadatas"])
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

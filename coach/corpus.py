"""The corpus: essay documents, the organisation's own documents, the principle catalogue, and chunking.

A corpus document is a Markdown file with TOML front matter between ``+++`` lines (``id``, ``title``,
``author``, ``source``, ``origin``). The body is kept verbatim: citations quote it, so every chunk's text is an
exact slice of the document text, never a re-joined or re-wrapped copy.

Chunking packs whole sentences into chunks of about 150-220 cl100k tokens, preferring to break at a paragraph
boundary; when a break falls inside a paragraph, the next chunk repeats that last sentence, so a passage cut in
two can still be found whole. A chunk id is the document id plus a hash of the chunk's text: re-indexing
unchanged text produces the same ids.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError, field_validator

from coach.config import Settings
from coach.documents import extract_text
from coach.errors import CorpusError, InputError
from coach.tokens import count_tokens

Origin = Literal["essay", "organisation"]
PRINCIPLES_FILE = "principles.toml"
MIN_CHUNK_TOKENS = 150
MAX_CHUNK_TOKENS = 220
MAX_OVERLAP_TOKENS = 60
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”’)]*\s+")


class Document(BaseModel):
    """One corpus document: an essay we ship, or a document of the user's organisation."""

    id: str
    title: str
    author: str | None = None
    source: str
    origin: Origin = "essay"
    text: str
    path: Path
    warnings: list[str] = []


class Principle(BaseModel):
    """A leadership principle taught by an essay, with a supporting quote that is verbatim in it."""

    id: str
    name: str
    statement: str
    look_for: list[str]
    source: str
    quote: str

    @field_validator("id")
    @classmethod
    def _kebab_case(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"principle id {value!r} is not kebab-case")
        return value


class Chunk(BaseModel):
    """A passage of a document: an exact slice ``document.text[start:end]``."""

    id: str
    doc_id: str
    title: str
    source: str
    origin: Origin
    position: int
    start: int
    end: int
    text: str
    tokens: int


def normalise_space(text: str) -> str:
    """Whitespace runs (including non-breaking spaces) collapsed to one space: for comparing quotes."""
    return " ".join(text.split())


# ---------------------------------------------------------------- documents


def _split_front_matter(path: Path, raw: str) -> tuple[dict[str, Any], str]:
    """The TOML front matter and the body of a corpus file."""
    if not raw.startswith("+++\n"):
        return {}, raw
    end = raw.find("\n+++\n", 4)
    if end < 0:
        raise CorpusError(f"{path}: front matter opened with +++ is never closed.", hint="Add a closing +++ line.")
    try:
        meta = tomllib.loads(raw[4:end])
    except tomllib.TOMLDecodeError as exc:
        raise CorpusError(f"{path}: invalid front matter ({exc}).",
                          hint="Fix the TOML between the +++ lines.") from None
    return meta, raw[end + 5 :].lstrip("\n")


def read_document(path: Path, origin: Origin = "essay") -> Document:
    """Parse one corpus file; unreadable, non-UTF-8 or empty files raise ``CorpusError`` naming the file."""
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise CorpusError(f"Corpus file {path} is not UTF-8 text.",
                          hint="Re-save it as UTF-8, or remove it from the corpus folder.") from None
    except OSError as exc:
        raise CorpusError(f"Cannot read corpus file {path}: {exc.strerror}.",
                          hint="Check its permissions, or remove it from the corpus folder.") from None
    meta, body = _split_front_matter(path, raw.replace("\r\n", "\n"))
    if not body.strip():
        raise CorpusError(f"Corpus file {path} has no text.", hint="Add its text, or remove the file.")
    doc_id = str(meta.get("id") or path.stem)
    if not _ID.match(doc_id):
        raise CorpusError(f"Corpus file {path}: id {doc_id!r} is not kebab-case.", hint="Use e.g. it-strategy-2025.")
    try:
        return Document.model_validate({
            "id": doc_id, "title": str(meta.get("title") or path.stem), "author": meta.get("author"),
            "source": str(meta.get("source") or path.name), "origin": meta.get("origin", origin),
            "text": body, "path": path, "warnings": meta.get("warnings", []),
        })
    except ValidationError as exc:
        raise CorpusError(f"Corpus file {path}: invalid front matter ({exc.errors()[0]['msg']}).",
                          hint="Fix the TOML between the +++ lines (title, author, source, origin).") from None


def load_documents(settings: Settings) -> list[Document]:
    """The shipped essays (``corpus/*.md``) and the organisation's documents, ids unique."""
    paths = [(p, "essay") for p in sorted(settings.corpus_dir.glob("*.md"))]
    if settings.user_docs_dir.is_dir():
        paths += [(p, "organisation") for p in sorted(settings.user_docs_dir.glob("*.md"))]
    if not paths:
        raise CorpusError(f"The corpus is empty: no .md files in {settings.corpus_dir}.",
                          hint="Restore the corpus/ folder from the repository (git checkout -- corpus).")
    documents = [read_document(path, origin) for path, origin in paths]  # type: ignore[arg-type]
    seen: dict[str, Path] = {}
    for document in documents:
        if document.id in seen:
            raise CorpusError(f"Two corpus files share the id {document.id!r}: "
                              f"{seen[document.id]} and {document.path}.",
                              hint="Give one of them a different id in its front matter.")
        seen[document.id] = document.path
    return documents


# ---------------------------------------------------------------- principles


def load_principles(settings: Settings, documents: list[Document] | None = None) -> list[Principle]:
    """The principle catalogue, checked: unique ids, known sources, quotes verbatim in their essay."""
    path = settings.corpus_dir / PRINCIPLES_FILE
    try:
        entries = tomllib.loads(path.read_text(encoding="utf-8")).get("principles", [])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else " ".join(str(exc).split())
        raise CorpusError(f"Cannot load the principle catalogue {path}: {reason}.",
                          hint="Fix it, or restore it from the repository (git checkout -- corpus).") from None
    if not isinstance(entries, list):
        raise CorpusError(f"{path}: `principles` is not a list of [[principles]] tables.",
                          hint="Restore it from the repository (git checkout -- corpus).")
    principles = [_principle(path, number, entry) for number, entry in enumerate(entries, 1)]
    texts = {d.id: normalise_space(d.text) for d in (documents or load_documents(settings))}
    seen: set[str] = set()
    for principle in principles:
        if principle.id in seen:
            raise CorpusError(f"{path}: principle id {principle.id!r} appears twice.", hint="Make ids unique.")
        seen.add(principle.id)
        if principle.source not in texts:
            raise CorpusError(f"{path}: principle {principle.id!r} cites unknown document {principle.source!r}.",
                              hint=f"Set its source to the id of an essay in {settings.corpus_dir}.")
        if normalise_space(principle.quote) not in texts[principle.source]:
            raise CorpusError(f"{path}: the quote of {principle.id!r} is not verbatim in {principle.source!r}.",
                              hint="Copy the passage exactly from the essay.")
    if not principles:
        raise CorpusError(f"{path} defines no principles.", hint="Restore it from the repository.")
    return principles


def _principle(path: Path, number: int, entry: Any) -> Principle:
    """One catalogue entry, validated; the error names the entry and its first problem on one line."""
    try:
        return Principle.model_validate(entry)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "entry"
        name = f" ({entry['id']!r})" if isinstance(entry, dict) and isinstance(entry.get("id"), str) else ""
        raise CorpusError(f"{path}: principle {number}{name}, {field}: {error['msg']}.",
                          hint="Fix that entry (id, name, statement, look_for, source, quote).") from None


# ---------------------------------------------------------------- chunking


def _sentence_spans(text: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, ends_paragraph) for each sentence; paragraphs are lines or blank-line separated blocks."""
    for line in re.finditer(r"[^\n]+", text):
        if not line.group().strip():
            continue
        begin = line.start()
        pieces = [*_SENTENCE_END.finditer(line.group()), None]
        for piece in pieces:
            stop = line.start() + piece.start() if piece else line.end()
            segment = text[begin:stop]
            if segment.strip():
                lead = len(segment) - len(segment.lstrip())
                yield begin + lead, begin + len(segment.rstrip()), piece is None
            begin = line.start() + piece.end() if piece else line.end()


def _units(text: str) -> list[tuple[int, int, bool, int]]:
    """Sentences with token counts; a sentence longer than a chunk is cut at word boundaries."""
    units: list[tuple[int, int, bool, int]] = []
    for start, end, para_end in _sentence_spans(text):
        tokens = count_tokens(text[start:end])
        if tokens <= MAX_CHUNK_TOKENS:
            units.append((start, end, para_end, tokens))
            continue
        words = [m.span() for m in re.finditer(r"\S+", text[start:end])]
        step = max(1, len(words) * MAX_CHUNK_TOKENS // (tokens + 1))
        for i in range(0, len(words), step):
            a, b = start + words[i][0], start + words[min(i + step, len(words)) - 1][1]
            units.append((a, b, para_end and i + step >= len(words), count_tokens(text[a:b])))
    return units


def _pack(units: list[tuple[int, int, bool, int]]) -> list[tuple[int, int]]:
    """Greedy packing of units into (first, last) index ranges, breaking at paragraphs when big enough."""
    ranges: list[tuple[int, int]] = []
    first, total = 0, 0
    for i, (_, _, para_end, tokens) in enumerate(units):
        if total and total + tokens > MAX_CHUNK_TOKENS:
            ranges.append((first, i - 1))
            previous = units[i - 1]
            overlap = (not previous[2] and previous[3] <= MAX_OVERLAP_TOKENS and i - 1 > first
                       and previous[3] + tokens <= MAX_CHUNK_TOKENS)
            first, total = (i - 1, previous[3]) if overlap else (i, 0)
        total += tokens
        if para_end and total >= MIN_CHUNK_TOKENS:
            ranges.append((first, i))
            first, total = i + 1, 0
    if total:
        ranges.append((first, len(units) - 1))
    return ranges


def chunk_document(document: Document) -> list[Chunk]:
    """Token-aware chunks of a document; each chunk's text is ``document.text[start:end]`` exactly."""
    units = _units(document.text)
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for position, (first, last) in enumerate(_pack(units)):
        start, end = units[first][0], units[last][1]
        text = document.text[start:end]
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        seen[digest] = seen.get(digest, 0) + 1
        suffix = "" if seen[digest] == 1 else f"-{seen[digest]}"  # identical passages twice in one document
        chunks.append(Chunk(id=f"{document.id}:{digest}{suffix}", doc_id=document.id, title=document.title,
                            source=document.source, origin=document.origin, position=position, start=start,
                            end=end, text=text, tokens=count_tokens(text)))
    return chunks


# ---------------------------------------------------------------- the organisation's documents


def _slug(name: str) -> str:
    """A kebab-case id from a file name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-") or "document"


def _toml_string(value: str) -> str:
    """A TOML basic string (escapes quotes, backslashes and control characters)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped) + '"'


def add_user_document(settings: Settings, filename: str, data: bytes) -> Document:
    """Store an uploaded document (text extracted, hidden text stripped) as organisation corpus; re-index after.

    Uploading a file of the same name again replaces the earlier upload. A different file whose name gives the
    same id (``strategy.pdf`` next to ``strategy.md``) is refused rather than silently replacing the other one.
    """
    extracted = extract_text(filename, data)
    doc_id = "org-" + _slug(Path(filename).stem)
    _refuse_a_different_file_with_the_same_id(settings, doc_id, Path(filename).name)
    lines = ["+++", f"id = {_toml_string(doc_id)}", f"title = {_toml_string(Path(filename).stem)}",
             f"source = {_toml_string(Path(filename).name)}", 'origin = "organisation"',
             "warnings = [" + ", ".join(_toml_string(w) for w in extracted.warnings) + "]", "+++", "", ""]
    target = settings.user_docs_dir / f"{doc_id}.md"
    _write_atomically(target, "\n".join(lines) + extracted.text)
    return read_document(target, "organisation")


def _refuse_a_different_file_with_the_same_id(settings: Settings, doc_id: str, source: str) -> None:
    target = settings.user_docs_dir / f"{doc_id}.md"
    if not target.is_file():
        return
    try:
        existing = read_document(target, "organisation").source
    except CorpusError:  # an unreadable earlier copy: replacing it is the fix
        return
    if existing != source:
        raise InputError(f"The library already has {existing!r} as document {doc_id!r}; {source!r} would replace it.",
                         hint=f"Rename {source!r} before adding it, or remove {existing!r} from the library first.")


def _write_atomically(target: Path, text: str) -> None:
    """Write via a temporary file and rename: a full or read-only disk leaves the old file and no debris."""
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise CorpusError(f"Cannot save {target.name} in {target.parent}: {exc.strerror or exc}.",
                          hint="Check the data folder's free space and permissions, then add the document again.") \
            from None


def remove_user_document(settings: Settings, doc_id: str) -> None:
    """Delete one of the organisation's documents (its chunks leave the index at the next build).

    With a Chroma server (``chroma_url``) its chunks leave the shared index at once, even when another
    instance added it: a build there never removes organisation documents (see ``coach.index``).
    """
    if not _ID.match(doc_id):
        raise InputError(f"{doc_id!r} is not a document id.")
    target = settings.user_docs_dir / f"{doc_id}.md"
    shared = 0
    if settings.chroma_url:
        from coach.index import open_index  # coach.index imports this module

        shared = open_index(settings).remove_organisation_document(doc_id)
    if target.is_file():
        target.unlink()
    elif not shared:
        raise InputError(f"There is no organisation document {doc_id!r}.", hint="See the Library for the ids.")

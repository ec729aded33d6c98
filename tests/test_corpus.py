"""The shipped corpus and principle catalogue, chunking, corpus errors, and the organisation's documents."""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path

import pytest
from test_documents import _pdf as pdf_bytes

from coach.config import PROJECT_ROOT, load_settings
from coach.corpus import (
    MAX_CHUNK_TOKENS,
    Document,
    add_user_document,
    chunk_document,
    load_documents,
    load_principles,
    normalise_space,
    read_document,
    remove_user_document,
)
from coach.errors import CorpusError, InputError

CORPUS = PROJECT_ROOT / "corpus"
SEEDS = PROJECT_ROOT.parent / "shared" / "seeds"


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


def test_five_essays_with_front_matter() -> None:
    documents = load_documents(load_settings())
    assert len(documents) == 5
    for document in documents:
        assert document.origin == "essay"
        assert re.fullmatch(r"\d{3}_[0-9a-f]{16}\.txt", document.source), document.source
        assert document.title and len(document.text) > 1000
    authors = {d.id: d.author for d in documents}
    assert authors["it-leader-to-organizational-partner"] == "Tina Marie Baugh"
    assert authors["what-do-it-leaders-do"] == "Dr. Jim Anderson"


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed essays are not next to this checkout")
def test_essay_text_is_the_seed_text_verbatim() -> None:
    """Only whole lines of recorded web-page debris may differ from the seed."""
    import tomllib

    for document in load_documents(load_settings()):
        front = document.path.read_text(encoding="utf-8").split("+++")[1]
        removed = set(tomllib.loads(front).get("removed_lines", []))
        seed_lines = [ln for ln in (SEEDS / document.source).read_text(encoding="utf-8").split("\n")
                      if ln.strip() not in removed]
        assert normalise_space(document.text) == normalise_space("\n".join(seed_lines))


def test_principle_quotes_are_verbatim_and_ids_unique() -> None:
    settings = load_settings()
    documents = {d.id: d for d in load_documents(settings)}
    principles = load_principles(settings)
    assert 14 <= len(principles) <= 18
    ids = [p.id for p in principles]
    assert len(ids) == len(set(ids))
    for principle in principles:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", principle.id)
        assert normalise_space(principle.quote) in normalise_space(documents[principle.source].text), principle.id
        assert principle.look_for and all(item.strip() for item in principle.look_for)
        assert "\n" not in principle.statement
    assert {"obvious-to-you", "business-metrics", "lead-with-outcome", "milestones-owners-dates",
            "users-as-customers", "say-what-good-looks-like", "communicate-to-be-noticed",
            "align-with-vision"} <= set(ids)
    assert {p.source for p in principles} == set(documents)  # every essay teaches at least one principle


def test_a_quote_not_in_its_essay_is_refused(corpus_copy: Path) -> None:
    catalogue = corpus_copy / "principles.toml"
    text = catalogue.read_text(encoding="utf-8")
    catalogue.write_text(text.replace("Uptime is just a number", "Uptime is only a number"), encoding="utf-8")
    with pytest.raises(CorpusError, match=r"business-metrics.*not verbatim"):
        load_principles(load_settings(corpus_dir=corpus_copy))


def test_duplicate_principle_ids_are_refused(corpus_copy: Path) -> None:
    catalogue = corpus_copy / "principles.toml"
    catalogue.write_text(catalogue.read_text(encoding="utf-8").replace('"run-the-numbers"', '"business-metrics"'),
                         encoding="utf-8")
    with pytest.raises(CorpusError, match="appears twice"):
        load_principles(load_settings(corpus_dir=corpus_copy))


def test_chunks_are_exact_slices_within_budget_and_cover_the_text() -> None:
    for document in load_documents(load_settings()):
        chunks = chunk_document(document)
        assert [c.position for c in chunks] == list(range(len(chunks)))
        covered = [False] * len(document.text)
        for chunk in chunks:
            assert document.text[chunk.start : chunk.end] == chunk.text
            assert chunk.tokens <= MAX_CHUNK_TOKENS
            assert chunk.id.startswith(f"{document.id}:")
            covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
        missing = "".join(ch for ch, seen in zip(document.text, covered, strict=True) if not seen)
        assert not missing.strip(), f"{document.id} text outside every chunk: {missing.strip()[:80]!r}"
        assert len({c.id for c in chunks}) == len(chunks)


def test_chunk_ids_depend_only_on_content(tmp_path: Path) -> None:
    base = Document(id="memo", title="Memo", source="memo.md", text="", path=tmp_path / "memo.md")
    paragraphs = [f"Paragraph {i} says the outage cost {i} hours. " * 12 for i in range(6)]
    first = chunk_document(base.model_copy(update={"text": "\n\n".join(paragraphs)}))
    again = chunk_document(base.model_copy(update={"text": "\n\n".join(paragraphs)}))
    edited = chunk_document(base.model_copy(update={"text": "\n\n".join([*paragraphs[:-1], "A new ending."])}))
    assert [c.id for c in first] == [c.id for c in again]
    assert first[0].id == edited[0].id and first[-1].id != edited[-1].id


def test_a_long_paragraph_is_split_with_sentence_overlap(tmp_path: Path) -> None:
    text = " ".join(f"Sentence number {i} explains why the service desk matters to sales." for i in range(60))
    chunks = chunk_document(Document(id="long", title="Long", source="x", text=text, path=tmp_path / "x"))
    assert len(chunks) >= 3
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end  # the last sentence is repeated at the start of the next chunk


def test_non_utf8_corpus_file_names_the_file_and_the_fix(corpus_copy: Path) -> None:
    (corpus_copy / "broken.md").write_bytes(b"+++\ntitle = 'x'\n+++\n\xff\xfe caf\xe9")
    with pytest.raises(CorpusError, match=r"broken\.md is not UTF-8.*Re-save it as UTF-8"):
        load_documents(load_settings(corpus_dir=corpus_copy))


def test_empty_corpus_and_empty_document_are_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty-corpus"
    empty.mkdir()
    with pytest.raises(CorpusError, match="corpus is empty"):
        load_documents(load_settings(corpus_dir=empty))
    (empty / "blank.md").write_text("+++\ntitle = 'Blank'\n+++\n\n   \n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"blank\.md has no text"):
        load_documents(load_settings(corpus_dir=empty))


def test_unclosed_front_matter_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "open.md"
    path.write_text("+++\ntitle = 'Open'\n\nSome text.\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="never closed"):
        read_document(path)


def test_user_document_round_trip() -> None:
    settings = load_settings()
    text = "Our vision: every clinic open on time.\u200b\n\nStrategy: fewer, better systems.\n"
    document = add_user_document(settings, "Vision 2026.md", text.encode())
    assert document.id == "org-vision-2026" and document.origin == "organisation"
    assert "\u200b" not in document.text and document.warnings
    assert document.path.parent == settings.user_docs_dir
    ids = {d.id: d.origin for d in load_documents(settings)}
    assert ids["org-vision-2026"] == "organisation" and len(ids) == 6
    remove_user_document(settings, "org-vision-2026")
    assert "org-vision-2026" not in {d.id for d in load_documents(settings)}
    with pytest.raises(InputError, match="no organisation document"):
        remove_user_document(settings, "org-vision-2026")
    with pytest.raises(InputError):
        remove_user_document(settings, "../../etc/passwd")


def test_user_document_title_with_quotes_is_stored_safely() -> None:
    settings = load_settings()
    document = add_user_document(settings, 'The "real" plan\\2026.txt', b"Plan text.")
    assert document.title == 'The "real" plan\\2026'


def test_a_different_file_with_the_same_id_is_refused_and_the_same_file_replaces() -> None:
    settings = load_settings()
    first = add_user_document(settings, "strategy.md", b"Open every clinic on time.")
    refused = r"already has 'strategy\.md' as document 'org-strategy'.*Rename 'strategy\.pdf'"
    with pytest.raises(InputError, match=refused):
        add_user_document(settings, "strategy.pdf", pdf_bytes("A different plan."))
    with pytest.raises(InputError, match=r"already has 'strategy\.md'"):
        add_user_document(settings, "Strategy.md", b"Another different plan.")
    assert read_document(first.path).text.strip() == "Open every clinic on time."  # untouched
    updated = add_user_document(settings, "strategy.md", b"Open every clinic on time, and report weekly.")
    assert updated.id == first.id and "report weekly" in updated.text
    assert [d.id for d in load_documents(settings) if d.origin == "organisation"] == ["org-strategy"]

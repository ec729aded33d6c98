"""The corpus index with the fake embedder: idempotent builds, replacement, deletion, one writer, bad corpus."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from coach.cli import main
from coach.config import PROJECT_ROOT, Settings, load_settings
from coach.corpus import add_user_document, load_principles, remove_user_document
from coach.embeddings import HashEmbedding, MiniLMEmbedding, default_embedding
from coach.errors import ConfigError, CorpusError, IndexBusy
from coach.index import CorpusIndex, IndexUnavailable, open_index

CORPUS = PROJECT_ROOT / "corpus"
ESSAY_CHUNKS = {"$and": [{"doc_id": "it-leadership-skills"}, {"kind": "chunk"}]}


@pytest.fixture(autouse=True)
def fake_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests exercise the index, not the model: use the deterministic fake embedder."""
    monkeypatch.setenv("COACH_EMBEDDINGS", "fake")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings over a writable copy of the shipped corpus."""
    shutil.copytree(CORPUS, tmp_path / "corpus")
    return load_settings(corpus_dir=tmp_path / "corpus")


def _hold_lock(lock_path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that holds the index lock for a while (prints once it has it)."""
    code = textwrap.dedent(f"""
        import sys, time
        from filelock import FileLock
        with FileLock({str(lock_path)!r}):
            print("held", flush=True)
            time.sleep({seconds})
    """)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_second_build_adds_nothing(settings: Settings) -> None:
    index = CorpusIndex(settings)
    first = index.build()
    assert first.documents == 5 and first.added == first.chunks > 5 and first.removed == 0
    second = index.build()
    assert (second.added, second.removed, second.chunks) == (0, 0, first.chunks)
    assert index.stats() == {"documents": 5, "chunks": first.chunks}


def test_changed_document_replaces_its_chunks(settings: Settings) -> None:
    index = CorpusIndex(settings)
    before = index.build()
    path = settings.corpus_dir / "it-leadership-skills.md"
    path.write_text(path.read_text(encoding="utf-8") + "\nA closing line about trust.\n", encoding="utf-8")
    old_ids = set(index.collection.get(where=ESSAY_CHUNKS)["ids"])
    report = index.build()
    new = index.collection.get(where=ESSAY_CHUNKS)
    assert report.removed == len(old_ids) and report.added == len(new["ids"])
    assert report.chunks == before.chunks + len(new["ids"]) - len(old_ids)
    assert any("A closing line about trust." in text for text in new["documents"] or [])
    assert index.stats()["chunks"] == report.chunks


def test_removed_document_loses_its_chunks(settings: Settings) -> None:
    index = CorpusIndex(settings)
    base = index.build()
    add_user_document(settings, "strategy.md", b"Our strategy: open every clinic on time.\n\nFewer systems.\n")
    with_doc = index.build()
    assert (with_doc.documents, with_doc.added, with_doc.removed) == (6, 1, 0)
    remove_user_document(settings, "org-strategy")
    report = index.build()
    assert (report.documents, report.added, report.removed, report.chunks) == (5, 0, 1, base.chunks)
    assert index.stats() == {"documents": 5, "chunks": base.chunks}
    assert not index.collection.get(where={"doc_id": "org-strategy"})["ids"]


def test_an_essay_the_catalogue_cites_cannot_vanish_silently(settings: Settings) -> None:
    (settings.corpus_dir / "what-do-it-leaders-do.md").unlink()
    with pytest.raises(CorpusError, match="cites unknown document 'what-do-it-leaders-do'"):
        CorpusIndex(settings).build()


def test_principle_keys_lead_to_the_passage_they_describe(settings: Settings) -> None:
    index = CorpusIndex(settings)
    index.build()
    passages = index.query("next steps with no named owner", k=1)  # a look-for item of milestones-owners-dates
    assert passages and "introduce milestones and review" in passages[0].text
    keys = index.collection.get(where={"kind": "key"}, include=["metadatas"])
    assert {str(m["principle_id"]) for m in keys["metadatas"] or []} == {
        p.id for p in load_principles(settings)}


def test_query_returns_verbatim_passages_with_source(settings: Settings) -> None:
    index = CorpusIndex(settings)
    index.build()
    texts = {p.stem: p.read_text(encoding="utf-8") for p in settings.corpus_dir.glob("*.md")}
    passages = index.query("uptime is just a number until we show what it achieves for the business", k=3)
    assert len(passages) == 3
    assert passages[0].doc_id == "it-leader-to-organizational-partner"
    assert passages[0].source == "002_1929283c97d2570d.txt"
    assert passages[0].score >= passages[1].score >= passages[2].score
    for passage in passages:
        assert passage.text in texts[passage.doc_id]
    only = index.query("trust", k=4, doc_ids=["what-do-it-leaders-do"])
    assert only and {p.doc_id for p in only} == {"what-do-it-leaders-do"}
    assert index.query("   ") == []


def test_a_waiting_writer_gets_the_lock_once_it_is_free(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    holder = _hold_lock(settings.data_dir / "index.lock", 1.0)
    started = time.perf_counter()
    report = CorpusIndex(settings, lock_timeout_s=20).build()
    holder.wait(timeout=10)
    assert report.added > 0 and time.perf_counter() - started >= 0.5


def test_a_second_writer_gets_index_busy(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    holder = _hold_lock(settings.data_dir / "index.lock", 5.0)
    try:
        with pytest.raises(IndexBusy, match=r"Another process.*Wait for it to finish"):
            CorpusIndex(settings, lock_timeout_s=0.3).build()
    finally:
        holder.kill()
        holder.wait()


def test_concurrent_builds_in_threads_do_not_duplicate(settings: Settings) -> None:
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(CorpusIndex(settings).build())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(r.added for r in reports)[0] == 0  # whoever came second found nothing to do
    assert CorpusIndex(settings).stats()["chunks"] == reports[0].chunks


def test_bad_corpus_file_fails_before_writing(settings: Settings) -> None:
    index = CorpusIndex(settings)
    report = index.build()
    (settings.corpus_dir / "latin1.md").write_bytes("caf\xe9".encode("latin-1"))
    (settings.corpus_dir / "it-leadership-skills.md").write_text("+++\nid = 'it-leadership-skills'\n+++\nNew.\n",
                                                                    encoding="utf-8")
    with pytest.raises(CorpusError, match=r"latin1\.md is not UTF-8"):
        index.build()
    assert index.stats() == {"documents": 5, "chunks": report.chunks}


def test_collection_reopens_in_a_new_process_from_its_stored_config(settings: Settings) -> None:
    CorpusIndex(settings).build()
    def reopen_and_query(imports: str) -> subprocess.CompletedProcess[str]:
        code = textwrap.dedent(f"""
            {imports}
            import chromadb
            from chromadb.config import Settings
            client = chromadb.PersistentClient(path={str(settings.data_dir / "chroma")!r},
                                               settings=Settings(anonymized_telemetry=False))
            collection = client.get_collection("coach-corpus-fake")  # no embedding function passed
            print(collection.query(query_texts=["Uptime is just a number"], n_results=1)["ids"][0][0])
        """)
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})

    registered = reopen_and_query("import coach.embeddings")
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.startswith("it-leader-to-organizational-partner:")
    unregistered = reopen_and_query("")  # the stored name means nothing until our module registers it
    assert unregistered.returncode != 0 and "coach-hash-fake not found" in unregistered.stderr


def test_open_index_is_cached_per_settings(settings: Settings) -> None:
    assert open_index(settings) is open_index(settings)


def test_bad_chroma_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="COACH_CHROMA_URL"):
        CorpusIndex(load_settings(chroma_url="localhost:8000"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


UNREACHABLE = "coach: Cannot reach the Chroma server at http://127.0.0.1:{port}. " \
              "Start it (chroma run) or fix COACH_CHROMA_URL.\n"


@pytest.mark.parametrize("command", [["index"], ["index", "--json"], ["chat", "-m", "How do I report uptime?"]])
def test_cli_names_an_unreachable_chroma_server_in_one_line(command: list[str], capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("COACH_CHROMA_URL", f"http://coach:s3cret@127.0.0.1:{port}")
    monkeypatch.setenv("COACH_BACKEND", "fake")
    assert main(command) == 1
    out, err = capsys.readouterr()
    assert err == UNREACHABLE.format(port=port) and out == ""  # one line, no traceback, no password


def test_a_chroma_server_lost_after_opening_is_one_line_on_query_and_build(settings: Settings) -> None:
    port = _closed_port()
    index = CorpusIndex(settings)
    index.build()
    index.settings = load_settings(corpus_dir=settings.corpus_dir, chroma_url=f"http://127.0.0.1:{port}")

    def lost(*args: object, **kwargs: object) -> None:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    for method in ("query", "get", "add", "delete"):
        setattr(index.collection, method, lost)
    for call in (lambda: index.query("uptime"), index.stats, index.build):
        with pytest.raises(IndexUnavailable, match=rf"^Cannot reach the Chroma server at http://127.0.0.1:{port}\."):
            call()


def test_an_unexpected_error_is_one_line_and_a_traceback_only_with_debug(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(settings: Settings) -> None:
        raise RuntimeError("boom sk-SENTINEL-0123\nsecond line")

    monkeypatch.setattr("coach.cli.index_cmd.open_index", broken)
    assert main(["index"]) == 1
    err = capsys.readouterr().err
    assert err == "coach: unexpected error (RuntimeError). Run again with --debug for the details and report it.\n"
    assert main(["--debug", "index"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("report it.\n")


def test_cli_index_json_twice(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["index", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["added"] == first["chunks"] > 0 and first["documents"] == 5
    assert second == {**first, "added": 0}


def test_cli_reports_a_bad_corpus_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings()
    settings.user_docs_dir.mkdir(parents=True)
    (settings.user_docs_dir / "broken.md").write_bytes(b"\xff\xfe\x00")
    assert main(["index"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("coach: Corpus file") and "broken.md" in err and "Traceback" not in err


def _index_cli(corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`coach index` over this corpus folder: (exit code, stderr)."""
    monkeypatch.setattr("coach.cli.index_cmd.load_settings", lambda: load_settings(corpus_dir=corpus))
    code = main(["index"])
    return code, capsys.readouterr().err


def _one_line(err: str) -> str:
    assert err.startswith("coach: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("how", ["directory", "no-permission"])
def test_cli_reports_an_unreadable_corpus_file_in_one_line(how: str, settings: Settings, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    target = settings.corpus_dir / "notes.md"
    if how == "directory":
        target.mkdir()
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads a file whatever its mode")
        target.write_text("Some notes.\n", encoding="utf-8")
        target.chmod(0)
    code, err = _index_cli(settings.corpus_dir, monkeypatch, capsys)
    assert code == 1 and _one_line(err).startswith(f"coach: Cannot read corpus file {target}:")
    assert "remove it from the corpus folder" in err
    assert not (settings.data_dir / "chroma").exists() or CorpusIndex(settings).stats()["chunks"] == 0


def test_cli_reports_an_empty_corpus_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = _index_cli(empty, monkeypatch, capsys)
    assert code == 1 and _one_line(err).startswith(f"coach: The corpus is empty: no .md files in {empty}.")
    assert "Restore the corpus/ folder" in err


@pytest.mark.parametrize(("change", "message", "hint"), [
    (lambda t: t.replace('name = "', 'nome = "', 1), r"principle 1 \('[a-z-]+'\), name: Field required",
     "Fix that entry"),
    (lambda t: t.replace('source = "', 'source = "no-such-essay', 1), "cites unknown document", "Set its source"),
    (lambda t: t + "\n[[principles]\n", "Cannot load the principle catalogue .*: .*line", "Fix it, or restore"),
    (lambda t: "principles = [1]\n", r"principle 1, entry: Input should be a valid dictionary", "Fix that entry"),
    (lambda t: 'principles = "none"\n', r"`principles` is not a list", "Restore it"),
], ids=["missing-field", "unknown-essay", "bad-toml", "not-a-table", "not-a-list"])
def test_cli_reports_a_bad_principle_catalogue_in_one_line_with_a_hint(
        change: Any, message: str, hint: str, settings: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    catalogue = settings.corpus_dir / "principles.toml"
    catalogue.write_text(change(catalogue.read_text(encoding="utf-8")), encoding="utf-8")
    code, err = _index_cli(settings.corpus_dir, monkeypatch, capsys)
    assert code == 1 and re.search(message, _one_line(err)) and hint in err


def test_hash_embedding_is_deterministic_and_normalised() -> None:
    import numpy as np

    embed = HashEmbedding()
    a, b, c = (np.array(v) for v in embed(["IT uptime numbers", "IT uptime numbers", "cats and dogs"]))
    assert np.allclose(a, b) and abs(np.linalg.norm(a) - 1) < 1e-5 and a.shape == (384,)
    assert float(a @ c) < 0.5
    assert HashEmbedding.build_from_config(embed.get_config()).dimensions == 384


def test_embedding_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    from chromadb.utils.embedding_functions import known_embedding_functions

    assert known_embedding_functions[HashEmbedding.name()] is HashEmbedding
    assert known_embedding_functions[MiniLMEmbedding.name()] is MiniLMEmbedding
    assert isinstance(default_embedding(), HashEmbedding)
    monkeypatch.setenv("COACH_EMBEDDINGS", "")
    assert isinstance(default_embedding(), MiniLMEmbedding)  # constructing it loads nothing yet
    monkeypatch.setenv("COACH_EMBEDDINGS", "word2vec")
    with pytest.raises(ConfigError, match="COACH_EMBEDDINGS"):
        default_embedding()

"""Data safety: the index survives a killed build and concurrent builders; a read-only or full disk gives a
clear ``CoachError`` and loses nothing already saved.

The disk cases mount a small tmpfs (needs root; skipped otherwise) so SQLite, Chroma and the file system fail
for real (a read-only remount blocks root too, where chmod would not).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from coach.config import load_settings
from coach.corpus import add_user_document
from coach.errors import CoachError, StorageError
from coach.index import CorpusIndex
from coach.session_models import Session, SessionQuery
from coach.sessions import SessionStore, close_databases

REPO = Path(__file__).resolve().parent.parent
KILL_MID_BUILD = """
import os, signal
from coach.config import load_settings
from coach.index import CorpusIndex
def progress(done, total):
    if done < total:
        os.kill(os.getpid(), signal.SIGKILL)  # die between two batches, half of the corpus written
CorpusIndex(load_settings()).build(progress)
"""


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def assert_index_complete(index: CorpusIndex) -> None:
    """Every planned chunk once: a new build adds nothing and ids/texts are unique."""
    report = index.build()
    assert report.added == 0 and report.removed == 0
    got = index.collection.get(include=["metadatas", "documents"])
    keys = [(m.get("doc_id"), m.get("kind"), d) for m, d in zip(got["metadatas"], got["documents"], strict=True)]
    assert len(keys) == len(set(keys)), "duplicate records in the index"
    assert index.stats()["chunks"] == report.chunks


def test_index_survives_a_killed_build(isolated_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("coach.index.ADD_BATCH", 4)
    done = subprocess.run([sys.executable, "-c", KILL_MID_BUILD.replace("CorpusIndex(load", "import coach.index; "
                           "coach.index.ADD_BATCH = 4; CorpusIndex(load")], env=env(), capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr[-800:]
    index = CorpusIndex(load_settings())
    partial = index.collection.count()
    report = index.build()  # the re-run completes what the killed one left
    assert 0 < partial < report.chunks + 100 and report.added > 0
    assert_index_complete(index)


def test_two_processes_indexing_at_once_do_not_corrupt_it(isolated_environment: Path) -> None:
    command = [sys.executable, "-m", "coach", "index"]
    runs = [subprocess.Popen(command, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    results = [(p.wait(timeout=180), p.stderr.read() if p.stderr else b"") for p in runs]
    for code, err in results:
        assert code == 0 or b"coach: Another process" in err, err[-800:]
        assert b"Traceback" not in err
    assert_index_complete(CorpusIndex(load_settings()))


# --- read-only and full disks --------------------------------------------------------------------------------


def mount_tmpfs(target: Path, size: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


def tmpfs_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` as the data dir, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount_tmpfs(mount, size)
    monkeypatch.setenv("COACH_DATA_DIR", str(mount / "coach"))
    try:
        yield mount
    finally:
        close_databases()
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 4 MB tmpfs as the data dir."""
    yield from tmpfs_data_dir(tmp_path, monkeypatch, "4m")


def save(text: str) -> Session:
    return SessionStore(load_settings()).save(Session(type="rewrite", audience="cfo", kind="status", draft=text,
                                                      result={"rewrite": text}))


def test_read_only_data_dir_is_a_clear_error_and_loses_nothing(small_disk: Path) -> None:
    kept = save("Uptime was 99.9% in Q3.")
    add_user_document(load_settings(), "goals.md", b"# Goals\n\nOne platform per business line.\n")
    close_databases()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(StorageError, match="session database") as caught:
        save("A new draft that cannot be stored.")
    assert "Traceback" not in str(caught.value)
    with pytest.raises(CoachError):
        add_user_document(load_settings(), "more.md", b"# More\n\nText.\n")
    close_databases()
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    sessions = SessionStore(load_settings()).list(SessionQuery())
    assert [s.id for s in sessions] == [kept.id] and sessions[0].draft == kept.draft
    assert (load_settings().user_docs_dir / "org-goals.md").is_file()


def test_full_disk_is_a_clear_error_and_loses_nothing(small_disk: Path) -> None:
    kept = save("Uptime was 99.9% in Q3.")
    settings = load_settings()
    add_user_document(settings, "goals.md", b"# Goals\n\nOne platform per business line.\n")
    original = (settings.user_docs_dir / "org-goals.md").read_bytes()
    filler = small_disk / "filler"
    with open(filler, "wb") as handle:  # fill the disk to the last byte
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError:
            pass
    with pytest.raises(StorageError, match=r"full|disk|session database"):
        save("A long draft. " * 20_000)
    with pytest.raises(CoachError):
        add_user_document(settings, "goals.md", ("# Goals\n\n" + "New text. " * 50_000).encode())
    filler.unlink()
    close_databases()
    sessions = SessionStore(load_settings()).list(SessionQuery())
    assert [s.id for s in sessions] == [kept.id]
    assert (settings.user_docs_dir / "org-goals.md").read_bytes() == original
    assert not list(settings.user_docs_dir.glob(".upload-*")), "a half-written upload was left behind"


@pytest.fixture
def index_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 64 MB tmpfs as the data dir (room for the index)."""
    yield from tmpfs_data_dir(tmp_path, monkeypatch, "64m")


def test_index_build_on_a_read_only_data_dir_is_a_clear_error_and_keeps_the_old_index(index_disk: Path) -> None:
    # The builds run in child processes: an open Chroma store in this process would keep the remount busy.
    command = [sys.executable, "-m", "coach", "index"]
    first = subprocess.run(command, env=env(), capture_output=True, timeout=300)
    assert first.returncode == 0, first.stderr[-800:]
    add_user_document(load_settings(), "goals.md", b"# Goals\n\nOne platform per business line.\n")
    close_databases()
    chroma = load_settings().data_dir / "chroma"
    before = {p.relative_to(chroma): p.read_bytes() for p in chroma.rglob("*") if p.is_file()}
    subprocess.run(["mount", "-o", "remount,ro", str(index_disk)], check=True)
    try:
        refused = subprocess.run(command, env=env(), capture_output=True, timeout=300)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(index_disk)], check=True)
    err = refused.stderr.decode()
    assert refused.returncode != 0 and "Traceback" not in err, err[-800:]
    after = {p.relative_to(chroma): p.read_bytes() for p in chroma.rglob("*") if p.is_file()}
    assert after == before  # the old index, byte for byte
    index = CorpusIndex(load_settings())
    assert index.build().added > 0 and index.query("one platform per business line", k=1)
    lines = [line for line in err.splitlines() if line.startswith("coach: ")]
    assert len(lines) == 1 and "unexpected error" not in lines[0], err[-800:]  # says what is wrong and the fix
    assert re.search(r"read-only|permission|cannot write", lines[0], re.IGNORECASE), lines[0]


def test_autosave_on_a_read_only_data_dir_is_a_clear_error_and_keeps_the_previous_draft(small_disk: Path) -> None:
    from coach.sessions import DraftStore

    DraftStore(load_settings()).save_draft("rewrite", "Uptime was 99.9% in Q3.")
    close_databases()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        with pytest.raises(StorageError) as caught:
            DraftStore(load_settings()).save_draft("rewrite", "Uptime was 99.95% in Q3, a new high.")
        assert "Traceback" not in str(caught.value)
    finally:
        close_databases()
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert DraftStore(load_settings()).load_draft("rewrite") == "Uptime was 99.9% in Q3."

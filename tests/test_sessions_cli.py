"""`coach sessions` end to end through the CLI entry point (SQLite in the test's data dir)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_sessions_support import chat_session, sample_session

from coach.cli import main
from coach.config import load_settings
from coach.sessions import SessionStore, close_databases


@pytest.fixture
def store() -> Iterator[SessionStore]:
    """The store the CLI uses (settings from the test environment)."""
    yield SessionStore(load_settings())
    close_databases()


def _stdin_is_tty(monkeypatch: pytest.MonkeyPatch, tty: bool) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: tty)


def test_list_json_search_and_type(store: SessionStore, capsys: pytest.CaptureFixture[str]) -> None:
    rewrite, chat = store.save(sample_session()), store.save(chat_session())
    assert main(["sessions", "list", "--json"]) == 0
    assert {row["id"] for row in json.loads(capsys.readouterr().out)} == {rewrite.id, chat.id}
    assert main(["sessions", "list", "--json", "--type", "chat"]) == 0
    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == [chat.id]
    assert main(["sessions", "list", "--search", "SLA held"]) == 0
    out = capsys.readouterr().out
    assert rewrite.id in out and chat.id not in out


def test_list_strips_terminal_control_characters(store: SessionStore, capsys: pytest.CaptureFixture[str]) -> None:
    store.save(sample_session(draft="Status \x1b[2J\x1b[31mred"))
    assert main(["sessions", "list"]) == 0
    assert "\x1b" not in capsys.readouterr().out


def test_show_json_is_the_stored_session(store: SessionStore, capsys: pytest.CaptureFixture[str]) -> None:
    saved = store.save(sample_session(notes="remember"))
    assert main(["sessions", "show", saved.id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(saved.model_dump_json())
    assert main(["sessions", "show", saved.id]) == 0
    assert "## Rewrite" in capsys.readouterr().out


def test_show_unknown_id_is_a_clear_error(store: SessionStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "show", "0" * 32]) == 1
    assert "No session" in capsys.readouterr().err


def test_export_all_to_file_then_import_round_trips(store: SessionStore, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    originals = sorted([store.save(sample_session(rating=3)), store.save(chat_session())], key=lambda s: s.id)
    out = tmp_path / "export.json"
    assert main(["sessions", "export", "--all", "--format", "json", "--out", str(out)]) == 0
    for session in originals:
        store.delete(session.id)
    assert main(["sessions", "import", str(out)]) == 0
    assert "imported 2 sessions" in capsys.readouterr().out
    assert sorted(store.list(), key=lambda s: s.id) == originals


def test_export_one_as_markdown_and_refuse_an_empty_selection(store: SessionStore,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    saved = store.save(sample_session())
    assert main(["sessions", "export", saved.id, "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("# Weekly status 0")
    assert main(["sessions", "export", "--format", "md"]) == 2
    assert "--all" in capsys.readouterr().err


def test_import_of_a_bad_file_explains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    assert main(["sessions", "import", str(bad)]) == 2
    assert "not a coach sessions export" in capsys.readouterr().err
    assert main(["sessions", "import", str(tmp_path / "missing.json")]) == 2


def test_delete_without_tty_and_without_yes_refuses(store: SessionStore, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    saved = store.save(sample_session())
    _stdin_is_tty(monkeypatch, False)
    assert main(["sessions", "delete", saved.id]) == 2
    assert "--yes" in capsys.readouterr().err
    assert store.get(saved.id) is not None
    assert main(["sessions", "delete", saved.id, "--yes"]) == 0
    assert store.get(saved.id) is None


@pytest.mark.parametrize(("answer", "deleted"), [("y", True), ("", False), ("no", False)])
def test_delete_on_a_tty_asks(store: SessionStore, monkeypatch: pytest.MonkeyPatch, answer: str,
                              deleted: bool) -> None:
    saved = store.save(sample_session())
    _stdin_is_tty(monkeypatch, True)
    prompts: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or answer)
    assert main(["sessions", "delete", saved.id]) == (0 if deleted else 1)
    assert saved.id in prompts[0]
    assert (store.get(saved.id) is None) is deleted


def test_stats_json_and_text(store: SessionStore, capsys: pytest.CaptureFixture[str]) -> None:
    store.save(sample_session())
    assert main(["sessions", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["weeks"][0]["fk_grade_before"] == 12.0
    assert main(["sessions", "stats"]) == 0
    assert "business-metrics (1)" in capsys.readouterr().out

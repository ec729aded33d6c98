"""The session store's behaviour, run against SQLite and (marked ``postgres``) a real PostgreSQL server."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from test_sessions_support import BACKENDS, backend_database, chat_session, rewrite_result, sample_session, settings_for

from coach.config import Settings
from coach.errors import InputError, StorageError
from coach.session_models import Session, SessionQuery, derive_title
from coach.sessions import DraftStore, SessionStore, open_database

SENTINEL_KEY = "sk-SENTINEL-4f1d2c9e8b7a6f5e4d3c2b1a0"


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, isolated_environment: Path) -> Iterator[Settings]:
    """Settings pointing at a fresh database of each backend."""
    with backend_database(request.param, isolated_environment) as url:
        yield settings_for(isolated_environment, url)


@pytest.fixture
def store(settings: Settings) -> SessionStore:
    """An unscoped store (one local user)."""
    return SessionStore(settings)


def test_save_then_get_returns_an_equal_session(store: SessionStore) -> None:
    saved = store.save(sample_session())
    assert store.get(saved.id) == saved
    assert saved.title == "Weekly status 0"
    assert saved.principles == ["business-metrics"]


def test_save_twice_updates_in_place_and_keeps_created_at(store: SessionStore) -> None:
    first = store.save(sample_session())
    second = store.save(first.model_copy(update={"notes": "sent to the CFO"}))
    assert [s.id for s in store.list()] == [first.id]
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    assert store.get(first.id).notes == "sent to the CFO"  # type: ignore[union-attr]


def test_get_unknown_id_is_none_and_delete_reports_it(store: SessionStore) -> None:
    assert store.get("0" * 32) is None
    assert store.delete("0" * 32) is False


def test_delete_removes_the_session_and_its_principles(store: SessionStore) -> None:
    saved = store.save(sample_session())
    assert store.delete(saved.id) is True
    assert store.get(saved.id) is None
    assert store.list(SessionQuery(principle="business-metrics")) == []


def test_list_is_newest_first_with_limit_and_offset(store: SessionStore) -> None:
    start = datetime(2025, 3, 3, 9, tzinfo=UTC)
    ids = [store.save(sample_session(i, created_at=start + timedelta(hours=i))).id for i in range(5)]
    assert [s.id for s in store.list()] == ids[::-1]
    assert [s.id for s in store.list(SessionQuery(limit=2, offset=1))] == ids[::-1][1:3]
    assert [s.id for s in store.list(SessionQuery(offset=3))] == ids[::-1][3:]


def test_search_is_case_insensitive_over_draft_rewrite_messages_and_notes(store: SessionStore) -> None:
    rewrite = store.save(sample_session())
    chat = store.save(chat_session(notes="ask Dana"))
    assert [s.id for s in store.list(SessionQuery(search="SLA HELD"))] == [rewrite.id]
    assert [s.id for s in store.list(SessionQuery(search="saving $200k"))] == [rewrite.id]
    assert [s.id for s in store.list(SessionQuery(search="the board"))] == [chat.id]
    assert [s.id for s in store.list(SessionQuery(search="dana"))] == [chat.id]


def test_search_treats_like_wildcards_as_text(store: SessionStore) -> None:
    store.save(sample_session(draft="uptime 99.9%"))
    store.save(sample_session(draft="uptime 99 point 9"))
    assert len(store.list(SessionQuery(search="99.9%"))) == 1
    assert store.list(SessionQuery(search="_9%")) == []


def test_filters_by_type_audience_kind_principle_and_dates(store: SessionStore) -> None:
    old = store.save(sample_session(created_at=datetime(2024, 1, 10, tzinfo=UTC)))
    cto = store.save(sample_session(audience="CTO", kind="incident",
                                    result=rewrite_result(principles=("lead-with-outcome",))))
    chat = store.save(chat_session())
    assert [s.id for s in store.list(SessionQuery(type="chat"))] == [chat.id]
    assert [s.id for s in store.list(SessionQuery(audience="CTO"))] == [cto.id]
    assert [s.id for s in store.list(SessionQuery(kind="incident"))] == [cto.id]
    assert [s.id for s in store.list(SessionQuery(principle="lead-with-outcome"))] == [cto.id]
    until = datetime(2024, 2, 1, tzinfo=UTC)
    assert [s.id for s in store.list(SessionQuery(until=until))] == [old.id]
    assert {s.id for s in store.list(SessionQuery(since=until))} == {cto.id, chat.id}


def test_rating_and_notes_are_saved_and_validated(store: SessionStore) -> None:
    saved = store.save(sample_session())
    assert store.set_rating(saved.id, 5).rating == 5
    assert store.set_notes(saved.id, "better").notes == "better"
    again = store.get(saved.id)
    assert again is not None and (again.rating, again.notes) == (5, "better")
    assert store.set_rating(saved.id, None).rating is None
    with pytest.raises(StorageError, match="1 to 5"):
        store.set_rating(saved.id, 6)
    with pytest.raises(StorageError, match="No session"):
        store.set_notes("f" * 32, "x")


def test_save_fields_creates_then_changes_only_its_fields(store: SessionStore) -> None:
    """A chat saved after every turn must not undo a rating or notes set meanwhile on the Sessions page."""
    first = chat_session()
    fields = first.model_dump(exclude={"id", "rating", "notes", "created_at", "updated_at"})
    created = store.save_fields(first.id, fields)
    assert created.id == first.id and store.get(first.id) is not None
    store.set_rating(first.id, 5)
    store.set_notes(first.id, "good pitch")
    longer = [*first.messages, *first.messages]
    changed = store.save_fields(first.id, {**fields, "messages": longer})
    again = store.get(first.id)
    assert again is not None and len(again.messages) == 4 and (again.rating, again.notes) == (5, "good pitch")
    assert changed.created_at == created.created_at


def test_stats_average_scores_per_week_and_rank_principles(store: SessionStore) -> None:
    monday = datetime(2025, 3, 3, 10, tzinfo=UTC)
    store.save(sample_session(created_at=monday, result=rewrite_result(before=12, after=8)))
    store.save(sample_session(created_at=monday + timedelta(days=2),
                              result=rewrite_result(("lead-with-outcome", "business-metrics"), before=10, after=6)))
    store.save(sample_session(created_at=monday + timedelta(days=7), result=rewrite_result(before=9, after=7)))
    store.save(chat_session(created_at=monday + timedelta(days=8)))
    stats = store.stats()
    assert stats.sessions == 4
    first, second = stats.weeks
    assert (first.week_start.isoformat(), first.rewrites) == ("2025-03-03", 2)
    assert (first.fk_grade_before, first.fk_grade_after) == (11.0, 7.0)
    assert (first.jargon_before, first.jargon_after) == (4.0, 1.0)
    assert (second.sessions, second.rewrites, second.fk_grade_after) == (2, 1, 7.0)
    assert [(p.principle, p.sessions) for p in stats.top_principles] == [
        ("business-metrics", 3), ("lead-with-outcome", 1)]


def test_export_import_round_trips_exactly(settings: Settings, tmp_path: Path) -> None:
    store = SessionStore(settings)
    originals = [store.save(sample_session(rating=4, notes="line 1\nline 2")), store.save(chat_session())]
    exported = store.export(None, "json")
    for session in originals:
        store.delete(session.id)
    ids = store.import_json(exported)
    assert sorted(ids) == sorted(s.id for s in originals)
    assert sorted(store.list(), key=lambda s: s.id) == sorted(originals, key=lambda s: s.id)
    assert json.loads(store.export(None, "json"))["sessions"] == json.loads(exported)["sessions"]


def test_import_rejects_what_is_not_an_export(store: SessionStore) -> None:
    with pytest.raises(InputError, match="not JSON"):
        store.import_json("{nope")
    with pytest.raises(InputError, match="not a coach sessions export"):
        store.import_json('{"sessions": []}')
    bad = json.loads(store.export(None, "json"))
    bad["sessions"] = [{"type": "poem"}]
    with pytest.raises(InputError, match="damaged"):
        store.import_json(json.dumps(bad))
    assert store.list() == []


def test_markdown_export_fences_user_text(store: SessionStore) -> None:
    saved = store.save(sample_session(draft="# Heading\n```\n<script>alert(1)</script>\n```"))
    markdown = store.export([saved.id], "md")
    assert "\n````\n# Heading\n```\n<script>alert(1)</script>\n```\n````" in markdown
    assert "## Rewrite" in markdown and "business-metrics" in markdown


def test_export_of_unknown_id_fails_clearly(store: SessionStore) -> None:
    with pytest.raises(StorageError, match="No session"):
        store.export(["a" * 32], "md")


def test_corrupt_rows_are_skipped_with_a_warning(settings: Settings, store: SessionStore,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    good, not_json, wrong_shape = (store.save(sample_session(i)) for i in range(3))
    with open_database(settings).engine.begin() as conn:
        conn.execute(text("UPDATE sessions SET body = '{not json' WHERE id = :id"), {"id": not_json.id})
        conn.execute(text("UPDATE sessions SET body = :b WHERE id = :id"),
                     {"id": wrong_shape.id, "b": json.dumps({"id": wrong_shape.id, "type": "poem"})})
    with caplog.at_level(logging.WARNING, logger="coach.sessions"):
        assert [s.id for s in store.list()] == [good.id]
    assert {not_json.id, wrong_shape.id} <= {w for r in caplog.records for w in r.getMessage().split()}
    with pytest.raises(StorageError, match="damaged"):
        store.get(not_json.id)
    assert store.delete(not_json.id) is True


def test_a_user_cannot_reach_another_users_sessions(settings: Settings) -> None:
    alice, bob = SessionStore(settings, user_id="alice"), SessionStore(settings, user_id="bob")
    mine = alice.save(sample_session())
    assert mine.user_id == "alice"
    assert bob.get(mine.id) is None
    assert bob.list() == [] and bob.list(SessionQuery(search="status")) == []
    assert bob.delete(mine.id) is False
    with pytest.raises(StorageError):
        bob.set_notes(mine.id, "mine now")
    with pytest.raises(StorageError, match="id is taken"):
        bob.save(mine.model_copy(update={"notes": "overwritten"}))
    assert alice.get(mine.id) == mine
    assert bob.export(None, "json").count('"id"') == 0
    assert bob.stats().sessions == 0


def test_drafts_autosave_per_user_and_key(settings: Settings) -> None:
    drafts, other = DraftStore(settings), DraftStore(settings, user_id="bob")
    assert drafts.load_draft("rewrite") is None
    drafts.save_draft("rewrite", "half-typed")
    drafts.save_draft("rewrite", "half-typed status report")
    drafts.save_draft("chat", "what do I")
    assert drafts.load_draft("rewrite") == "half-typed status report"
    assert other.load_draft("rewrite") is None
    drafts.clear_draft("rewrite")
    assert drafts.load_draft("rewrite") is None
    assert DraftStore(settings).load_draft("chat") == "what do I"


def test_no_key_or_password_reaches_the_database_or_an_export(monkeypatch: pytest.MonkeyPatch,
                                                             settings: Settings) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    keyed = settings.model_copy(update={"openai_api_key": settings_for(settings.data_dir, None).openai_api_key})
    assert keyed.openai_api_key is not None
    password = settings.database_url and settings.database_url.get_secret_value().split(":")[2].split("@")[0]
    store, drafts = SessionStore(keyed), DraftStore(keyed)
    pasted = f"my key is {SENTINEL_KEY} and the db password is {password}"
    saved = store.save(sample_session(draft=pasted, notes=pasted))
    store.save(chat_session(messages=[{"role": "user", "content": pasted}]))
    drafts.save_draft("rewrite", pasted)
    assert "[redacted]" in saved.draft
    everything = store.export(None, "json") + store.export(None, "md") + (drafts.load_draft("rewrite") or "")
    everything += _database_contents(keyed)
    assert SENTINEL_KEY not in everything
    if password:
        assert password not in everything


def _database_contents(settings: Settings) -> str:
    """Every stored byte (SQLite files) or every stored text value (PostgreSQL)."""
    if settings.database_url is None:
        files = sorted(settings.data_dir.glob("sessions.db*"))
        return "".join(f.read_bytes().decode("latin-1") for f in files)
    with open_database(settings).engine.connect() as conn:
        rows = [*conn.execute(text("SELECT body, search_text, title FROM sessions")),
                *conn.execute(text("SELECT text, key FROM session_drafts"))]
    return json.dumps([list(r) for r in rows])


def test_session_model_validates_and_derives() -> None:
    assert derive_title("\n\n---\nSubject: Q3 outage review\nbody") == "Q3 outage review"
    long = derive_title("word " * 40)
    assert len(long) <= 80 and long.endswith("…")
    assert derive_title("   \n***\n") == "Untitled"
    assert chat_session().title == "How do I tell the board about the outage?"
    with pytest.raises(ValidationError):
        Session(type="rewrite", rating=0)
    with pytest.raises(ValidationError):
        Session(type="rewrite", result={"feedback": []})  # a result without a rewrite
    assert Session(type="chat", created_at=datetime(2025, 1, 1, 12, tzinfo=UTC) + timedelta(0)).created_at.tzinfo

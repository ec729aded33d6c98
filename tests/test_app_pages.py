"""AppTest tests of the Chat, Sessions, Library and Settings pages on the fake model, error paths included."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest
from test_app_support import (
    TIMEOUT_S,
    DownModel,
    chart_rows,
    errors,
    markdown_text,
    open_page,
    shown,
    stub_result,
    use_fakes,
)

from coach import testing
from coach.config import Settings, load_settings
from coach.errors import StorageError
from coach.identity import SignInRequired
from coach.session_models import Message, Session
from coach.sessions import SessionStore


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    use_fakes(monkeypatch)


def save_rewrite(title_draft: str = "Uptime was 99.9% in Q3.", **fields: Any) -> Session:
    result = stub_result(title_draft).model_dump(mode="json")
    values: dict[str, Any] = {"type": "rewrite", "audience": "cfo", "kind": "status", "draft": title_draft,
                              "result": result, **fields}
    return SessionStore(load_settings()).save(Session(**values))


def listed_titles(at: AppTest) -> list[str]:
    """The titles offered by the 'Open a session' picker, newest first."""
    pickers = [s for s in at.selectbox if s.key == "session_open"]
    return [option.rsplit(" · ", 1)[-1] for option in pickers[0].options] if pickers else []


# ---- sign-in ---------------------------------------------------------------------------------------

PAGES = ["rewrite_page", "chat_page", "sessions_page", "library_page", "settings_page"]
SIGN_IN = "Sign in to use the coach."


def nobody_signed_in(settings: Settings) -> str | None:
    raise SignInRequired(SIGN_IN, hint="Use the Sign in button.")


def page_content(at: AppTest) -> list[object]:
    """Everything a page shows of its own: titles, text, inputs, tabs, tables, chat."""
    return [*at.title, *at.markdown, *at.text_area, *at.text_input, *at.chat_input, *at.tabs, *at.dataframe,
            *at.file_uploader, *at.button, *at.radio, *at.selectbox, *at.expander, *at.error]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_stops_at_the_sign_in_prompt(page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    save_rewrite("Secret plan: close the Lyon office.")
    monkeypatch.setattr("coach.ui.context.current_user", nobody_signed_in)
    at = open_page(page).run()
    assert not at.exception
    assert [shown(str(w.value)) for w in at.warning] == [f"{SIGN_IN} Use the Sign in button."]
    assert page_content(at) == []


def test_the_app_shell_stops_at_the_sign_in_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("coach.ui.context.current_user", nobody_signed_in)
    at = AppTest.from_file(str(Path(__file__).parent.parent / "app.py"), default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert [shown(str(w.value)) for w in at.warning] == [f"{SIGN_IN} Use the Sign in button."]
    assert page_content(at) == []


def test_a_signed_in_chat_turn_is_saved_as_that_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("coach.ui.context.current_user", lambda settings: "alice@example.com")
    at = open_page("chat_page").run()
    at.chat_input(key="chat_text").set_value("How do I report IT metrics to the CFO?").run()
    assert not errors(at)
    saved = SessionStore(load_settings()).list()
    assert [s.user_id for s in saved] == ["alice@example.com"]
    assert SessionStore(load_settings(), user_id="bob@example.com").list() == []


# ---- chat -------------------------------------------------------------------------------------------


def test_chat_turn_is_shown_with_citations_and_saved() -> None:
    at = open_page("chat_page").run()
    at.chat_input(key="chat_text").set_value("How do I report IT metrics to the CFO?").run()
    assert not at.exception and not errors(at)
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    saved = SessionStore(load_settings()).list()
    assert len(saved) == 1 and saved[0].type == "chat" and len(saved[0].messages) == 2


def test_chat_with_model_down_shows_a_short_error_and_keeps_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testing, "FakeChatModel", DownModel)
    at = open_page("chat_page").run()
    at.chat_input(key="chat_text").set_value("How do I explain an outage?").run()
    assert errors(at) == ["The model server cannot be reached. Start it, then try again."]
    assert at.code[0].value == "How do I explain an outage?"
    assert not at.exception
    assert SessionStore(load_settings()).list() == []  # nothing half-saved


def test_roleplay_turn_and_debrief() -> None:
    at = open_page("chat_page").run()
    at.segmented_control(key="chat_mode").set_value("roleplay").run()
    at.selectbox(key="persona").set_value("cfo").run()
    at.chat_input(key="chat_text").set_value("I need budget to replace the ERP: it saves 200 hours a month.").run()
    assert not errors(at)
    at.button(key="debrief_button").click().run()
    assert not at.exception and not errors(at)
    assert any(s.value == "Debrief" for s in at.subheader)
    session = SessionStore(load_settings()).list()[0]
    assert session.type == "roleplay" and session.audience == "cfo"


def test_empty_chat_message_is_refused() -> None:
    at = open_page("chat_page").run()
    at.chat_input(key="chat_text").set_value("   ").run()
    assert not at.exception and not errors(at)
    assert len(at.chat_message) == 0


# ---- sessions ---------------------------------------------------------------------------------------


def test_sessions_list_detail_rating_notes_and_export() -> None:
    saved = save_rewrite()
    at = open_page("sessions_page").run()
    assert not at.exception and not errors(at)
    assert at.selectbox(key="session_open").value == saved.id
    assert "Unscheduled downtime" in markdown_text(at)  # the same result views as the Rewrite page
    at.feedback(key=f"session-thumbs-{saved.id}").set_value(1).run()
    at.text_area(key=f"notes-{saved.id}").input("Sent to the CFO on Monday.")
    at.button(key=f"save-notes-{saved.id}").click().run()
    stored = SessionStore(load_settings()).get(saved.id)
    assert stored is not None and stored.rating == 5 and stored.notes == "Sent to the CFO on Monday."
    labels = [b.label for b in at.get("download_button")]
    assert "Export this session (Markdown)" in labels


def test_the_export_of_every_matching_session_is_built_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    save_rewrite("Patch window moved to Friday.")
    save_rewrite("Uptime was 99.9% in Q3.")
    exports: list[object] = []
    real_export = SessionStore.export

    def counted(self: SessionStore, selection: Any, format: Any = "json") -> str:
        exports.append(selection)
        return real_export(self, selection, format)

    monkeypatch.setattr(SessionStore, "export", counted)
    at = open_page("sessions_page").run()
    at.text_input(key="session_search").input("friday").run()
    assert not [e for e in exports if not isinstance(e, list)]  # only the open session's own export so far
    assert "Export all matching (JSON)" not in [b.label for b in at.get("download_button")]
    at.button(key="prepare_export").click().run()
    assert "Export all matching (JSON)" in [b.label for b in at.get("download_button")]
    at.run()  # a rerun does not build it again
    bulk = [e for e in exports if not isinstance(e, list)]
    assert len(bulk) == 2 and all(getattr(q, "search", None) == "friday" for q in bulk)  # Markdown and JSON once


@pytest.mark.parametrize(("stored", "thumb", "listed"), [(5, 1, "helpful"), (4, 1, "helpful"), (3, None, "3/5"),
                                                         (2, 0, "not helpful"), (None, None, "")])
def test_a_stored_rating_shows_as_thumbs(stored: int | None, thumb: int | None, listed: str) -> None:
    saved = save_rewrite(rating=stored)  # 2-4 were given with stars by earlier versions
    at = open_page("sessions_page").run()
    assert at.feedback(key=f"session-thumbs-{saved.id}").value == thumb
    table = next(d.value for d in at.dataframe if "rating" in d.value)
    assert list(table["rating"]) == [listed]
    flipped = 0 if thumb else 1
    at.feedback(key=f"session-thumbs-{saved.id}").set_value(flipped).run()
    stored_now = SessionStore(load_settings()).get(saved.id)
    assert stored_now is not None and stored_now.rating == (5 if flipped else 1)


def test_sessions_search_filters_and_empty_states() -> None:
    at = open_page("sessions_page").run()
    assert any("No sessions yet" in str(i.value) for i in at.info)
    save_rewrite("Patch window moved to Friday.")
    at.run()
    at.text_input(key="session_search").input("no such words").run()
    assert any("No session matches" in str(i.value) for i in at.info)
    at.text_input(key="session_search").input("patch window").run()
    assert at.selectbox(key="session_open").options[0].endswith("Patch window moved to Friday.")


def test_sessions_filter_by_type_audience_kind_principle_and_dates() -> None:
    save_rewrite("Uptime was 99.9% in Q3.", created_at=datetime(2026, 3, 2, 9, tzinfo=UTC))
    save_rewrite("New laptops for the sales team.", audience="coo", kind="email",
                 result=stub_result("x", feedback=[]).model_dump(mode="json"),
                 created_at=datetime(2026, 3, 20, 9, tzinfo=UTC))
    SessionStore(load_settings()).save(Session(
        type="roleplay", audience="board-member", kind="outage", created_at=datetime(2026, 4, 10, 9, tzinfo=UTC),
        messages=[Message(role="user", content="Last week's outage cost us two hours of sales.")]))
    at = open_page("sessions_page").run()
    assert not errors(at)
    assert len(listed_titles(at)) == 3
    assert "a sceptical board member (role-play)" in at.selectbox(key="session_audience").options
    at.selectbox(key="session_type").set_value("roleplay").run()
    assert listed_titles(at) == ["Last week's outage cost us two hours of sales."]
    at.selectbox(key="session_type").set_value("any")
    at.selectbox(key="session_audience").set_value("board-member").run()
    assert listed_titles(at) == ["Last week's outage cost us two hours of sales."]
    at.selectbox(key="session_audience").set_value("any")
    at.selectbox(key="session_kind").set_value("email").run()
    assert listed_titles(at) == ["New laptops for the sales team."]
    at.selectbox(key="session_kind").set_value("any")
    at.selectbox(key="session_principle").set_value("business-metrics").run()
    assert listed_titles(at) == ["Uptime was 99.9% in Q3."]
    at.selectbox(key="session_principle").set_value("any")
    at.date_input(key="session_dates").set_value((date(2026, 3, 1), date(2026, 3, 20))).run()
    assert listed_titles(at) == ["New laptops for the sales team.", "Uptime was 99.9% in Q3."]  # both days included
    at.date_input(key="session_dates").set_value((date(2026, 4, 1), date(2026, 4, 30))).run()
    assert listed_titles(at) == ["Last week's outage cost us two hours of sales."]


def test_sessions_are_listed_a_page_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("coach.ui.sessions_page.PAGE_SIZE", 2)
    for day in range(1, 6):
        save_rewrite(f"Status note {day}.", created_at=datetime(2026, 3, day, tzinfo=UTC))
    at = open_page("sessions_page").run()
    assert listed_titles(at) == ["Status note 5.", "Status note 4."]
    assert at.button(key="session_newer").disabled
    at.button(key="session_older").click().run()
    assert listed_titles(at) == ["Status note 3.", "Status note 2."]
    at.button(key="session_older").click().run()
    assert listed_titles(at) == ["Status note 1."]
    assert at.button(key="session_older").disabled
    at.text_input(key="session_search").input("status note").run()  # new filters: back to the newest
    assert listed_titles(at) == ["Status note 5.", "Status note 4."]


def test_progress_charts_show_scores_per_week_and_principle_names() -> None:
    save_rewrite("Uptime was 99.9% in Q3.", created_at=datetime(2026, 3, 2, tzinfo=UTC))
    save_rewrite("MTTR improved.", created_at=datetime(2026, 3, 10, tzinfo=UTC))
    at = open_page("sessions_page").run()
    assert any(e.label.startswith("Your progress · 2 session(s)") for e in at.expander)
    grade, jargon = chart_rows(at)[:2]
    assert {(r["week"], r["value -- streamlit-generated"]) for r in grade if r["color -- streamlit-generated"]
            == "rewrite"} == {("02 Mar", 9.0), ("09 Mar", 9.0)}
    assert {r["value -- streamlit-generated"] for r in jargon} == {3.0, 0.0}
    flagged = at.dataframe[0].value  # names, not ids
    assert list(flagged["principle"]) == ["Business-focused, not IT-focused metrics"]
    assert list(flagged["sessions"]) == [2]


def test_a_storage_error_on_the_sessions_page_is_one_short_message(monkeypatch: pytest.MonkeyPatch) -> None:
    save_rewrite()

    def locked(self: SessionStore, query: Any = None) -> list[Session]:
        raise StorageError("The sessions database is locked by another program.", hint="Close it, then reload.")

    monkeypatch.setattr(SessionStore, "list", locked)
    at = open_page("sessions_page").run()
    assert not at.exception
    assert errors(at) == ["The sessions database is locked by another program. Close it, then reload."]
    assert not at.info  # not "No sessions yet": the list could not be read


def test_delete_needs_confirmation() -> None:
    saved = save_rewrite()
    at = open_page("sessions_page").run()
    assert SessionStore(load_settings()).get(saved.id) is not None  # opening the page deletes nothing
    at.button(key=f"delete-{saved.id}").click().run()
    assert SessionStore(load_settings()).get(saved.id) is None


# ---- library ----------------------------------------------------------------------------------------


def test_library_lists_essays_and_principles() -> None:
    at = open_page("library_page").run()
    assert not at.exception and not errors(at)
    assert [t.label for t in at.tabs] == ["Your organisation", "Principles", "Essays"]
    assert len(at.expander) >= 5 + 12  # five essays, and a quote per principle


def test_add_and_remove_an_organisation_document() -> None:
    at = open_page("library_page").run()
    text = "Our strategy: grow online sales by 20% in 2026.\n\nIT supports the sales team first.\u200b"
    at.file_uploader(key="library_upload").set_value(("strategy.md", text.encode(), "text/markdown")).run()
    at.button(key="library_add").click().run()
    assert not errors(at), errors(at)
    assert any("Added strategy" in str(s.value) for s in at.success)
    assert any("invisible character" in str(w.value) for w in at.warning)
    settings = load_settings()
    assert (settings.user_docs_dir / "org-strategy.md").is_file()
    at.button(key="remove-org-strategy").click().run()
    assert not (settings.user_docs_dir / "org-strategy.md").exists()


def test_a_failed_remove_shows_its_error_and_keeps_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("library_page").run()
    at.file_uploader(key="library_upload").set_value(("strategy.md", b"Grow online sales by 20%.", "text/markdown"))
    at.run()
    at.button(key="library_add").click().run()
    builds: list[object] = []
    monkeypatch.setattr("coach.index.CorpusIndex.build", lambda *args, **kwargs: builds.append(args))

    def read_only(settings: Settings, doc_id: str) -> None:
        raise StorageError("The library folder is read-only.", hint="Check its permissions.")

    monkeypatch.setattr("coach.ui.library_page.remove_user_document", read_only)
    at.button(key="remove-org-strategy").click().run()
    assert errors(at) == ["The library folder is read-only. Check its permissions."]
    assert builds == []  # no reindex after a failed remove
    assert (load_settings().user_docs_dir / "org-strategy.md").is_file()
    assert any(b.key == "remove-org-strategy" for b in at.button)  # still listed


def test_library_refuses_an_oversized_or_wrong_upload() -> None:
    at = open_page("library_page").run()
    at.file_uploader(key="library_upload").set_value(("big.txt", b"x" * (6 * 1024 * 1024), "text/plain")).run()
    at.button(key="library_add").click().run()
    assert any("the limit is 5 MB" in e for e in errors(at))
    at.file_uploader(key="library_upload").set_value(("fake.pdf", b"not a pdf at all", "application/pdf")).run()
    at.button(key="library_add").click().run()
    assert errors(at) and not at.exception
    assert not load_settings().user_docs_dir.exists() or not list(load_settings().user_docs_dir.glob("*.md"))


# ---- settings ---------------------------------------------------------------------------------------


def test_settings_key_stays_in_the_browser_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    sentinel = "sk-test-SENTINEL-0123456789abcdef"
    at = open_page("settings_page").run()
    assert not at.exception and not errors(at)
    at.radio[0].set_value("openai")
    at.text_input[2].input(sentinel)
    at.button[0].click().run()  # the form's submit button
    assert not errors(at)
    assert at.session_state["coach_settings"]["openai_api_key"] == sentinel
    assert any("gpt\\-4o\\-mini" in str(m.value) for m in at.markdown)
    settings = load_settings()
    for path in settings.data_dir.rglob("*") if settings.data_dir.exists() else []:
        if path.is_file():
            assert sentinel.encode() not in path.read_bytes(), path
    assert sentinel not in markdown_text(at)


def test_settings_openai_without_key_is_refused() -> None:
    at = open_page("settings_page").run()
    at.radio[0].set_value("openai")
    at.button[0].click().run()
    assert any("needs an API key" in e for e in errors(at))
    assert "openai_api_key" not in at.session_state["coach_settings"] if "coach_settings" in at.session_state else True


def test_connection_test_reports_success_and_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("settings_page").run()
    at.button(key="test_connection").click().run()
    assert any("answered in" in str(s.value) for s in at.success)
    monkeypatch.setattr(testing, "FakeChatModel", DownModel)
    at.button(key="test_connection").click().run()
    assert errors(at) == ["The model server cannot be reached. Start it, then try again."]


def test_the_embedded_model_warms_up_with_visible_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    from coach.local_model import ModelStatus

    monkeypatch.setenv("COACH_BACKEND", "local")
    steps: list[str] = []

    def ensure_model_file(settings: Settings, progress: Any) -> Path:
        steps.append("join")
        progress("joining", 1, 2)
        progress("verifying", 2, 2)
        return Path("model.gguf")

    monkeypatch.setattr("coach.local_model.model_status", lambda: ModelStatus(state="not provisioned"))
    monkeypatch.setattr("coach.local_model.ensure_model_file", ensure_model_file)
    monkeypatch.setattr("coach.models.open_chat_model", lambda settings: steps.append("load") or object())
    monkeypatch.setattr("coach.rewrite_strategies.warm_up", lambda handle: steps.append("warm"))
    at = open_page("settings_page").run()
    assert at.metric[0].value == "Not provisioned"
    at.button(key="prepare_model").click().run()
    assert not at.exception and not errors(at)
    assert steps == ["join", "load", "warm"]
    assert [(s.label, s.state) for s in at.status] == [("The embedded model is ready.", "complete")]
    assert [p.value for p in at.progress] == [100]  # the bar reached the end


def test_a_warm_up_failure_is_one_short_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from coach.errors import ModelFileError
    from coach.local_model import ModelStatus

    def missing(settings: Settings, progress: Any) -> Path:
        raise ModelFileError("The embedded model's parts are missing.", hint="Reinstall them.")

    monkeypatch.setenv("COACH_BACKEND", "local")
    monkeypatch.setattr("coach.local_model.model_status", lambda: ModelStatus(state="not provisioned"))
    monkeypatch.setattr("coach.local_model.ensure_model_file", missing)
    at = open_page("settings_page").run()
    at.button(key="prepare_model").click().run()
    assert not at.exception
    assert errors(at) == ["The embedded model's parts are missing. Reinstall them."]


def test_an_unexpected_failure_is_one_generic_line_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(settings: Settings) -> list[object]:
        raise RuntimeError("internal detail /srv/coach/secret.py line 42")

    monkeypatch.setattr("coach.ui.library_page.load_documents", broken)
    at = open_page("library_page").run()
    assert not at.exception  # no traceback element
    [message] = errors(at)
    assert message.startswith("Something went wrong (RuntimeError). Reload the page")
    assert "secret" not in message + markdown_text(at)


def test_streamlit_config_hides_error_details_and_stays_local() -> None:
    import tomllib

    config = tomllib.loads((Path(__file__).parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] is False
    assert config["server"]["address"] == "127.0.0.1"
    assert config["browser"]["gatherUsageStats"] is False

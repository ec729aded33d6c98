"""AppTest tests of the Rewrite page on the fake model: the result views, errors, autosave and re-runs."""

from __future__ import annotations

import sys

import pytest
from test_app_support import (
    DownModel,
    StubRewrite,
    chart_rows,
    errors,
    markdown_text,
    open_page,
    stub_result,
    use_fakes,
)

from coach import testing
from coach.config import load_settings
from coach.corpus import load_principles
from coach.errors import ModelUnavailable
from coach.rewrite_models import FactReport, Flag
from coach.sessions import DraftStore, SessionStore

DRAFT = "Q3 status: uptime was 99.9%. Downtime went from 10 hours to 8 hours. MTTR improved."


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    use_fakes(monkeypatch)


def rewrite(draft: str = DRAFT, stub: StubRewrite | None = None):  # type: ignore[no-untyped-def]
    at = open_page("rewrite_page").run()
    at.text_area(key="draft_text").input(draft)
    at.button(key="rewrite_button").click().run()
    return at


def test_first_visit_shows_the_editor_and_no_errors() -> None:
    at = open_page("rewrite_page").run()
    assert not at.exception
    assert not errors(at)
    assert at.text_area(key="draft_text").value == ""
    assert [b.label for b in at.button] == ["Rewrite"]


def test_empty_draft_is_refused_without_calling_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    stub = StubRewrite().install(monkeypatch)
    at = rewrite("   \n ")
    assert any("The draft is empty" in e for e in errors(at))
    assert stub.requests == []


def test_rewrite_shows_diff_feedback_fact_lock_and_saves_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    stub = StubRewrite().install(monkeypatch)
    at = rewrite()
    assert not at.exception and not errors(at)
    assert stub.requests[0].draft == DRAFT and stub.requests[0].audience == "cfo"
    text = markdown_text(at)
    assert ":green-background[" in text  # words the rewrite added are highlighted
    assert ":red-background[" in text  # words it dropped are marked in the draft column
    assert "**Business\\-focused\\, not IT\\-focused metrics**" in text  # feedback card, escaped
    assert any("Fact lock: all 2 facts" in str(s.value) for s in at.success)
    assert [t.label for t in at.tabs] == ["Feedback (1)", "Fact lock (2)", "Scores"]
    assert at.code[0].value == stub_result(DRAFT).rewrite  # copyable plain text
    sessions = SessionStore(load_settings()).list()
    assert len(sessions) == 1 and sessions[0].draft == DRAFT


def test_the_real_rewrite_service_on_the_fake_model_shows_cards_fact_lock_and_saves() -> None:
    at = rewrite()  # no stub: coach.rewrite runs, with the fake chat model and the fake embedder
    assert not at.exception and not errors(at), errors(at)
    feedback, facts, scores = (t.label for t in at.tabs)
    assert feedback.startswith("Feedback (") and feedback != "Feedback (0)"
    assert facts == "Fact lock (3)" and scores == "Scores"
    text = markdown_text(at)
    names = {p.name for p in load_principles(load_settings())}
    feedback_text = "\n".join(str(m.value) for m in at.tabs[0].markdown)
    cards = [line.strip("*") for line in feedback_text.splitlines() if line.startswith("**") and line.endswith("**")]
    assert cards and all(card.replace("\\", "") in names for card in cards)  # each card names a principle
    assert text.count("**What changed:**") == len(cards) and text.count("**Why:**") == len(cards)
    lock = at.dataframe[0].value
    assert len(lock["fact"]) == 3 and "99.9%" in list(lock["fact"]) and set(lock["in the rewrite"]) == {"kept"}
    sessions = SessionStore(load_settings()).list()
    assert len(sessions) == 1 and sessions[0].draft == DRAFT and sessions[0].type == "rewrite"
    assert sessions[0].result is not None and sessions[0].result["rewrite"] == at.code[0].value
    assert sessions[0].principles  # the cards' principles are saved for the progress charts


def test_the_real_rewrite_service_with_the_model_down_keeps_the_draft(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testing, "FakeChatModel", DownModel)
    at = rewrite()
    assert not at.exception
    assert errors(at) == ["The model server cannot be reached. Start it, then try again."]
    assert at.text_area(key="draft_text").value == DRAFT
    assert not at.tabs  # no half result
    assert SessionStore(load_settings()).list() == []  # nothing half-saved
    assert open_page("rewrite_page").run().text_area(key="draft_text").value == DRAFT  # and it survives a reload


def test_reading_ease_is_charted_apart_from_the_grade_and_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    StubRewrite().install(monkeypatch)
    at = rewrite()
    ease, counts = ({row["score"] for row in rows} for rows in chart_rows(at))
    assert ease == {"Reading ease"}  # 0-100: on its own axis
    assert counts == {"Grade", "Jargon", "Acronyms", "Owners & dates"}  # a few units each: short labels


def test_missing_facts_and_review_required_cannot_be_overlooked(monkeypatch: pytest.MonkeyPatch) -> None:
    facts = FactReport(draft=["10 hours", "8 hours"], kept=["8 hours"], missing=["10 hours"], added=["$300K"],
                       supplied=[])
    flags = [Flag(kind="copied", message="The rewrite copies most of the draft.", excerpt="uptime was")]
    StubRewrite(lambda r: stub_result(r.draft, facts=facts, flags=flags, review_required=True)).install(monkeypatch)
    at = rewrite()
    assert any("missing from the rewrite" in e and "10 hours" in e for e in errors(at))
    warnings = [str(w.value) for w in at.warning]
    assert any("Draft to review" in w for w in warnings)
    assert any("did not have" in w and "\\$300K" in w for w in warnings)
    assert any("copies most of the draft" in w for w in warnings)
    assert not at.success  # no reassuring message next to a miss


def test_sentences_kept_as_written_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    kept = ["Uptime was 99.9% against a 99.5% target.", "<b>MTTR</b> fell."]
    StubRewrite(lambda r: stub_result(r.draft, kept_sentences=kept, sentences=5, review_required=True)
                ).install(monkeypatch)
    at = rewrite()
    notes = [str(i.value) for i in at.info]
    assert any("2 of 5 sentences are as you wrote them" in n and "Uptime was" in n for n in notes)
    assert all("<b>MTTR</b>" not in n for n in notes if "MTTR" in n)  # escaped: shown as text, never rendered


def test_model_down_keeps_the_draft_on_screen_and_across_a_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    StubRewrite(ModelUnavailable("The model server cannot be reached.", hint="Start it.")).install(monkeypatch)
    at = rewrite()
    assert errors(at) == ["The model server cannot be reached. Start it."]
    assert not at.exception
    assert at.text_area(key="draft_text").value == DRAFT
    assert DraftStore(load_settings()).load_draft("rewrite") == DRAFT
    reloaded = open_page("rewrite_page").run()  # a new browser session: the autosave brings the draft back
    assert reloaded.text_area(key="draft_text").value == DRAFT


def test_answering_the_coach_questions_reruns_with_the_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    question = "What does one hour of downtime cost?"
    stub = StubRewrite(lambda r: stub_result(r.draft, questions=[question])).install(monkeypatch)
    at = rewrite()
    at.text_input(key="answer-0").input("$20,000")
    at.button[-1].click().run()  # the form's submit button
    at.run()  # the rerun the page requested
    assert len(stub.requests) == 2
    assert stub.requests[1].supplied_facts == ["What does one hour of downtime cost: $20,000"]
    assert stub.requests[1].draft == DRAFT


def test_thumbs_are_saved_to_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    StubRewrite().install(monkeypatch)
    at = rewrite()
    assert at.feedback[0].proto.type == at.feedback[0].proto.THUMBS  # thumbs, as the issue asks
    at.feedback[0].set_value(1).run()
    assert SessionStore(load_settings()).list()[0].rating == 5  # thumbs up
    at.feedback[0].set_value(0).run()
    assert SessionStore(load_settings()).list()[0].rating == 1  # thumbs down
    at.feedback[0].set_value(None).run()
    assert SessionStore(load_settings()).list()[0].rating is None  # taken back


def test_upload_fills_the_editor_and_an_oversized_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("rewrite_page").run()
    at.file_uploader(key="draft_upload").set_value(("status.txt", b"Patch window moved to Friday.", "text/plain"))
    at.run()
    assert at.text_area(key="draft_text").value == "Patch window moved to Friday."
    big = b"a" * (6 * 1024 * 1024)
    at.file_uploader(key="draft_upload").set_value(("huge.txt", big, "text/plain"))
    at.run()
    assert any("the limit is 5 MB" in e for e in errors(at))
    assert at.text_area(key="draft_text").value == "Patch window moved to Friday."


def test_email_upload_gives_subject_and_body() -> None:
    eml = b"Subject: Outage\r\nContent-Type: text/plain\r\n\r\nThe CRM was down for 2 hours.\r\n"
    at = open_page("rewrite_page").run()
    at.file_uploader(key="draft_upload").set_value(("note.eml", eml, "message/rfc822")).run()
    assert at.text_area(key="draft_text").value == "Subject: Outage\n\nThe CRM was down for 2 hours."


def test_missing_service_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "coach.rewrite", None)
    at = rewrite()
    assert any("not available yet" in e for e in errors(at))
    assert not at.exception

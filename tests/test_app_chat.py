"""AppTest tests of the Chat page: an unsent message survives a failure and a reload; the debrief is saved."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from test_app_support import errors, open_page, use_fakes

from coach import roleplay, testing
from coach.chat import DEBRIEF_HEADING
from coach.config import load_settings
from coach.corpus import load_principles
from coach.errors import ModelUnavailable
from coach.sessions import DraftStore, SessionStore

MESSAGE = "How do I explain last week's outage to the COO?"


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    use_fakes(monkeypatch)


class DownModel(testing.FakeChatModel):
    """A fake chat model whose server is unreachable."""

    def _next_text(self, messages, kwargs):  # type: ignore[no-untyped-def]
        raise ModelUnavailable("The model server cannot be reached.", hint="Start it, then try again.")


def unsent() -> str | None:
    return DraftStore(load_settings()).load_draft("chat")


def test_a_message_that_failed_is_offered_again_after_a_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    working = testing.FakeChatModel
    monkeypatch.setattr(testing, "FakeChatModel", DownModel)
    at = open_page("chat_page").run()
    at.chat_input(key="chat_text").set_value(MESSAGE).run()
    assert errors(at) == ["The model server cannot be reached. Start it, then try again."]

    reloaded = open_page("chat_page").run()  # a new browser session: st.session_state is empty
    assert not reloaded.exception and not errors(reloaded)
    assert [c.value for c in reloaded.code] == [MESSAGE]
    monkeypatch.setattr(testing, "FakeChatModel", working)
    reloaded.button(key="chat_resend").click().run()
    assert not reloaded.exception and not errors(reloaded)
    saved = SessionStore(load_settings()).list()
    assert len(saved) == 1 and saved[0].messages[0].content == MESSAGE
    assert unsent() is None and not reloaded.code  # sent: no longer offered


def test_a_sent_message_leaves_no_draft_behind() -> None:
    at = open_page("chat_page").run()
    at.chat_input(key="chat_text").set_value(MESSAGE).run()
    assert not errors(at)
    assert unsent() is None
    assert not open_page("chat_page").run().code


def test_an_unsent_message_can_be_discarded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testing, "FakeChatModel", DownModel)
    open_page("chat_page").run().chat_input(key="chat_text").set_value(MESSAGE).run()
    at = open_page("chat_page").run()
    at.button(key="chat_discard").click().run()
    assert unsent() is None and not at.code
    assert SessionStore(load_settings()).list() == []


def start_roleplay_page() -> AppTest:
    at = open_page("chat_page").run()
    at.segmented_control(key="chat_mode").set_value("roleplay").run()
    at.selectbox(key="persona").set_value("cfo").run()
    return at


def test_the_debrief_is_offered_when_due_and_saved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(roleplay, "DEBRIEF_AFTER_TURNS", 2)
    at = start_roleplay_page()
    at.chat_input(key="chat_text").set_value("I need budget to replace the ERP.").run()
    assert not offers_debrief(at)
    at.chat_input(key="chat_text").set_value("It saves 200 hours a month.").run()
    assert offers_debrief(at) and not errors(at)
    at.button(key="debrief_button").click().run()
    assert not at.exception and not errors(at)
    assert not offers_debrief(at)  # done: no longer offered
    session = SessionStore(load_settings()).list()[0]
    last = session.messages[-1]
    assert last.role == "assistant" and last.content.startswith(DEBRIEF_HEADING)
    assert session.principles and last.citations
    catalogue = {p.id: p.quote for p in load_principles(load_settings())}
    assert all(p in catalogue for p in session.principles)
    assert {c.text for c in last.citations} <= set(catalogue.values())
    assert len(session.messages) == 5  # two turns each way, then the debrief


def offers_debrief(at: AppTest) -> bool:
    return any("enough of a rehearsal to debrief" in str(i.value) for i in at.info)

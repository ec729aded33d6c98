"""AppTest tests of the Chat page: an unsent message survives a failure and a reload; the debrief is saved."""

from __future__ import annotations

import pytest
from test_app_support import errors, open_page, use_fakes

from coach import testing
from coach.config import load_settings
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

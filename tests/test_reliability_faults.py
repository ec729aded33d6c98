"""Model faults end to end: through the rewrite and chat services and the `coach` CLI, against a misbehaving stub.

Each fault must give one clear line (no traceback), a non-zero exit, the draft or message kept, and no
session written or half-updated. The stub (``tests/openai_stub.py``) plays the OpenAI-compatible server.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from openai_stub import Behaviour, OpenAIStub, cut, ok, stall, status, trickle

from coach import models
from coach.chat import ChatMessage, ChatService, Conversation, load_conversation, save_conversation
from coach.cli import main
from coach.config import load_settings
from coach.errors import AuthRejected, ModelError, ModelOutputError, ModelUnavailable, RateLimited
from coach.index import Passage
from coach.models import open_chat_model
from coach.rewrite import rewrite_draft
from coach.rewrite_models import RewriteRequest
from coach.roleplay import start_roleplay
from coach.session_models import SessionQuery
from coach.sessions import DraftStore, SessionStore

DRAFT = ("On March 3, 2026 the order API was down for 2 hours, from 09:10 to 11:10 UTC. "
         "About 35% of checkout requests failed. Root cause: an expired certificate.")
MESSAGE = "How do I tell the CFO that the order API was down for 2 hours?"
RETRIES = 2
TIMEOUT_S = 1.0
PASSAGE = Passage(text="Uptime is just a number until we show what it achieves for the business.",
                  source="it-leader-to-organizational-partner.md", doc_id="it-leader-to-organizational-partner",
                  title="From IT leader to organizational partner", position=3, chunk_id="c3", score=0.5)


class OnePassageIndex:
    """Retrieval is not under test here: one relevant passage, no build."""

    def query(self, text: str, k: int = 4, doc_ids: list[str] | None = None) -> list[Passage]:
        return [PASSAGE]

    def stats(self) -> dict[str, int]:
        return {"documents": 1, "chunks": 1}


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# fault name -> (behaviours to script, or a base URL to use instead of the stub; error class; message pattern)
Fault = tuple[list[Behaviour] | str, type[ModelError], str]
FAULTS: dict[str, Callable[[], Fault]] = {
    "refused": lambda: (f"http://127.0.0.1:{closed_port()}/v1", ModelUnavailable, r"Cannot reach the model server"),
    "dns": lambda: ("http://no-such-host.invalid/v1", ModelUnavailable, r"Cannot reach .*no-such-host\.invalid"),
    "timeout": lambda: ([stall(30)], ModelUnavailable, rf"did not answer within {TIMEOUT_S:g} s"),
    # Each word comes quickly, the answer never ends in time: only the whole-request deadline catches it.
    "trickle": lambda: ([trickle(0.2)], ModelUnavailable, rf"did not answer within {TIMEOUT_S:g} s"),
    "persistent 500": lambda: ([status(500)] * (RETRIES + 1), ModelUnavailable, r"failed \(HTTP 500\)"),
    "429": lambda: ([status(429, headers={"retry-after": "0"})] * (RETRIES + 1), RateLimited, r"rate limiting"),
    "401": lambda: ([status(401)], AuthRejected, r"API key was rejected"),
    "stream cut": lambda: ([cut()], ModelUnavailable, r"dropped in the middle|stopped before it was complete"),
    "empty answer": lambda: ([ok("")], ModelOutputError, r"empty answer"),
}


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries wait milliseconds, and retrieval is a fixed passage (no index build per test)."""
    monkeypatch.setattr(models, "RETRY_BACKOFF_S", 0.01)
    monkeypatch.setattr("coach.index.open_index", lambda settings: OnePassageIndex())


def use_fault(stub: OpenAIStub, name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[type[ModelError], str]:
    """Point the environment at the stub (or a dead URL) with the fault scripted; returns what to expect."""
    target, error, pattern = FAULTS[name]()
    if isinstance(target, str):
        url = target
    else:
        url = stub.url
        stub.enqueue(*target)
    for key, value in {"COACH_BASE_URL": url, "COACH_MODEL": "stub-model", "COACH_TIMEOUT": str(TIMEOUT_S),
                       "COACH_MAX_RETRIES": str(RETRIES)}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", True)
    return error, pattern


def session_count() -> int:
    """Sessions in the store now."""
    return len(SessionStore(load_settings()).list(SessionQuery()))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str, float]:
    """Run `coach ...` in process; exit code, stdout, stderr, seconds."""
    started = time.perf_counter()
    code = main(list(argv))
    elapsed = time.perf_counter() - started
    out, err = capsys.readouterr()
    return code, out, err, elapsed


def assert_clean_failure(code: int, err: str, pattern: str) -> None:
    """A non-zero exit and one `coach: ...` line, no traceback."""
    import re

    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("coach: ")]
    assert len(lines) == 1 and re.search(pattern, lines[0]), err


# --- rewrite -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", list(FAULTS))
def test_rewrite_cli_fault_is_one_line_nonzero_and_saves_nothing(
    fault: str, openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, pattern = use_fault(openai_stub, fault, monkeypatch)
    draft = tmp_path / "draft.txt"
    draft.write_text(DRAFT, encoding="utf-8")
    code, _, err, elapsed = run_cli(capsys, "rewrite", str(draft))
    assert_clean_failure(code, err, pattern)
    assert draft.read_text(encoding="utf-8") == DRAFT
    assert session_count() == 0
    if fault in ("timeout", "trickle"):
        assert elapsed < TIMEOUT_S + 2.0, f"timeout reached the user after {elapsed:.1f} s"
        assert len(openai_stub.requests) == 1  # a timeout is not retried: it would blow the budget


@pytest.mark.parametrize("fault", list(FAULTS))
def test_rewrite_service_fault_keeps_the_autosaved_draft(
    fault: str, openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    error, pattern = use_fault(openai_stub, fault, monkeypatch)
    settings = load_settings()
    drafts = DraftStore(settings)
    drafts.save_draft("rewrite", DRAFT)  # what the UI autosaves while the user types
    with pytest.raises(error, match=pattern) as caught:
        rewrite_draft(settings, RewriteRequest(draft=DRAFT, audience="cfo"), store=SessionStore(settings))
    assert drafts.load_draft("rewrite") == DRAFT
    assert session_count() == 0
    expected_attempts = 1 + RETRIES if fault in ("refused", "dns", "persistent 500", "429") else 1
    assert caught.value.attempts == expected_attempts
    if fault in ("persistent 500", "429"):
        assert len(openai_stub.requests) == expected_attempts


def test_500_then_200_rewrites_and_saves_one_session(
    openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_fault(openai_stub, "persistent 500", monkeypatch)
    openai_stub.script[:] = [status(500), ok("The order system was down on March 3, 2026 for 2 hours, "
                                              "from 09:10 to 11:10 UTC; About 35% of checkout requests failed.")]
    draft = tmp_path / "draft.txt"
    draft.write_text(DRAFT, encoding="utf-8")
    code, out, err, _ = run_cli(capsys, "rewrite", str(draft))
    assert code == 0, err
    assert "The order system was down" in out and session_count() == 1


# --- chat ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", list(FAULTS))
def test_chat_cli_fault_is_one_line_nonzero_and_saves_nothing(
    fault: str, openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, pattern = use_fault(openai_stub, fault, monkeypatch)
    code, _, err, elapsed = run_cli(capsys, "chat", "--message", MESSAGE)
    assert_clean_failure(code, err, pattern)
    assert session_count() == 0
    if fault in ("timeout", "trickle"):
        assert elapsed < TIMEOUT_S + 2.0


@pytest.mark.parametrize("fault", list(FAULTS))
def test_chat_fault_in_a_saved_conversation_leaves_it_as_it_was(
    fault: str, openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings()
    saved = Conversation(messages=[ChatMessage(role="user", content="Earlier question."),
                                   ChatMessage(role="assistant", content="Earlier answer.")])
    session_id = save_conversation(settings, saved)
    _, pattern = use_fault(openai_stub, fault, monkeypatch)
    code, _, err, _ = run_cli(capsys, "chat", "--session", session_id, "--message", MESSAGE)
    assert_clean_failure(code, err, pattern)
    after = load_conversation(settings, session_id)
    assert [m.content for m in after.messages] == ["Earlier question.", "Earlier answer."]
    assert session_count() == 1


@pytest.mark.parametrize("fault", list(FAULTS))
def test_chat_service_fault_leaves_the_conversation_unchanged(
    fault: str, openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keeping the typed message across a reload is the Chat page's job (its AppTest); here: the service adds
    # neither the message nor half an answer to the conversation, and the attempts follow the retry policy.
    error, pattern = use_fault(openai_stub, fault, monkeypatch)
    settings = load_settings()
    conversation = Conversation(session_id="s-1", messages=[ChatMessage(role="user", content="Earlier question."),
                                                            ChatMessage(role="assistant", content="Earlier answer.")])
    before = conversation.model_dump()
    with pytest.raises(error, match=pattern) as caught:
        ChatService(settings, handle=open_chat_model(settings)).turn(conversation, MESSAGE)
    assert conversation.model_dump() == before
    assert caught.value.attempts == (1 + RETRIES if fault in ("refused", "dns", "persistent 500", "429") else 1)


def test_500_then_200_chats_and_saves_one_session(
    openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_fault(openai_stub, "persistent 500", monkeypatch)
    openai_stub.script[:] = [status(500), ok("Lead with what the outage cost the business [1].")]
    code, out, err, _ = run_cli(capsys, "chat", "--message", MESSAGE)
    assert code == 0, err
    assert "Lead with what the outage cost the business" in out and "Traceback" not in err
    assert len(openai_stub.requests) == 2 and session_count() == 1
    session = SessionStore(load_settings()).list(SessionQuery())[0]
    assert [m.role for m in load_conversation(load_settings(), session.id).messages] == ["user", "assistant"]


@pytest.mark.parametrize(("behaviour", "pattern"), [
    (ok("{not json at all"), r"not valid JSON|debrief did not"),
    (ok('{"items": [', finish_reason="length"), r"ran out of room|not valid JSON|debrief did not"),
])
def test_debrief_with_unusable_structured_answers_is_a_clear_error(
    behaviour: Behaviour, pattern: str, openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fault(openai_stub, "empty answer", monkeypatch)
    openai_stub.script[:] = [ok("We need two more engineers."), behaviour, behaviour, behaviour, behaviour]
    settings = load_settings()
    service = ChatService(settings, handle=open_chat_model(settings))
    conversation = start_roleplay("cfo", None)
    service.turn(conversation, "I need budget for two engineers to cut incident time.")
    before = conversation.model_dump()
    with pytest.raises(ModelError, match=pattern):
        service.debrief(conversation)
    assert conversation.model_dump() == before


def test_attempts_follow_the_retry_policy(openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch) -> None:
    use_fault(openai_stub, "persistent 500", monkeypatch)
    monkeypatch.setenv("COACH_MAX_RETRIES", "0")
    settings = load_settings()
    with pytest.raises(ModelUnavailable) as caught:
        ChatService(settings, handle=open_chat_model(settings)).turn(Conversation(), MESSAGE)
    assert caught.value.attempts == 1 and len(openai_stub.requests) == 1

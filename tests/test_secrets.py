"""Sentinel keys: a full scripted run with debug logging leaves them nowhere they should not be.

``OPENAI_API_KEY`` and ``COACH_API_KEY`` hold sentinels while the CLI rewrites, chats, saves, exports and meets
every model fault, with ``--debug`` on. Afterwards the sentinels must not be in the data dir (session database,
Chroma directory, documents), the exports, stdout/stderr, the captured logs, any error message or any repr.
The custom ``base_url`` (the stub) may receive its own key in the Authorization header, never the OpenAI key.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from openai_stub import Behaviour, OpenAIStub, cut, ok, stall, status

from coach import models
from coach.chat import ChatService, Conversation
from coach.cli import main
from coach.config import load_settings
from coach.errors import CoachError
from coach.models import open_chat_model
from coach.rewrite import rewrite_draft
from coach.rewrite_models import RewriteRequest
from coach.session_models import Session, SessionQuery
from coach.sessions import DraftStore, SessionStore

OPENAI_SENTINEL = "sk-SENTINEL-openai-3f9a7c21d4e8b6a0"
COMPAT_SENTINEL = "sk-SENTINEL-compat-51d2e8f07a9c3b64"
SENTINELS = (OPENAI_SENTINEL, COMPAT_SENTINEL)
DRAFT = ("On March 3, 2026 the order API was down for 2 hours, from 09:10 to 11:10 UTC. "
         "About 35% of checkout requests failed. Root cause: an expired certificate.")
REWRITE = ("The order system was down on March 3, 2026 for 2 hours, from 09:10 to 11:10 UTC; "
           "About 35% of checkout requests failed because a security certificate expired.")
REPO = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def faults(url: str) -> list[tuple[str, list[Behaviour]]]:
    """Every model fault, as (base URL, scripted behaviours); the 401 body echoes the key like OpenAI's does."""
    echo = {"error": {"message": f"Incorrect API key provided: {COMPAT_SENTINEL} / {OPENAI_SENTINEL}.",
                      "type": "invalid_request_error", "code": "invalid_api_key"}}
    return [
        (url, [status(401, body=echo)]),
        (url, [status(403, body=echo)]),
        (url, [status(429, body=echo, headers={"retry-after": "0"})] * 3),
        (url, [status(500, body=echo)] * 3),
        (url, [status(400, body=echo)]),
        (url, [stall(30)]),
        (url, [cut()]),
        (url, [ok("")]),
        (f"http://127.0.0.1:{closed_port()}/v1", []),
        ("http://no-such-host.invalid/v1", []),
    ]


@pytest.fixture
def sentinel_env(openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch) -> OpenAIStub:
    """Both keys set to sentinels, the compatible backend pointed at the stub, requests allowed."""
    for key, value in {"OPENAI_API_KEY": OPENAI_SENTINEL, "COACH_API_KEY": COMPAT_SENTINEL,
                       "COACH_BASE_URL": openai_stub.url, "COACH_MODEL": "stub-model", "COACH_TIMEOUT": "3",
                       "COACH_MAX_RETRIES": "2"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", True)
    monkeypatch.setattr(models, "RETRY_BACKOFF_S", 0.01)
    return openai_stub


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def occurrences(texts: dict[str, str | bytes]) -> dict[str, int]:
    """Where a sentinel occurs: name -> count (empty when clean)."""
    found: dict[str, int] = {}
    for name, value in texts.items():
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
        count = sum(raw.count(s.encode()) for s in SENTINELS)
        if count:
            found[name] = count
    return found


def run(argv: list[str], capsys: pytest.CaptureFixture[str], record: dict[str, str | bytes]) -> int:
    code = main(["--debug", *argv])
    out, err = capsys.readouterr()
    record[f"stdout {len(record)} {argv}"] = out  # numbered: the same command runs once per fault
    record[f"stderr {len(record)} {argv}"] = err
    return code


def test_full_scripted_run_leaves_no_sentinel_anywhere(
    sentinel_env: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    isolated_environment: Path,
) -> None:
    stub = sentinel_env
    caplog.set_level(logging.DEBUG)
    record: dict[str, str | bytes] = {}
    draft = tmp_path / "draft.txt"
    draft.write_text(DRAFT, encoding="utf-8")
    (tmp_path / "org.md").write_text("# Our goals\n\nReport every outage to the CFO in business terms.\n")

    assert run(["index"], capsys, record) == 0
    stub.enqueue(ok(REWRITE))
    assert run(["rewrite", str(draft)], capsys, record) == 0
    stub.enqueue(ok("Lead with what customers felt and what it cost [1]."))
    assert run(["chat", "--message", "How do I tell the CFO about the outage?"], capsys, record) == 0
    stub.enqueue(ok("What does it cost us?"))
    assert run(["chat", "--persona", "cfo", "--message", "I need budget for two engineers."], capsys, record) == 0
    settings = load_settings()
    DraftStore(settings).save_draft("rewrite", DRAFT)
    for fmt in ("md", "json"):
        out = tmp_path / f"export.{fmt}"
        assert run(["sessions", "export", "--all", "--format", fmt, "--out", str(out)], capsys, record) == 0
        record[f"export {fmt}"] = out.read_bytes()
    assert run(["sessions", "list"], capsys, record) == 0
    assert len(SessionStore(settings).list(SessionQuery())) == 3

    errors: list[CoachError] = []
    for url, behaviours in faults(stub.url):
        os.environ["COACH_BASE_URL"] = url  # monkeypatch restores it at teardown
        stub.script[:] = list(behaviours)
        assert run(["rewrite", str(draft)], capsys, record) != 0
        stub.script[:] = list(behaviours)
        assert run(["chat", "--message", "How do I tell the CFO about the outage?"], capsys, record) != 0
        stub.script[:] = list(behaviours)
        try:
            rewrite_draft(load_settings(), RewriteRequest(draft=DRAFT, audience="cfo"))
        except CoachError as error:
            errors.append(error)
    assert len(errors) == len(faults(stub.url))

    os.environ["COACH_BASE_URL"] = stub.url
    settings = load_settings()
    handle = open_chat_model(settings)
    result = rewrite_draft(settings, RewriteRequest(draft=DRAFT, audience="cfo"), handle=handle)
    reply = ChatService(settings, handle=handle).turn(Conversation(), "How do I tell the CFO about the outage?")
    record.update({
        "logs": caplog.text,
        "log records": "\n".join(f"{r.args!r} {r.msg!r}" for r in caplog.records),
        "errors": "\n".join(f"{e} {e!r} {e.hint} {e.args!r}" for e in errors),
        "settings": f"{settings!r} {settings} {settings.model_dump()} {settings.model_dump_json()}",
        "handle": f"{handle!r} {handle.model!r} {handle.model.dict()!r} {handle.host}",
        "results": f"{result!r} {result.model_dump_json()} {reply!r}",
        "sessions": repr(SessionStore(settings).list(SessionQuery())),
    })
    record.update({str(p): p.read_bytes() for p in files_under(isolated_environment)})
    assert any("chroma" in name for name in record) and any("sessions.db" in name for name in record)
    assert occurrences(record) == {}

    assert stub.requests, "the stub saw no request"
    for request in stub.requests:
        assert OPENAI_SENTINEL not in repr(request.headers) + repr(request.body)
        assert request.headers.get("authorization") == f"Bearer {COMPAT_SENTINEL}"  # its own key only
        assert COMPAT_SENTINEL not in repr(request.body)


def test_custom_base_url_without_its_own_key_gets_a_placeholder(
    sentinel_env: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COACH_API_KEY")
    sentinel_env.enqueue(ok("Fine."))
    settings = load_settings()
    ChatService(settings, handle=open_chat_model(settings)).turn(Conversation(), "Hello coach, a question.")
    (request,) = sentinel_env.requests
    assert request.headers["authorization"] == f"Bearer {models.PLACEHOLDER_KEY}"
    assert occurrences({"request": repr(request.headers) + repr(request.body)}) == {}


@pytest.mark.parametrize("secret", SENTINELS)
def test_a_key_pasted_into_a_draft_never_reaches_storage_or_exports(
    secret: str, sentinel_env: OpenAIStub, isolated_environment: Path
) -> None:
    settings = load_settings()
    store = SessionStore(settings)
    pasted = f"Config for the team: OPENAI_API_KEY={secret}\n\n{DRAFT}"
    saved = store.save(Session(type="rewrite", audience="cfo", kind="status", draft=pasted, notes=secret,
                               result={"rewrite": f"See {secret}"}))
    DraftStore(settings).save_draft("rewrite", pasted)
    exports = store.export([saved.id], format="json") + store.export([saved.id], format="md")
    stored = {str(p): p.read_bytes() for p in files_under(isolated_environment)}
    assert occurrences({"exports": exports, "draft store": DraftStore(settings).load_draft("rewrite") or "",
                        "get": repr(store.get(saved.id)), **stored}) == {}


def test_debug_logging_of_a_real_cli_process_shows_no_key(sentinel_env: OpenAIStub, tmp_path: Path) -> None:
    """A separate process, so ``--debug`` configures logging for real (pytest's capture is not in the way)."""
    draft = tmp_path / "draft.txt"
    draft.write_text(DRAFT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "COACH_EMBEDDINGS": "fake"}
    sentinel_env.enqueue(ok(REWRITE), status(401), ok("Lead with the business outcome."))
    outputs = []
    for argv in (["rewrite", "--no-save", str(draft)], ["rewrite", "--no-save", str(draft)],
                 ["chat", "--message", "How do I tell the CFO about the outage?"]):
        done = subprocess.run([sys.executable, "-m", "coach", "--debug", *argv], env=env, capture_output=True,
                              timeout=120, cwd=tmp_path)
        outputs.append(done)
    assert [d.returncode for d in outputs] == [0, 1, 0], [d.stderr[-500:] for d in outputs]
    assert b"DEBUG" in outputs[0].stderr  # debug logging really was on
    assert b"Traceback" not in b"".join(d.stderr for d in outputs)
    assert occurrences({f"run {i} {k}": getattr(d, k) for i, d in enumerate(outputs)
                        for k in ("stdout", "stderr")}) == {}

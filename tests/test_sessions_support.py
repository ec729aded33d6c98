"""Helpers shared by the session-store tests: a database per test (SQLite, or a PostgreSQL schema) and samples.

The PostgreSQL variant needs ``COACH_TEST_DATABASE_URL`` (``scripts/postgres.sh`` prints one). Each test
gets its own schema, selected through the connection's ``search_path``, and the schema is dropped after.
Without a server those tests skip, unless ``COACH_REQUIRE_POSTGRES`` is set (``scripts/test`` sets it in CI):
then a missing PostgreSQL or Chroma server fails them, so CI cannot pass without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import create_engine, make_url, text

from coach.config import Settings, load_settings
from coach.session_models import Message, Session
from coach.sessions import close_databases

REPO = Path(__file__).resolve().parent.parent
PG_ENV = "COACH_TEST_DATABASE_URL"
REQUIRE_ENV = "COACH_REQUIRE_POSTGRES"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def server_unavailable(reason: str) -> NoReturn:
    """Skip a test that needs a server which is not there; fail it instead when servers are required (CI)."""
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set: the server tests must run)", pytrace=False)
    pytest.skip(reason)


def pg_base_url() -> str:
    """The test server's URL, or a skip that says how to get one."""
    url = os.environ.get(PG_ENV)
    if not url:
        server_unavailable(f"{PG_ENV} is not set: start a server with `scripts/postgres.sh` and export its URL")
    return url


def test_a_missing_server_skips_unless_servers_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PG_ENV, raising=False)
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=PG_ENV):
        pg_base_url()
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_ENV} is set"):
        pg_base_url()


@contextmanager
def backend_database(backend: str, data_dir: Path) -> Iterator[str | None]:
    """A fresh, empty database: None for SQLite in ``data_dir``, else a PostgreSQL URL to a new schema."""
    if backend == "sqlite":
        try:
            yield None
        finally:
            close_databases()
        return
    base = make_url(pg_base_url()).set(drivername="postgresql+psycopg")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        close_databases()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def settings_for(data_dir: Path, url: str | None) -> Settings:
    """Settings for a test database (the data dir comes from the autouse fixture's environment)."""
    return load_settings(data_dir=str(data_dir), database_url=url)


def rewrite_result(principles: tuple[str, ...] = ("business-metrics",), before: float = 12.0,
                   after: float = 8.0) -> dict[str, Any]:
    """A rewrite result shaped like docs/architecture.md's."""
    return {
        "rewrite": "Unscheduled downtime fell from 10 h to 8 h a year, saving $200K.",
        "audience": "CFO",
        "kind": "status",
        "feedback": [
            {"principle_id": p, "principle": p.replace("-", " "), "draft_excerpt": "99.9% uptime",
             "change": "stated the business effect", "why": "leaders buy outcomes",
             "passage": {"text": "business-focused, not IT-focused metrics", "source": "essay-1.md"}}
            for p in principles
        ],
        "facts": {"draft": ["99.9%"], "kept": ["99.9%"], "missing": [], "added": [], "supplied": []},
        "scores": {
            "before": {"fk_grade": before, "reading_ease": 40.0, "jargon": 4, "undefined_acronyms": ["SLA"],
                       "accountability": False},
            "after": {"fk_grade": after, "reading_ease": 60.0, "jargon": 1, "undefined_acronyms": [],
                      "accountability": True},
        },
        "metric_translations": [{"from": "99.9% uptime", "to": "8 h downtime a year"}],
        "questions": ["What does an hour of downtime cost?"],
        "flags": [],
        "model": "fake",
        "timings": {"retrieval_ms": 3.0, "first_token_ms": 120.0, "total_ms": 900.0},
        "session_id": None,
    }


def sample_session(n: int = 0, **overrides: Any) -> Session:
    """A realistic rewrite session; ``n`` varies the draft."""
    values: dict[str, Any] = {
        "type": "rewrite",
        "audience": "CFO",
        "kind": "status",
        "draft": f"\n## Weekly status {n}\nUptime was 99.9% and the SLA held.\n",
        "result": rewrite_result(),
    }
    values.update(overrides)
    return Session(**values)


def chat_session(**overrides: Any) -> Session:
    """A chat session with a cited answer."""
    values: dict[str, Any] = {
        "type": "chat",
        "messages": [
            Message(role="user", content="How do I tell the board about the outage?"),
            Message(role="assistant", content="Lead with the business outcome.",
                    citations=[{"text": "lead with the outcome", "source": "essay-2.md"}]),
        ],
    }
    values.update(overrides)
    return Session(**values)

"""Support for the AppTest tests of the Streamlit pages (no tests here).

Pages run on the scripted fake chat model (``COACH_BACKEND=fake``) and the fake embedder. The Rewrite page is
tested both ways: end to end through the real ``coach.rewrite`` service on the fake model, and, where a test
needs a particular result (a missing fact, hostile model text, questions), with ``StubRewrite`` installed as
``coach.rewrite``: it honours the service's contract (signature, ``on_token`` streaming, saving through the
store, ``CoachError`` on failure) and returns the result the test chose.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from coach import testing
from coach.errors import InputError, ModelUnavailable
from coach.rewrite_models import (
    FactReport,
    FeedbackItem,
    Passage,
    RewriteRequest,
    RewriteResult,
    ScorePair,
    Scores,
)
from coach.session_models import Session

TIMEOUT_S = 60


class DownModel(testing.FakeChatModel):
    """A fake chat model whose server is unreachable."""

    def _next_text(self, messages, kwargs):  # type: ignore[no-untyped-def]
        raise ModelUnavailable("The model server cannot be reached.", hint="Start it, then try again.")


def page_script(module: str) -> None:
    """An AppTest script that renders one page module of ``coach.ui``."""
    import importlib

    importlib.import_module(f"coach.ui.{module}").render()


def open_page(module: str) -> AppTest:
    """An AppTest of one page, not run yet."""
    return AppTest.from_function(page_script, args=(module,), default_timeout=TIMEOUT_S)


def use_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake chat model and the fake embedder for the whole app."""
    monkeypatch.setenv("COACH_BACKEND", "fake")
    monkeypatch.setenv("COACH_EMBEDDINGS", "fake")


def shown(markdown: str) -> str:
    """Escaped Markdown as the reader sees it (backslash escapes removed)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def errors(at: AppTest) -> list[str]:
    """The text of every st.error on the page, as displayed."""
    return [shown(str(e.value)) for e in at.error]


def markdown_text(at: AppTest) -> str:
    """Every Markdown source on the page, joined."""
    return "\n".join(str(m.value) for m in at.markdown)


def chart_rows(at: AppTest) -> list[list[dict[str, Any]]]:
    """The data of every chart on the page, one list of rows per chart, in page order."""
    import pyarrow as pa

    return [[row for dataset in chart.proto.datasets for row in pa.ipc.open_stream(dataset.data.data).read_all()
             .to_pylist()] for chart in at.get("vega_lite_chart")]


def stub_result(draft: str, **changes: Any) -> RewriteResult:
    """A plausible rewrite result for ``draft`` (override any field)."""
    scores = Scores(fk_grade=14.0, reading_ease=30.0, jargon=3, undefined_acronyms=2, accountability=0)
    better = Scores(fk_grade=9.0, reading_ease=55.0, jargon=0, undefined_acronyms=0, accountability=1)
    values: dict[str, Any] = {
        "rewrite": "Unscheduled downtime fell from 10 hours to 8 hours a year, saving $200K a year.",
        "audience": "cfo",
        "kind": "status",
        "feedback": [FeedbackItem(
            principle_id="business-metrics", principle="Business-focused, not IT-focused metrics",
            draft_excerpt="uptime was 99.9%", change="Stated downtime in hours and money.",
            why="A CFO weighs cost, not availability percentages.",
            passage=Passage(text="IT-focused metrics such as 99.9% uptime mean little to the business.",
                            source="it-leader-to-organizational-partner.md"))],
        "facts": FactReport(draft=["10 hours", "8 hours"], kept=["10 hours", "8 hours"], missing=[], added=[],
                            supplied=[]),
        "scores": ScorePair(before=scores, after=better),
        "questions": [],
        "model": "fake",
    }
    values.update(changes)
    return RewriteResult(**values)


class StubRewrite:
    """A stand-in ``rewrite_draft``: records requests, streams the rewrite, saves the session."""

    def __init__(self, make: Callable[[RewriteRequest], RewriteResult] | BaseException | None = None) -> None:
        self.make = make
        self.requests: list[RewriteRequest] = []

    def __call__(self, settings: Any, request: RewriteRequest, on_token: Callable[[str], None] | None = None,
                 on_progress: Callable[..., None] | None = None, store: Any = None) -> RewriteResult:
        self.requests.append(request)
        if not request.draft.strip():
            raise InputError("The draft is empty.", hint="Paste a draft.")
        if isinstance(self.make, BaseException):
            raise self.make
        result = self.make(request) if callable(self.make) else stub_result(request.draft)
        if on_progress:
            on_progress("rewriting")
        for word in result.rewrite.split(" "):
            if on_token:
                on_token(word + " ")
        if store is not None:
            session = store.save(Session(type="rewrite", audience=request.audience, kind=result.kind,
                                         draft=request.draft, result=result.model_dump(mode="json")))
            result.session_id = session.id
        return result

    def install(self, monkeypatch: pytest.MonkeyPatch) -> StubRewrite:
        """Make ``coach.rewrite.rewrite_draft`` this stub for the test."""
        module = types.ModuleType("coach.rewrite")
        module.rewrite_draft = self  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "coach.rewrite", module)
        return self

"""Typed shapes of saved coaching sessions, the queries over them and the progress figures.

A session is stored as its own JSON document and validated again when read back, so these models are the
contract between what was written (by any earlier version) and what the UI shows. The rewrite result is
kept as the dict the pipeline produced (the pipeline owns its shape); only the parts the store relies on
(``rewrite``, ``feedback[].principle_id``, ``scores``) are checked, so a new result field never makes old
sessions unreadable and an export re-imports exactly.

Ratings are 1-5 (``None`` when unrated). The app asks thumbs up or down and stores them as 5 and 1
(``coach.ui.result_view.thumbs``); ratings of 2-4 given with stars by earlier versions stay valid.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

SessionType = Literal["rewrite", "chat", "roleplay"]
Role = Literal["user", "assistant", "system"]
TITLE_MAX = 80
RATING_MIN, RATING_MAX = 1, 5


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def new_session_id() -> str:
    """A fresh session id (uuid4, 32 hex digits)."""
    return uuid.uuid4().hex


_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*+>]\s+|\d+[.)]\s+|subject:\s*|re:\s*|fw:\s*)", re.IGNORECASE)
_NOISE = re.compile(r"^[\W_]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def derive_title(text: str, fallback: str = "Untitled") -> str:
    """The first meaningful line of ``text``, without Markdown/e-mail markers, trimmed to ~80 characters."""
    for line in text.splitlines():
        candidate = " ".join(_MARKUP.sub("", _CONTROL.sub(" ", line)).split())
        if candidate and not _NOISE.match(candidate):
            return _trim(candidate)
    return fallback


def _trim(text: str) -> str:
    if len(text) <= TITLE_MAX:
        return text
    cut = text[: TITLE_MAX - 1].rsplit(" ", 1)[0] or text[: TITLE_MAX - 1]
    return cut.rstrip(" ,;:-") + "…"


class Citation(BaseModel):
    """A corpus passage a chat answer cites."""

    model_config = ConfigDict(extra="allow")

    text: str
    source: str


class Message(BaseModel):
    """One turn of a chat or role-play."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str
    citations: list[Citation] | None = None


class _FeedbackShape(BaseModel):
    model_config = ConfigDict(extra="allow")

    principle_id: str


class _ResultShape(BaseModel):
    """The parts of a rewrite result the store relies on; everything else is kept as it came."""

    model_config = ConfigDict(extra="allow")

    rewrite: str
    feedback: list[_FeedbackShape] = []
    scores: dict[str, dict[str, Any] | None] = {}


class Session(BaseModel):
    """A saved rewrite, chat or role-play."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    id: str = Field(default_factory=new_session_id, pattern=r"^[0-9a-f]{32}$")
    created_at: AwareDatetime = Field(default_factory=utc_now)
    updated_at: AwareDatetime = Field(default_factory=utc_now)
    type: SessionType
    audience: str | None = None
    kind: str | None = None
    title: str = ""
    draft: str = ""
    result: dict[str, Any] | None = None
    messages: list[Message] = []
    principles: list[str] = []
    rating: int | None = Field(default=None, ge=RATING_MIN, le=RATING_MAX)
    notes: str = ""
    user_id: str | None = None

    @field_validator("created_at", "updated_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_validator("result")
    @classmethod
    def _result_shape(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _ResultShape.model_validate(value)
        return value

    @model_validator(mode="after")
    def _derived_fields(self) -> Session:
        # object.__setattr__ avoids re-running validation (validate_assignment) from inside a validator.
        if not self.title:
            object.__setattr__(self, "title", derive_title(self._title_source(), f"Untitled {self.type}"))
        if not self.principles and self.result:
            object.__setattr__(self, "principles", principles_of(self.result))
        return self

    def _title_source(self) -> str:
        if self.draft.strip():
            return self.draft
        return next((m.content for m in self.messages if m.role == "user"), "")

    def search_text(self) -> str:
        """Everything a text search should match, lower-cased."""
        parts = [self.title, self.draft, self.notes, self.audience or "", self.kind or ""]
        if self.result:
            parts.append(str(self.result.get("rewrite", "")))
        parts.extend(m.content for m in self.messages)
        return "\n".join(parts).lower()


def principles_of(result: dict[str, Any]) -> list[str]:
    """The principle ids a rewrite result's feedback cites, in first-seen order."""
    shape = _ResultShape.model_validate(result)
    return list(dict.fromkeys(item.principle_id for item in shape.feedback))


class SessionQuery(BaseModel):
    """Search and filters for listing sessions; ``limit=None`` lists all."""

    model_config = ConfigDict(extra="forbid")

    search: str | None = None
    type: SessionType | None = None
    audience: str | None = None
    kind: str | None = None
    principle: str | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    limit: int | None = Field(default=None, ge=1)
    offset: int = Field(default=0, ge=0)


class PrincipleCount(BaseModel):
    """How many sessions touched a principle."""

    principle: str
    sessions: int


class WeekStats(BaseModel):
    """Average scores of one ISO week's rewrites (``None`` when no rewrite that week had that score)."""

    week_start: date
    sessions: int
    rewrites: int
    fk_grade_before: float | None
    fk_grade_after: float | None
    jargon_before: float | None
    jargon_after: float | None
    top_principles: list[PrincipleCount]


class SessionStats(BaseModel):
    """Progress figures for the UI: per week, oldest first, and the most often flagged principles."""

    sessions: int
    weeks: list[WeekStats]
    top_principles: list[PrincipleCount]


def compute_stats(sessions: Iterable[Session], top: int = 5) -> SessionStats:
    """Progress figures over ``sessions``: per ISO week (Monday, UTC) and overall."""
    by_week: dict[date, list[Session]] = defaultdict(list)
    for session in sessions:
        day = session.created_at.date()
        by_week[day - timedelta(days=day.weekday())].append(session)
    weeks = [_week_stats(start, items, top) for start, items in sorted(by_week.items())]
    every = [s for items in by_week.values() for s in items]
    return SessionStats(sessions=len(every), weeks=weeks, top_principles=_top_principles(every, top))


def _week_stats(start: date, sessions: list[Session], top: int) -> WeekStats:
    rewrites = [s.result for s in sessions if s.result]
    return WeekStats(
        week_start=start,
        sessions=len(sessions),
        rewrites=len(rewrites),
        fk_grade_before=_mean(_score(r, "before", "fk_grade") for r in rewrites),
        fk_grade_after=_mean(_score(r, "after", "fk_grade") for r in rewrites),
        jargon_before=_mean(_score(r, "before", "jargon") for r in rewrites),
        jargon_after=_mean(_score(r, "after", "jargon") for r in rewrites),
        top_principles=_top_principles(sessions, top),
    )


def _top_principles(sessions: list[Session], top: int) -> list[PrincipleCount]:
    counts = Counter(p for s in sessions for p in dict.fromkeys(s.principles))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [PrincipleCount(principle=p, sessions=n) for p, n in ranked]


def _score(result: dict[str, Any], when: str, name: str) -> float | None:
    # A score is a number; a list (e.g. the jargon terms found) counts its items; anything else is unknown.
    value = ((result.get("scores") or {}).get(when) or {}).get(name)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return float(len(value))
    return None


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 2) if present else None

"""Typed shapes of the rewrite service: what goes in, what comes out (and what sessions store)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

AudienceId = Literal["cfo", "coo", "ceo", "board", "business-unit", "end-users"]
KindId = Literal["email", "status", "metrics", "incident", "change_notice", "project_update"]


class Persona(BaseModel):
    """An audience: who they are and what they care about."""

    id: AudienceId
    label: str
    cares_about: str


AUDIENCES: dict[str, Persona] = {
    p.id: p
    for p in (
        Persona(id="cfo", label="the CFO", cares_about="cost, financial risk and return on investment"),
        Persona(id="coo", label="the COO", cares_about="operations, staff productivity and service to customers"),
        Persona(id="ceo", label="the CEO", cares_about="customers, reputation, strategy and growth"),
        Persona(id="board", label="the board", cares_about="risk, strategy, governance and value for money"),
        Persona(id="business-unit", label="the head of a business unit",
                cares_about="their team's work, their customers and their deadlines"),
        Persona(id="end-users", label="the staff who use the system",
                cares_about="what changes for them, when, and what they need to do"),
    )
}

KINDS: dict[str, str] = {
    "email": "email",
    "status": "status update",
    "metrics": "metrics report",
    "incident": "incident summary",
    "change_notice": "change notice",
    "project_update": "project update",
}


class RewriteRequest(BaseModel):
    """A draft to rewrite, for whom, and any business figures the user supplies."""

    draft: str
    audience: AudienceId = "cfo"
    kind: KindId | Literal["auto"] = "auto"
    supplied_facts: list[str] = Field(default_factory=list)


class Passage(BaseModel):
    """A verbatim corpus passage and where it comes from."""

    text: str
    source: str


class FeedbackItem(BaseModel):
    """One change explained: which principle it serves, from which passage."""

    principle_id: str
    principle: str
    draft_excerpt: str
    change: str
    why: str
    passage: Passage


class FactReport(BaseModel):
    """The fact lock: every draft fact kept, or shown as missing; every added figure shown."""

    draft: list[str]
    kept: list[str]
    missing: list[str]
    added: list[str]
    supplied: list[str]


class Scores(BaseModel):
    """Readability and business-language scores of one text."""

    fk_grade: float
    reading_ease: float
    jargon: int
    undefined_acronyms: int
    accountability: int


class ScorePair(BaseModel):
    """Scores before (the draft) and after (the rewrite)."""

    before: Scores
    after: Scores


class MetricTranslation(BaseModel):
    """An IT metric turned into a business outcome by code."""

    metric: str
    business: str
    needs: str | None = None


class Flag(BaseModel):
    """Something in the rewrite a person must check before sending it."""

    kind: Literal["missing_fact", "added_figure", "attribution", "unsupported_claim", "copied", "fallback", "model",
                  "retrieval"]  # retrieval: the documents could not be searched (not about the rewrite's text)
    message: str
    excerpt: str = ""


class Timings(BaseModel):
    """Where the time went, in milliseconds."""

    retrieval_ms: float = 0.0
    first_token_ms: float | None = None
    total_ms: float = 0.0


class RewriteResult(BaseModel):
    """Everything the coach says about one draft."""

    rewrite: str
    audience: AudienceId
    kind: KindId
    feedback: list[FeedbackItem]
    facts: FactReport
    scores: ScorePair
    metric_translations: list[MetricTranslation] = Field(default_factory=list)
    questions: list[str] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)
    copy_ratio: float = 0.0
    # Sentence-by-sentence rewriting: draft sentences the model never rewrote well enough, kept as the draft
    # said them (common jargon swapped for plain words), and how many sentences there were.
    kept_sentences: list[str] = Field(default_factory=list)
    sentences: int = 0
    review_required: bool = False
    model: str
    timings: Timings = Field(default_factory=Timings)
    session_id: str | None = None

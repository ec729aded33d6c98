"""Feedback items, built by code from the analysis: each names a principle and quotes its passage.

No model call: what changed is known exactly (jargon removed, figures translated, the opening moved to the
bottom line), so code says it, and every quote is the catalogue's verbatim passage — or, for an organisation
document, the retrieved chunk, itself a verbatim slice of that document.
"""

from __future__ import annotations

from collections.abc import Callable

from coach.analysis import JARGON, TextAnalysis, find_jargon, sentences
from coach.cleanup import is_greeting_or_sign_off
from coach.corpus import Document, Principle
from coach.index import Passage as IndexPassage
from coach.rewrite_models import FeedbackItem, MetricTranslation, Passage

Rule = Callable[["FeedbackContext"], FeedbackItem | None]


class FeedbackContext:
    """What the rules look at."""

    def __init__(self, draft: str, rewrite: str, kind: str, audience: str, before: TextAnalysis,
                 after: TextAnalysis, translations: list[MetricTranslation], principles: dict[str, Principle],
                 documents: dict[str, Document]) -> None:
        self.draft, self.rewrite, self.kind, self.audience = draft, rewrite, kind, audience
        self.before, self.after, self.translations = before, after, translations
        self.principles, self.documents = principles, documents
        self.draft_sentences = sentences(draft) or [draft.strip()]
        # Where the message starts: "Hi all," is not the sentence a reader's attention goes to.
        self.opening = next((s for s in self.draft_sentences if not is_greeting_or_sign_off(s)),
                            self.draft_sentences[0])

    def item(self, principle_id: str, excerpt: str, change: str, why: str | None = None) -> FeedbackItem | None:
        """A feedback item citing the principle's own passage; None if the catalogue lacks the principle."""
        principle = self.principles.get(principle_id)
        if principle is None:
            return None
        document = self.documents.get(principle.source)
        source = f"{document.title} ({document.author})" if document and document.author else (
            document.title if document else principle.source)
        return FeedbackItem(principle_id=principle.id, principle=principle.name, draft_excerpt=excerpt.strip(),
                            change=change, why=why or principle.statement,
                            passage=Passage(text=principle.quote, source=source))

    def sentence_with(self, needle: str) -> str:
        """The first draft sentence containing ``needle`` (case-insensitive), else the opening sentence."""
        lowered = needle.lower()
        return next((s for s in self.draft_sentences if lowered in s.lower()), self.opening)


def jargon_rule(ctx: FeedbackContext) -> FeedbackItem | None:
    """Jargon and undefined acronyms: what is obvious to IT is not obvious to the reader."""
    terms = ctx.before.jargon + [a for a in ctx.before.undefined_acronyms if a.lower() not in ctx.before.jargon]
    if not terms:
        return None
    after_terms = set(find_jargon(ctx.rewrite)) | set(ctx.after.undefined_acronyms)
    gone = [t for t in terms if t not in after_terms][:4]
    kept = [t for t in terms if t in after_terms][:3]
    parts = []
    if gone:
        parts.append("Replaced " + ", ".join(f'"{t}"' + (f' ({JARGON[t]})' if t in JARGON else "") for t in gone))
    if kept:
        parts.append("still uses " + ", ".join(f'"{t}"' for t in kept) + ": explain or drop them")
    return ctx.item("obvious-to-you", ctx.sentence_with(terms[0]), "; ".join(parts) + ".")


def metrics_rule(ctx: FeedbackContext) -> FeedbackItem | None:
    """IT numbers without their business meaning."""
    if ctx.translations:
        first = ctx.translations[0]
        change = f"Said what it means for the business: {first.business}"
        if first.needs:
            change += f" To finish the thought, answer: {first.needs}"
        return ctx.item("business-metrics", ctx.sentence_with(first.metric.split(" to ")[0]), change)
    if ctx.before.it_metrics:
        kind, words = ctx.before.it_metrics[0]
        return ctx.item("business-metrics", ctx.sentence_with(words[:25]),
                        f"The {kind.replace('_', ' ')} figure is stated as IT sees it; say who it affected and how.")
    return None


def outcome_rule(ctx: FeedbackContext) -> FeedbackItem | None:
    """The opening should be the business bottom line."""
    opening = sentences(ctx.rewrite)[:1]
    if not opening:
        return None
    return ctx.item("lead-with-outcome", ctx.opening,
                    f'Opened with the bottom line for the reader: "{opening[0]}"')


def accountability_rule(ctx: FeedbackContext) -> FeedbackItem | None:
    """Commitments need a milestone, an owner and a date."""
    if ctx.kind not in ("status", "project_update", "change_notice"):
        return None
    absent = [name for name, present in ctx.before.accountability.items() if not present]
    if not absent:
        return None
    anchor = next((s for s in ctx.draft_sentences if " will " in f" {s.lower()} "), ctx.draft_sentences[-1])
    return ctx.item("milestones-owners-dates", anchor,
                    f"The draft names no {' or '.join(absent)}; add who is accountable for the next step and by when.")


def brevity_rule(ctx: FeedbackContext) -> FeedbackItem | None:
    """Shorter and clearer, so the reader takes notice."""
    before, after = len(ctx.draft.split()), len(ctx.rewrite.split())
    if after >= before:
        return None
    change = (f"Cut from {before} to {after} words and from reading grade {ctx.before.fk_grade:g} "
              f"to {ctx.after.fk_grade:g}; one paragraph instead of headings and lists.")
    return ctx.item("communicate-to-be-noticed", ctx.opening, change)


def audience_rule(ctx: FeedbackContext) -> FeedbackItem | None:
    """Change notices for end users: what changes for them, and when."""
    if ctx.audience == "end-users" or ctx.kind == "change_notice":
        return ctx.item("change-by-persona", ctx.opening,
                        "Told the affected people what changes for them and when, before the technical detail.")
    if ctx.kind == "incident":
        return ctx.item("facts-over-emotions", ctx.opening,
                        "Kept the account to what happened, its effect and the fix, without blame.")
    return None


RULES: tuple[Rule, ...] = (outcome_rule, jargon_rule, metrics_rule, accountability_rule, brevity_rule, audience_rule)


def organisation_item(ctx: FeedbackContext, passages: list[IndexPassage]) -> FeedbackItem | None:
    """When the organisation's own documents speak to this draft, point at the best passage."""
    own = [p for p in passages if p.doc_id in ctx.documents and ctx.documents[p.doc_id].origin == "organisation"]
    principle = ctx.principles.get("align-with-vision")
    if not own or principle is None:
        return None
    best = own[0]
    return FeedbackItem(principle_id=principle.id, principle=principle.name,
                        draft_excerpt=ctx.opening,
                        change=f'Check the wording against your organisation\'s "{best.title}".',
                        why=principle.statement, passage=Passage(text=best.text, source=best.title))


def build_feedback(ctx: FeedbackContext, passages: list[IndexPassage]) -> list[FeedbackItem]:
    """Every rule that applies, then the organisation's own guidance if retrieval found any."""
    items = [item for rule in RULES if (item := rule(ctx)) is not None]
    org = organisation_item(ctx, passages)
    return [*items, org] if org else items

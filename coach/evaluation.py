"""`coach eval`: run the rewrite pipeline over a JSONL file of drafts and measure what matters.

Per draft: facts kept / flagged / silently dropped (against the line's own ``facts`` when given, exact
strings, else the pipeline's), invented figures left unflagged, jargon and reading grade before/after, copy
ratio, attribution flags, citation validity, feedback count and latency. Read the outputs too: the figures
cannot tell a fact attached to the wrong event from a right one.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from coach.config import Settings
from coach.corpus import load_documents, load_principles, normalise_space
from coach.errors import CoachError, InputError
from coach.models import ChatModelHandle
from coach.rewrite import rewrite_draft
from coach.rewrite_models import RewriteRequest, RewriteResult
from coach.verify import has_fact


class EvalCase(BaseModel):
    """One line of the evaluation file."""

    id: str
    kind: str = "auto"
    text: str
    facts: list[str] | None = None
    audience: str = "cfo"


class EvalRow(BaseModel):
    """What was measured on one draft."""

    id: str
    facts: int
    kept: int
    flagged: int
    dropped: int
    invented_unflagged: int
    added_flagged: int
    jargon_before: int
    jargon_after: int
    fk_before: float
    fk_after: float
    copy_ratio: float
    attribution_flags: int
    claim_flags: int = 0
    fallback_sentences: int
    kept_sentences: int = 0  # sentences the model never rewrote well enough: shown as the draft said them
    sentences: int = 0
    feedback: int
    citations_valid: bool
    seconds: float
    error: str | None = None
    rewrite: str = ""


def load_cases(path: Path) -> list[EvalCase]:
    """Read a JSONL file of drafts; a bad line is an error naming the line."""
    cases = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read {path}: {exc}.") from None
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                cases.append(EvalCase.model_validate_json(line))
            except ValueError:
                raise InputError(f"{path}:{number} is not a valid eval line (needs id and text).") from None
    return cases


def _citations_valid(settings: Settings, result: RewriteResult) -> bool:
    documents = load_documents(settings)
    corpus = [normalise_space(d.text) for d in documents]
    catalogue = {p.id for p in load_principles(settings, documents)}
    return all(f.principle_id in catalogue and any(normalise_space(f.passage.text) in text for text in corpus)
               for f in result.feedback)


def score_case(settings: Settings, case: EvalCase, result: RewriteResult, seconds: float) -> EvalRow:
    """Compare one result with the case's expected facts."""
    facts = case.facts if case.facts is not None else result.facts.draft
    kept = [f for f in facts if has_fact(result.rewrite, f)]
    flagged = [f for f in facts if not has_fact(result.rewrite, f) and any(f in m for m in result.facts.missing)]
    flagged_added = {f.excerpt for f in result.flags if f.kind == "added_figure"}
    return EvalRow(
        id=case.id, facts=len(facts), kept=len(kept), flagged=len(flagged),
        dropped=len(facts) - len(kept) - len(flagged),
        invented_unflagged=len([a for a in result.facts.added if a not in flagged_added]),
        added_flagged=len(flagged_added), jargon_before=result.scores.before.jargon,
        jargon_after=result.scores.after.jargon, fk_before=result.scores.before.fk_grade,
        fk_after=result.scores.after.fk_grade, copy_ratio=result.copy_ratio,
        attribution_flags=sum(f.kind == "attribution" for f in result.flags),
        claim_flags=sum(f.kind == "unsupported_claim" for f in result.flags),
        fallback_sentences=sum(f.kind == "fallback" for f in result.flags), kept_sentences=len(result.kept_sentences),
        sentences=result.sentences, feedback=len(result.feedback),
        citations_valid=_citations_valid(settings, result), seconds=round(seconds, 1), rewrite=result.rewrite,
    )


def run_eval(settings: Settings, cases: list[EvalCase], handle: ChatModelHandle | None = None,
             on_row: Callable[[EvalRow], None] | None = None) -> list[EvalRow]:
    """Rewrite every case and measure it; a failing case is recorded, not fatal."""
    import time

    rows = []
    for case in cases:
        started = time.perf_counter()
        try:
            request = RewriteRequest(draft=case.text, audience=case.audience, kind=case.kind)  # type: ignore[arg-type]
            result = rewrite_draft(settings, request, handle=handle)
            row = score_case(settings, case, result, time.perf_counter() - started)
        except CoachError as exc:
            row = EvalRow(id=case.id, facts=len(case.facts or []), kept=0, flagged=0, dropped=len(case.facts or []),
                          invented_unflagged=0, added_flagged=0, jargon_before=0, jargon_after=0, fk_before=0,
                          fk_after=0, copy_ratio=0, attribution_flags=0, fallback_sentences=0, feedback=0,
                          citations_valid=False, seconds=round(time.perf_counter() - started, 1), error=str(exc))
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def summary(rows: list[EvalRow]) -> dict[str, float | int]:
    """Totals over all drafts."""
    ok = [r for r in rows if r.error is None] or rows
    facts = sum(r.facts for r in rows)
    return {
        "drafts": len(rows), "errors": sum(r.error is not None for r in rows), "facts": facts,
        "kept": sum(r.kept for r in rows), "flagged": sum(r.flagged for r in rows),
        "dropped": sum(r.dropped for r in rows),
        "missing_share": round(sum(r.flagged + r.dropped for r in rows) / max(1, facts), 3),
        "invented_unflagged": sum(r.invented_unflagged for r in rows),
        "jargon_before": sum(r.jargon_before for r in ok), "jargon_after": sum(r.jargon_after for r in ok),
        "fk_improved_share": round(sum(r.fk_after <= r.fk_before for r in ok) / max(1, len(ok)), 3),
        "median_copy_ratio": round(statistics.median(r.copy_ratio for r in ok), 3) if ok else 0.0,
        "attribution_flags": sum(r.attribution_flags for r in rows),
        "claim_flags": sum(r.claim_flags for r in rows),
        "fallback_sentences": sum(r.fallback_sentences for r in rows),
        "kept_sentences": sum(r.kept_sentences for r in rows), "sentences": sum(r.sentences for r in rows),
        "citations_valid_share": round(sum(r.citations_valid for r in ok) / max(1, len(ok)), 3),
        "min_feedback": min((r.feedback for r in ok), default=0),
        "median_seconds": round(statistics.median(r.seconds for r in ok), 1) if ok else 0.0,
    }


_COLUMNS = ("id", "facts", "kept", "flagged", "dropped", "invented_unflagged", "jargon_before", "jargon_after",
            "fk_before", "fk_after", "copy_ratio", "attribution_flags", "claim_flags", "fallback_sentences",
            "kept_sentences", "sentences", "feedback", "citations_valid", "seconds")


def markdown_report(rows: list[EvalRow]) -> str:
    """A Markdown table per draft, the totals, and every rewrite to read."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for row in rows:
        data = row.model_dump()
        lines.append("| " + " | ".join(str(data[c]) for c in _COLUMNS) + " |")
    lines += ["", "## Totals", "", "```json", json.dumps(summary(rows), indent=2), "```", "", "## Rewrites", ""]
    for row in rows:
        lines += [f"### {row.id}", "", row.error or row.rewrite, ""]
    return "\n".join(lines)

"""The rewrite service: a draft in, a verified, principle-cited rewrite out.

1. Validate (empty, binary, too many tokens) before any model call.
2. Analyse with code: facts, jargon, readability, accountability, IT metrics; translate metrics (code does
   the arithmetic; a missing business figure becomes a question).
3. Retrieve passages (organisation documents may speak to the draft).
4. Rewrite with the strategy the model's profile calls for (``rewrite_strategies``).
5. Verify with code: every draft fact in the rewrite (a fact still missing is restored with the draft's own
   sentence, marked, and reported); figures nobody supplied are flagged; facts placed in a sentence about
   something else are flagged; copying is measured.
6. Feedback by code, each item citing a catalogue principle and its verbatim passage; scores before/after.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from coach.analysis import analyse, count_jargon, sentences
from coach.cleanup import clean_draft
from coach.config import Settings
from coach.corpus import load_documents, load_principles
from coach.errors import CoachError, InputError, InputTooLarge
from coach.facts import invented_figures
from coach.feedback import FeedbackContext, build_feedback
from coach.metrics import translate
from coach.models import ChatModelHandle, open_chat_model
from coach.plain import plain_words
from coach.rewrite_models import (
    AUDIENCES,
    KINDS,
    FactReport,
    Flag,
    KindId,
    MetricTranslation,
    RewriteRequest,
    RewriteResult,
    ScorePair,
    Scores,
    Timings,
)
from coach.rewrite_strategies import ProgressSink, StrategyResult, TokenSink, rewrite_small, rewrite_strong
from coach.tokens import count_tokens
from coach.verify import (
    TOKEN_RE,
    Placeholders,
    attribution_flags,
    copy_ratio,
    fact_fragment,
    fact_sentence,
    facts_of,
    has_fact,
    to_placeholders,
    unsupported_claims,
)

if TYPE_CHECKING:
    from coach.index import Passage as IndexPassage
    from coach.sessions import SessionStore

log = logging.getLogger(__name__)

MAX_DRAFT_TOKENS = 1500
MAX_DRAFT_BYTES = 64_000
FALLBACK_PREFIX = "From your draft: "


def read_draft_bytes(data: bytes, name: str = "the draft") -> str:
    """Decode an uploaded or piped draft; binary or non-UTF-8 input is refused with a clear message."""
    if len(data) > MAX_DRAFT_BYTES:
        raise InputTooLarge(f"{name} is {len(data):,} bytes; the limit is {MAX_DRAFT_BYTES:,}.",
                            hint="Paste the part you want rewritten.")
    if b"\x00" in data:
        raise InputError(f"{name} looks like a binary file, not text.", hint="Paste or upload plain text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{name} is not UTF-8 text.", hint="Save it as UTF-8 and try again.") from None


def validate_draft(draft: str) -> str:
    """The draft, stripped; errors for empty, binary or over-budget text (no model call is made)."""
    text = draft.replace("\r\n", "\n").strip()
    if not text:
        raise InputError("The draft is empty.", hint="Paste the text you want rewritten.")
    if "\x00" in text or sum(not ch.isprintable() and ch not in "\n\t" for ch in text) > max(10, len(text) // 50):
        raise InputError("The draft contains binary data.", hint="Paste plain text.")
    if any("\ud800" <= ch <= "\udfff" for ch in text):  # lone surrogates: invalid UTF-8 bytes from a terminal
        raise InputError("The draft is not valid UTF-8 text.", hint="Save it as UTF-8 and try again.")
    if len(text) > MAX_DRAFT_BYTES:  # checked before tokenising: a megabyte-long paste takes seconds to count
        raise InputTooLarge(f"The draft is {len(text):,} characters, far over the limit of {MAX_DRAFT_TOKENS:,} "
                            "tokens (about 1,100 words).", hint="Split it and rewrite one part at a time.")
    tokens = count_tokens(text)
    if tokens > MAX_DRAFT_TOKENS:
        raise InputTooLarge(f"The draft is {tokens:,} tokens; the limit is {MAX_DRAFT_TOKENS:,} (about 1,100 words).",
                            hint="Split it and rewrite one part at a time.")
    return text


_KIND_HINTS: list[tuple[KindId, str]] = [
    ("incident", r"\b(?:outage|incident|post-?mortem|root cause|degraded|failed|downtime)\b"),
    ("change_notice",
     r"\b(?:maintenance|migration|will be (?:moved|upgraded|replaced)|rollout|change window|switchover)\b"),
    ("status", r"\[(?:update|final|initial)|\bstatus\b|\bupdate\s*[-–:]"),
    ("metrics", r"(?:\d[\d,.]*\s*(?:%|million|billion|trillion|requests|users)[^\n]*\n){3,}"),
    ("project_update", r"\b(?:milestone|project|sprint|phase|we made progress|hired)\b"),
    ("email", r"^\s*(?:hi|hello|dear)\b"),
]


def detect_kind(draft: str) -> KindId:
    """Guess the kind of text from its words and shape (status pages before incidents, which they mention)."""
    if re.search(_KIND_HINTS[2][1], draft, re.IGNORECASE):
        return "status"
    for kind, pattern in _KIND_HINTS:
        if re.search(pattern, draft, re.IGNORECASE | re.MULTILINE):
            return kind
    return "email"


def _scores(text: str) -> Scores:
    found = analyse(text)
    return Scores(fk_grade=found.fk_grade, reading_ease=found.reading_ease, jargon=count_jargon(text),
                  undefined_acronyms=len(found.undefined_acronyms), accountability=found.accountability_score)


def _generate(handle: ChatModelHandle, request: RewriteRequest, kind: KindId, cleaned: str, facts: list[str],
              on_token: TokenSink | None, on_progress: ProgressSink | None, started: float | None = None
              ) -> tuple[str, StrategyResult, Placeholders | None]:
    persona, kind_word = AUDIENCES[request.audience], KINDS[kind]
    if handle.profile.small:
        placeholders = to_placeholders(cleaned)
        result = rewrite_small(handle, persona, kind_word, placeholders, on_token, on_progress, started)
        restored = placeholders.restore(result.best.text)
        # A token the draft never had cannot be restored: never show it raw (the flag says what happened).
        return TOKEN_RE.sub("…", restored), result, placeholders
    result = rewrite_strong(handle, persona, kind_word, cleaned, facts, request.supplied_facts, on_token, on_progress)
    return result.best.text, result, None


def _fallback(rewrite: str, cleaned: str, missing: list[str]) -> tuple[str, list[Flag]]:
    """For each fact the model dropped, append the clause of the draft that holds it (plain words), marked."""
    fragments: list[str] = []
    for fact in missing:
        sentence = fact_sentence(cleaned, fact)
        if sentence is None or any(fact in f for f in fragments):
            continue
        protected = to_placeholders(fact_fragment(sentence, fact))
        fragments.append(protected.restore(plain_words(protected.text)))
    if not fragments:
        return rewrite, []
    text = rewrite.rstrip() + "\n\n" + "\n".join(f"{FALLBACK_PREFIX}\u201c{f}\u201d" for f in fragments)
    flags = [Flag(kind="fallback", message="The model dropped a fact; it was added back from your draft.",
                  excerpt=f) for f in fragments]
    return text, flags


def _verify(draft: str, rewrite: str, facts: list[str], supplied: list[str],
            translations: list[MetricTranslation]) -> tuple[FactReport, list[Flag]]:
    kept = [f for f in facts if has_fact(rewrite, f)]
    missing = [f for f in facts if not has_fact(rewrite, f)]
    allowed = [draft, *supplied, *(t.business for t in translations)]
    added = invented_figures(rewrite, allowed)
    flags = [Flag(kind="missing_fact", message=f'"{m}" from the draft is not in the rewrite.', excerpt=m)
             for m in missing]
    flags += [Flag(kind="added_figure", message=f'"{a}" is not in the draft or your figures: check it.', excerpt=a)
              for a in added]
    report = FactReport(draft=facts, kept=kept, missing=missing, added=added, supplied=list(supplied))
    return report, flags


def _attribution(model_text: str, placeholders: Placeholders | None) -> list[Flag]:
    """Facts the small model put in a sentence about something else (only the small strategy has tokens)."""
    if placeholders is None:
        return []
    return [Flag(kind="attribution",
                 message=f'"{f.fact}" may be attached to the wrong event; '
                         f'in the draft it belongs to: "{f.draft_sentence}"',
                 excerpt=f.rewrite_sentence)
            for f in attribution_flags(placeholders.text, model_text, placeholders)]


def _claims(draft: str, rewrite: str) -> list[Flag]:
    """Sentences that claim a benefit, cost or cause the draft does not state."""
    reference = draft + "\n" + plain_words(draft)
    return [Flag(kind="unsupported_claim", excerpt=sentence,
                 message=f"Says {', '.join(repr(w) for w in words)}, which the draft does not: check it is true.")
            for sentence, words in unsupported_claims(reference, rewrite)]


def _retrieve(settings: Settings, draft: str) -> tuple[list[IndexPassage], float, list[Flag]]:
    """Passages for the draft's opening; a failure does not stop the rewrite but is said (a Chroma server that
    is down must not pass unnoticed)."""
    started = time.perf_counter()
    flags: list[Flag] = []
    try:
        from coach.index import open_index

        opening = sentences(draft)
        passages = open_index(settings).query(opening[0] if opening else draft, k=4)
    except Exception as exc:  # retrieval only adds organisation guidance; a rewrite must not fail on it
        log.warning("retrieval failed: %s", type(exc).__name__)
        reason = str(exc) if isinstance(exc, CoachError) else type(exc).__name__
        flags.append(Flag(kind="retrieval", message="Your organisation's documents were not searched for this "
                                                    f"draft, so the feedback draws on the essays only: {reason}"))
        passages = []
    return passages, (time.perf_counter() - started) * 1000, flags


def rewrite_draft(settings: Settings, request: RewriteRequest, *, on_token: TokenSink | None = None,
                  on_progress: ProgressSink | None = None, store: SessionStore | None = None,
                  handle: ChatModelHandle | None = None) -> RewriteResult:
    """Rewrite ``request.draft`` for its audience; see the module docstring for the steps."""
    started = time.perf_counter()
    draft = validate_draft(request.draft)
    kind: KindId = detect_kind(draft) if request.kind == "auto" else request.kind
    _progress(on_progress, "analysing")
    cleaned = clean_draft(draft) or draft
    # Figures first, word statements ("no downtime") last; the draft is scanned once.
    facts = [f.text for f in sorted(facts_of(cleaned), key=lambda f: f.kind == "statement")]
    translations, questions = translate(draft, request.supplied_facts)
    passages, retrieval_ms, retrieval_flags = _retrieve(settings, draft)
    handle = handle or open_chat_model(settings)
    _progress(on_progress, "writing")
    rewrite, strategy, placeholders = _generate(handle, request, kind, cleaned, facts, on_token, on_progress, started)
    _progress(on_progress, "checking")
    flags = _attribution(strategy.best.text, placeholders) + _claims(draft, rewrite)
    flags += [Flag(kind="model", message=f"The model referred to a figure that is not in the draft ({p}); it was "
                   "left out.", excerpt=p) for p in strategy.best.problems if p.startswith("unknown token")]
    rewrite, fallback_flags = _fallback(rewrite, cleaned, [f for f in facts if not has_fact(rewrite, f)])
    rewrite = _append_translations(rewrite, translations)
    report, fact_flags = _verify(draft, rewrite, facts, request.supplied_facts, translations)
    result = _assemble(settings, request, kind, draft, rewrite, report, [*fact_flags, *fallback_flags, *flags],
                       translations, questions, passages, handle, strategy)
    result.flags += retrieval_flags  # said, but not a reason to review the rewrite's text
    if placeholders is not None:
        result.kept_sentences = [placeholders.restore(k) for k in strategy.kept]
        result.sentences = strategy.sentences
    result.timings = Timings(retrieval_ms=round(retrieval_ms, 1), first_token_ms=strategy.generations[0].first_token_ms,
                             total_ms=round((time.perf_counter() - started) * 1000, 1))
    if store is not None:
        result.session_id = _save(store, request, result)
    return result


def _append_translations(rewrite: str, translations: list[MetricTranslation]) -> str:
    """Code-computed business figures (complete ones only) close the rewrite, clearly as ours."""
    complete = [t.business for t in translations if t.needs is None]
    return rewrite if not complete else rewrite.rstrip() + "\n\nIn business terms: " + " ".join(complete)


def _assemble(settings: Settings, request: RewriteRequest, kind: KindId, draft: str, rewrite: str,
              report: FactReport, flags: list[Flag], translations: list[MetricTranslation], questions: list[str],
              passages: list[IndexPassage], handle: ChatModelHandle, strategy: StrategyResult) -> RewriteResult:
    documents = {d.id: d for d in load_documents(settings)}
    principles = {p.id: p for p in load_principles(settings, list(documents.values()))}
    context = FeedbackContext(draft, rewrite, kind, request.audience, analyse(draft), analyse(rewrite),
                              translations, principles, documents)
    ratio = copy_ratio(draft, rewrite)
    if ratio > 0.5:
        message = f"The rewrite repeats much of the draft ({ratio:.0%} of its phrases)."
        flags.append(Flag(kind="copied", message=message))
    return RewriteResult(
        rewrite=rewrite, audience=request.audience, kind=kind, feedback=build_feedback(context, passages),
        facts=report, scores=ScorePair(before=_scores(draft), after=_scores(rewrite)),
        metric_translations=translations, questions=questions, flags=flags, copy_ratio=ratio,
        review_required=handle.profile.small or bool(flags), model=handle.profile.name,
    )


def _save(store: SessionStore, request: RewriteRequest, result: RewriteResult) -> str:
    from coach.session_models import Session, derive_title

    session = Session(type="rewrite", audience=request.audience, kind=result.kind, title=derive_title(request.draft),
                      draft=request.draft, result=result.model_dump(mode="json"),
                      principles=sorted({f.principle_id for f in result.feedback}))
    saved = store.save(session)
    return saved.id


def _progress(sink: Callable[[str], None] | None, stage: str) -> None:
    if sink is not None:
        sink(stage)

"""Checks that make a model's rewrite safe to show: fact tokens, copying and attribution.

The embedded model never sees a figure: each fact becomes a typed token (``[TIME1]``, ``[PERCENT2]``) that
code restores afterwards, so a missing fact is detected exactly. The attribution check then asks, for each
restored fact, whether its sentence in the rewrite is about the same thing as the draft sentence it came from
(shared content words, and no other draft sentence a better match); what fails is flagged for the reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from coach.analysis import sentences
from coach.facts import Fact, extract_facts
from coach.tokens import is_everyday_word

TOKEN_RE = re.compile(r"\[([A-Z]+)(\d+)\]")
_LABEL = {"date": "DATE", "time": "TIME", "duration": "DURATION", "percent": "PERCENT", "money": "AMOUNT",
          "number": "NUMBER", "code": "CODE", "system": "SYSTEM"}
STOP_WORDS = frozenset(["a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "from", "by", "with", "as", "is", "are", "was", "were", "be", "been", "being", "this", "that", "these", "those", "it", "its", "we", "our", "us", "you", "your", "they", "their", "them", "he", "she", "his", "her", "i", "me", "my", "will", "would", "can", "could", "should", "may", "might", "must", "has", "have", "had", "do", "does", "did", "not", "no", "so", "than", "then", "there", "here", "when", "while", "during", "after", "before", "about", "into", "over", "under", "up", "down", "out", "off", "all", "any", "each", "some", "more", "most", "less", "also", "just", "only", "very", "such", "which", "who", "whom", "what", "where", "why", "how", "per", "approximately", "around", "since", "until"])


@dataclass
class Placeholders:
    """A text with its facts replaced by typed tokens, and the way back."""

    text: str
    tokens: dict[str, str] = field(default_factory=dict)  # token -> exact fact text
    statements: list[str] = field(default_factory=list)  # facts kept as words ("no downtime")

    def restore(self, text: str) -> str:
        """Put the exact fact strings back in place of their tokens."""
        restored = TOKEN_RE.sub(lambda m: self.tokens.get(m.group(0), m.group(0)), text)
        # "projects projects", "up to up to": the model repeated words the restored fact already holds.
        return re.sub(r"(?<![\w~])([\w~]+(?: [\w~]+){0,2})( \1\b)+", r"\1", restored)


def to_placeholders(text: str) -> Placeholders:
    """Replace every fact of ``text`` by a typed token; the same fact text always gets the same token."""
    result = Placeholders(text="")
    by_text: dict[str, str] = {}
    counters: dict[str, int] = {}
    pieces: list[str] = []
    position = 0
    for fact in extract_facts(text):
        if fact.kind == "statement":
            result.statements.append(fact.text)
            continue
        if fact.text not in by_text:
            label = _LABEL[fact.kind]
            counters[label] = counters.get(label, 0) + 1
            by_text[fact.text] = f"[{label}{counters[label]}]"
            result.tokens[by_text[fact.text]] = fact.text
        pieces += [text[position:fact.start], by_text[fact.text]]
        position = fact.end
    result.text = "".join(pieces) + text[position:]
    return result


def token_problems(output: str, placeholders: Placeholders) -> tuple[list[str], list[str], list[str]]:
    """Missing tokens, unknown tokens, and tokens used more than three times."""
    used = [m.group(0) for m in TOKEN_RE.finditer(output)]
    missing = [t for t in placeholders.tokens if t not in used]
    unknown = sorted({t for t in used if t not in placeholders.tokens})
    overused = sorted({t for t in used if used.count(t) > 3})
    return missing, unknown, overused


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9][a-z0-9'%.-]*[a-z0-9%]|[a-z0-9]", text.lower())


def copy_ratio(draft: str, rewrite: str, n: int = 5) -> float:
    """Share of the draft's word n-grams found in the rewrite (1.0 = a copy, 0 = all new words)."""
    a, b = _words(draft), _words(rewrite)
    grams = {tuple(a[i:i + n]) for i in range(len(a) - n + 1)}
    if not grams:
        return 0.0
    found = {tuple(b[i:i + n]) for i in range(len(b) - n + 1)}
    return round(len(grams & found) / len(grams), 3)


def content_stems(text: str) -> set[str]:
    """Content-word stems (first five letters), without tokens or stop words."""
    plain = TOKEN_RE.sub(" ", text)
    return {w[:5] for w in _words(plain) if w not in STOP_WORDS and not w[0].isdigit() and len(w) > 2}


@dataclass
class AttributionFlag:
    """A restored fact whose rewritten sentence is not about the same thing as its draft sentence."""

    token: str
    fact: str
    rewrite_sentence: str
    draft_sentence: str


def attribution_flags(draft_ph: str, output_ph: str, placeholders: Placeholders) -> list[AttributionFlag]:
    """Flag tokens placed in a sentence about something else than in the draft."""
    draft_sentences = sentences(draft_ph)
    flags: list[AttributionFlag] = []
    for out_sentence in sentences(output_ph):
        out_stems = content_stems(out_sentence)
        out_tokens = list(dict.fromkeys(m.group(0) for m in TOKEN_RE.finditer(out_sentence)))
        for token in out_tokens:
            if token not in placeholders.tokens:
                continue
            home = [s for s in draft_sentences if token in s]
            if not home:
                continue
            # Shared words, plus other facts that sat with this one in the draft: both say "same event".
            own = max(len(out_stems & content_stems(s)) + sum(t in s for t in out_tokens if t != token) for s in home)
            # Draft sentences holding none of this sentence's facts: a merged sentence is not misattribution.
            others = [len(out_stems & content_stems(s)) for s in draft_sentences if not any(t in s for t in out_tokens)]
            if own == 0 or (others and max(others) >= own + 2):
                best = max(home, key=lambda s: len(out_stems & content_stems(s)))
                flags.append(AttributionFlag(token, placeholders.tokens[token],
                                             placeholders.restore(out_sentence), placeholders.restore(best)))
    return flags


def has_fact(text: str, fact: str) -> bool:
    """The fact is in the text as the draft wrote it; a word statement ("no downtime") may open a sentence there
    ("No downtime is expected")."""
    if fact in text:
        return True
    return fact[:1].islower() and not any(c.isdigit() for c in fact) and fact[0].upper() + fact[1:] in text


def fact_sentence(text: str, fact: str) -> str | None:
    """The first sentence of ``text`` that holds ``fact``."""
    return next((s for s in sentences(text) if fact in s), None)


def facts_of(text: str) -> list[Fact]:
    """The draft's facts, each text once (first occurrence)."""
    seen: dict[str, Fact] = {}
    for fact in extract_facts(text):
        seen.setdefault(fact.text, fact)
    return list(seen.values())


_CLAUSE_BREAK = re.compile(r"[;:()]|,\s|\s[-–—]\s")


def _word_cut(text: str, count: int, from_end: bool) -> int:
    """Offset in ``text`` that keeps ``count`` words from its end (or start)."""
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    if count >= len(spans):
        return 0 if from_end else len(text)
    if count <= 0:
        return len(text) if from_end else 0
    return spans[-count][0] if from_end else spans[count - 1][1]


def fact_fragment(sentence: str, fact: str, max_words: int = 16) -> str:
    """The clause of ``sentence`` holding ``fact``, widened to a few words of context, cut to ``max_words``."""
    start = sentence.find(fact)
    if start < 0:
        return sentence
    end = start + len(fact)
    cuts = [m.span() for m in _CLAUSE_BREAK.finditer(sentence) if m.end() <= start or m.start() >= end]
    lefts = sorted({0, *(b for _, b in cuts if b <= start)})
    rights = sorted({len(sentence), *(a for a, _ in cuts if a >= end)})
    left, right = lefts.pop(), rights.pop(0)
    want = len(fact.split()) + 5
    while len(sentence[left:right].split()) < want and (lefts or rights):
        if rights and (len(sentence[end:right].split()) <= len(sentence[left:start].split()) or not lefts):
            right = rights.pop(0)
        elif lefts:
            left = lefts.pop()
    spare = max(0, max_words - len(fact.split()))
    before, after = sentence[left:start], sentence[end:right]
    keep_after = min(len(after.split()), max(spare // 2, spare - len(before.split())))
    keep_before = min(len(before.split()), spare - keep_after)
    new_left = left + _word_cut(before, keep_before, from_end=True)
    new_right = end + _word_cut(after, keep_after, from_end=False)
    fragment = sentence[new_left:new_right].strip(" ,;:.(")
    opened = "…" if sentence[:new_left].strip() else ""
    closed = "…" if sentence[new_right:].strip(" .") else ""
    return f"{opened}{fragment}{closed}"


# Words that claim a benefit, a cost or a cause: a small model likes to add them ("for better performance").
_CLAIM_STEMS = ("improv", "better", "reduc", "saving", "save", "saved", "cost", "cheap", "expens", "faster", "quick",
                "speed", "performance", "reliab", "secur", "safe", "risk", "benefit", "effici", "increas", "decreas",
                "revenue", "profit", "loss", "lost", "protect", "prevent", "resolv",
                "fixed", "stabl", "growth", "grew", "success", "fantastic", "significant")


# A direction the draft gives in other words may be said with the claim word: "raise the limit" -> "increase".
_SAME_DIRECTION = {
    "increas": r"\b(?:rose|rise[sn]?|rising|raise[sd]?|raising|grew|grow|doubl|tripl|climb|went up|up from|elevat|higher|spike|surg)",
    "decreas": r"\b(?:fell|fall|drop|lower|cut|down from|shr[iau]nk|halv)",
    "reduc": r"\b(?:fell|fall|drop|lower|cut|down from|shr[iau]nk|halv|decreas)",
    # "guardrails" are safety measures; "phishing-proof" login is phishing protection.
    "safe": r"\b(?:guardrail|safeguard)",
    "protect": r"(?:-proof\b|\bguardrail|\bsafeguard)",
}


def unsupported_claims(draft: str, rewrite: str) -> list[tuple[str, list[str]]]:
    """Rewrite sentences using benefit/cost/cause words the draft never uses: (sentence, the words)."""
    draft_lower = draft.lower()
    causal = r"\b(?:because|due to|caused|cause[sd]?|result(?:ed|ing)? in|led to|leading to|trigger(?:s|ed)?)\b"
    # "Recovery was delayed by X" says X caused the delay, as "delayed due to X" does.
    agent = (r"\b(?:delayed|slowed|blocked|stopped|prevented|hampered|hindered|interrupted|broken|disrupted) by\b"
             r"|\bin turn\b")  # "which in turn created contention": a cause
    draft_has_cause = re.search(causal, draft_lower) is not None or re.search(agent, draft_lower) is not None
    found = []
    for sentence in sentences(rewrite):
        lower = sentence.lower()
        words = [stem for stem in _CLAIM_STEMS if re.search(rf"\b{stem}", lower) and not re.search(rf"\b{stem}", draft_lower)
                 and not (stem in _SAME_DIRECTION and re.search(_SAME_DIRECTION[stem], draft_lower))]
        if not draft_has_cause and re.search(causal, lower):
            words.append("a cause")
        vague = re.search(r"\b(?:several|many|a few|few|multiple)\s+(?:minutes|hours|days|weeks|months)\b", lower)
        if vague and vague.group(0) not in draft_lower:
            words.append(vague.group(0))
        if words:
            found.append((sentence, words))
    return found


COMMON_WORDS = frozenset(["business", "customer", "customers", "user", "users", "staff", "people", "service", "services", "system", "systems", "team", "teams", "issue", "issues", "problem", "problems", "time", "times", "help", "helps", "ensure", "work", "working", "affected", "affect", "affecting", "impact", "impacted", "new", "also", "will", "would", "result", "results", "change", "changes", "changed", "process", "period", "during", "today", "week", "month", "year", "years", "update", "updates", "data", "place", "able", "make", "made", "need", "needs", "number", "numbers", "high", "higher", "low", "lower", "part", "parts", "well", "available", "availability", "expect", "expected", "some", "more", "most", "less", "caused", "cause", "causing", "leading", "led", "went", "using", "used", "added", "another", "progress", "complete", "completed"])


_CONTRACTED = frozenset(["don", "doesn", "didn", "won", "isn", "aren", "wasn", "weren", "hasn", "haven", "let",
                         "we", "they", "it", "you", "i", "that", "there", "can", "couldn", "shouldn"])


def novel_words(draft: str, rewrite: str) -> list[str]:
    """Content words of the rewrite that neither the draft nor common prose uses (a sign of invention): not a
    contraction ("we'll"), a part of a hyphenated draft word ("switch" of "post-switch") or an everyday word."""
    draft_words = re.findall(r"[a-z][a-z'-]+", draft.lower().replace("\u2019", "'"))
    known = {w[:5] for w in draft_words} | {p[:5] for w in draft_words for p in w.split("-")}
    known |= {w[:5] for w in COMMON_WORDS}
    plain = TOKEN_RE.sub(" ", rewrite).lower().replace("\u2019", "'")
    return [w for w in re.findall(r"[a-z][a-z'-]+", plain)
            if w not in STOP_WORDS and len(w) > 3 and w[:5] not in known
            and not ("'" in w and w.split("'")[0] in STOP_WORDS | _CONTRACTED) and not is_everyday_word(w)]

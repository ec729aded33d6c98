"""The embedded model rewrites a draft sentence by sentence, and code checks every sentence on its own.

Asked for a paragraph, the 1.5B model either copies or writes fluent text that puts figures on the wrong
event and adds causes and benefits nobody stated. Asked to rewrite numbered sentences one for one, it stays
close to each sentence's meaning, and code can check each answer exactly against its own source sentence:

- every fact token of the source sentence is there, and no token of another sentence (attribution is exact);
- no figure of its own, no benefit, cost or cause word the sentence does not use, no new noun right after a
  figure ("1600 build *people*"), not much longer than the source;
- otherwise the sentence is asked for again (a short request with only the failed sentences), and what still
  fails is kept as the draft's own sentence in plain words. Every kept sentence is correct by construction.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from coach.analysis import sentences
from coach.plain import plain_words
from coach.prompts import PROMPTS_DIR, data_block, load_prompt
from coach.rewrite_models import Persona
from coach.verify import (
    COMMON_WORDS,
    STOP_WORDS,
    TOKEN_RE,
    content_stems,
    copy_ratio,
    has_fact,
    novel_words,
    unsupported_claims,
)

_NUMBERED = re.compile(r"^\s*(?:\*\*)?(\d{1,3})[.)](?:\*\*)?\s*(.*)$")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
COPIED = 0.6  # a safe answer repeating this share of its sentence's word triples is asked for again if time allows
MAX_NOVEL = 2  # more words than this that neither the sentence nor common prose uses: the model is inventing


@dataclass
class Line:
    """One sentence of the draft, facts as tokens."""

    original: str  # the draft's words
    plain: str  # with common jargon in plain words (what the model is shown, and the safe fallback)
    paragraph: int
    tokens: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)  # facts kept as words ("no downtime")
    whole: str = ""  # one half of a long sentence: the whole sentence (plain words), kept if a half fails
    second: bool = False  # ... the second half
    stands_alone: bool = True  # a second half that reads as a sentence of its own ("But later ..."), not "Which ..."
    joint: str = ""  # a second half: what joined it to the first in the draft (", " before "which ...")
    nouns: dict[str, str] = field(default_factory=dict)  # a count token -> the noun its fact ends with, shown after it

    @property
    def shown(self) -> str:
        """What the model is asked to rewrite: the plain words without a name or code that stands alone in
        brackets after a word ("Rust releases ([SYSTEM1]) and crates ([SYSTEM2])" -> "Rust releases and
        crates"). The model tended to drop one of two such names and fail the sentence; code puts each back
        after its word (``reattach``), and the sentence fails only if that word is gone."""
        return _BRACKETED_NAME.sub("", self.plain)


@dataclass
class LineAnswer:
    """One model answer for one sentence, and what code found in it."""

    text: str
    problems: list[str] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)
    novel: list[str] = field(default_factory=list)
    copy: float = 0.0
    allowed_novel: int = MAX_NOVEL  # a long sentence needs more words of its own: one in five

    @property
    def ok(self) -> bool:
        """Safe to show: no hard problem and no claim the sentence does not make."""
        return not self.problems and not self.claims and len(self.novel) <= self.allowed_novel

    @property
    def rank(self) -> tuple[bool, int, int, float, int]:
        """Lower is better: safe first, then fewer hard problems and claims, less copying, fewer invented words."""
        return (not self.ok, len(self.problems), len(self.claims), self.copy, len(self.novel))


# A sentence this long is asked for in two halves, split at a clause break: the model keeps more of a short
# sentence, and a half that fails costs only its own words kept as drafted (14 rather than 24 words: median copy
# 0.204 / 0.234 / 0.239 against 0.302 / 0.360 / 0.236 for CFO / COO / board over the dev drafts).
LONG_SENTENCE_WORDS = 14
MIN_HALF_WORDS = 5
# Words opening a clause that leans on the one before it: a second half starting so is not a sentence alone.
# A participle clause (", completing the migration", ", increasing the team's capacity") is one too.
_DEPENDENT_WORDS = (r"which|albeit|because|so that|as well as|while"
                    r"|(?!(?:during|nothing|something|anything|everything|morning|evening)\b)[a-z]{3,}ing")
_CLAUSE_BREAK = re.compile(
    rf"(?:;|:|,(?=\s+(?:{_DEPENDENT_WORDS}|but|although|no|and (?:we|they|it|the|this|that|our|there))\b)"
    r"|(?<=[a-z])(?=\s+while\s+(?:we|they|it|the|our)\b))\s+")  # "... write outage while we switch over ..."
_DEPENDENT = re.compile(rf"(?:{_DEPENDENT_WORDS})\b", re.IGNORECASE)


_BRACKETED_NAME = re.compile(r"(?<=[A-Za-z0-9\]])\s*\(\s*\[(?:SYSTEM|CODE)\d+\](?:\s*,\s*\[(?:SYSTEM|CODE)\d+\])*\s*\)")
_SCALE_WORDS = frozenset(["hundred", "thousand", "million", "billion", "trillion", "dozen", "k", "m", "bn"])


def counted_nouns(text: str, facts: Mapping[str, str]) -> dict[str, str]:
    """Count tokens whose fact ends with the noun it counts ("[NUMBER8]" = "more than 50,000 projects"), where
    the text does not say that noun right after the token: the model, shown "[NUMBER8] are now using trusted
    publishing", has to guess what is counted (it wrote "users", then "packages")."""
    found: dict[str, str] = {}
    for match in re.finditer(r"\[NUMBER\d+\]", text):
        last = str(facts.get(match.group(0), "")).split()[-1:]
        noun = last[0].lower() if last else ""
        if not re.fullmatch(r"[a-z][a-z-]{2,}", noun) or noun in _SCALE_WORDS or noun in STOP_WORDS:
            continue
        if not re.match(rf"\s+{re.escape(noun)}\b", text[match.end():], re.IGNORECASE):
            found[match.group(0)] = noun
    return found


def _noun_kept(text: str, token: str, noun: str) -> bool:
    """After ``token`` comes its noun, or a word that cannot start another noun phrase for it ("[NUMBER1]
    waiting", "[NUMBER1] are now ..."); not "[NUMBER1] new projects" nor "[NUMBER1] of projects", which would
    restore as "50,000 projects new projects"."""
    after = re.match(r"\s*([A-Za-z][A-Za-z'-]*)?", text[text.find(token) + len(token):])
    word = (after.group(1) or "").lower() if after else ""
    return (not word or word == noun or (word in STOP_WORDS and word != "of")
            or word.endswith(("ing", "ed")))


def _with_nouns(text: str, nouns: Mapping[str, str]) -> str:
    """``text`` with each count token followed by its noun ("[NUMBER8] projects are now using ..."); restoring
    the fact ("more than 50,000 projects projects") drops the repeat."""
    for token, noun in nouns.items():
        text = re.sub(rf"{re.escape(token)}(?!\s+{re.escape(noun)}\b)", f"{token} {noun}", text)
    return text


def split_lines(token_text: str, statements: list[str] | None = None,
                facts: Mapping[str, str] | None = None) -> list[Line]:
    """The draft's sentences in order, each remembering its paragraph, its tokens and its word facts; a long
    sentence becomes two halves, each asked for on its own. A count token is shown with the noun it counts."""
    lines: list[Line] = []
    for number, paragraph in enumerate(p for p in re.split(r"\n\s*\n", token_text) if p.strip()):
        for sentence in sentences(re.sub(r"\s*\n\s*", " ", paragraph)):
            halves, joint = _halves(sentence)
            whole = _with_nouns(plain_words(sentence), counted_nouns(sentence, facts or {})) if len(halves) > 1 else ""
            for position, half in enumerate(halves):
                tokens = list(dict.fromkeys(m.group(0) for m in TOKEN_RE.finditer(half)))
                said = [s for s in statements or [] if s.lower() in half.lower()]
                nouns = counted_nouns(half, facts or {})
                plain = _with_nouns(plain_words(half), nouns)
                if position:  # shown to the model as a sentence of its own
                    plain = plain[:1].upper() + plain[1:]
                lines.append(Line(original=half, plain=plain, paragraph=number, tokens=tokens, statements=said,
                                  whole=whole, second=position == 1, joint=joint if position else "", nouns=nouns,
                                  stands_alone=not (position and _DEPENDENT.match(half))))
    return lines


def _halves(sentence: str) -> tuple[list[str], str]:
    """``sentence``, or its two halves split at the clause break nearest its middle (never inside brackets), and
    the text that joined them."""
    words = len(sentence.split())
    if words < LONG_SENTENCE_WORDS:
        return [sentence], ""
    best: tuple[int, int, int] | None = None
    for match in _CLAUSE_BREAK.finditer(sentence):
        before = sentence[:match.start()]
        if before.count("(") != before.count(")") or before.count("[") != before.count("]"):
            continue
        left = len(before.split())
        if min(left, words - left) < MIN_HALF_WORDS:
            continue
        distance = abs(2 * left - words)
        if best is None or distance < best[0]:
            best = (distance, match.start(), match.end())
    if best is None:
        return [sentence], ""
    _, cut, resume = best
    end = sentence[cut] if sentence[cut] == ":" else "."
    return [sentence[:cut].rstrip() + end, sentence[resume:]], sentence[cut:resume]


def numbered(texts: list[str]) -> str:
    """``1. first\\n2. second`` — the shape the model answers in."""
    return "\n".join(f"{i}. {text}" for i, text in enumerate(texts, 1))


def parse_numbered(text: str, count: int) -> dict[int, str]:
    """The model's answer by sentence number (1-based); extra, repeated or out-of-range numbers are dropped."""
    found: dict[int, str] = {}
    current: int | None = None
    for raw in text.splitlines():
        match = _NUMBERED.match(raw)
        if match:
            number = int(match.group(1))
            current = number if 1 <= number <= count and number not in found else None
            if current is not None:
                found[current] = match.group(2).strip()
        elif current is not None and raw.strip():
            found[current] = f"{found[current]} {raw.strip()}"  # a sentence the model wrapped onto a new line
    return found


def _after_token_words(text: str) -> list[tuple[str, str]]:
    """The two words right after each count or measure ("[NUMBER1] new packages" -> "new", "packages"), each
    with its token, lower-cased. A name is not a count: "[SYSTEM1] service" or "[SYSTEM2] websites" say nothing
    new."""
    found: list[tuple[str, str]] = []
    for match in re.finditer(r"(\[(?:NUMBER|PERCENT|AMOUNT|DURATION)\d+\])(?:\s+([A-Za-z][A-Za-z'-]*))?"
                             r"(?:\s+([A-Za-z][A-Za-z'-]*))?", text):
        found += [(match.group(1), w.lower()) for w in match.groups()[1:] if w]
    return found


# Words that limit or reverse what a sentence says: dropping or adding one changes its meaning
# ("still partially served" is not "still served"; "might be disrupted" is not "will be disrupted").
_LIMITS = {"not": "not", "no": "no", "never": "never", "without": "without", "only": "only", "partially": "partly",
           "partly": "partly", "except": "except", "unless": "unless", "might": "may", "may": "may",
           "none": "none", "nothing": "nothing", "cannot": "not", "most": "most", "all": "all", "every": "all",
           "each": "all", "fewer": "fewer"}
_ONLY_ADDED = frozenset(["all"])  # "[PERCENT1] of all uploads" may lose "all"; "most wikis" may not become "all"
# Judgements a sentence must not gain: "a brief outage", "a minor change", "a seamless move".
_JUDGEMENTS = frozenset(["brief", "minor", "major", "short", "small", "slight", "temporary", "huge", "massive",
                         "critical", "severe", "serious", "impressive", "excellent", "great", "good", "bad",
                         "successful", "successfully", "smooth", "smoothly", "seamless", "seamlessly", "easy",
                         "simple", "free", "always", "fully", "completely", "entirely", "quickly", "immediately",
                         "high", "low", "amazing", "remarkable", "strong", "well", "rapid", "rapidly", "growing",
                         "popular", "widely", "largely", "mostly", "primary", "main", "default", "sole", "official",
                         "key", "core", "dedicated"])


_COPULAS = frozenset(["is", "was", "are", "were", "be", "been", "being", "seems", "seemed", "remained", "remains",
                      "stayed", "became", "looks", "looked", "felt", "as", "and", "or", "but", "so"])
_INTENSIFIERS = frozenset(["very", "really", "extremely", "quite", "so", "too", "relatively", "fairly", "most"])
# Praise, size and manner only: taking one out leaves what the sentence says. Not a role ("the primary domain"
# would become "the domain") nor a limit ("mostly", "temporary").
_STRIPPABLE = _JUDGEMENTS - frozenset(["temporary", "critical", "bad", "free", "always", "high", "low", "well",
                                       "growing", "popular", "widely", "largely", "mostly", "primary", "main",
                                       "default", "sole", "official", "key", "core", "dedicated"])


def strip_judgements(source_words: set[str], text: str) -> str:
    """``text`` without the praise or size words the model added before a word ("had a brief outage" -> "had an
    outage", "we successfully moved" -> "we moved"); one that stands as what something is ("was smooth") stays,
    for the judge to reject. Removing a word the sentence never said brings the answer back to it."""
    words = list(re.finditer(r"[A-Za-z][A-Za-z'-]*", text))
    cuts: list[tuple[int, int]] = []
    for i, match in enumerate(words):
        word = match.group(0).lower()
        if word not in _STRIPPABLE or word in source_words or i + 1 >= len(words):
            continue
        following = words[i + 1]
        if (text[match.end():following.start()] != " "  # end of a clause, a list ("quick, smooth") or a token
                or following.group(0).lower() in ("and", "or", "but") or text[:match.start()].rstrip().endswith(",")):
            continue
        start = match.start()
        previous = words[i - 1] if i else None
        if previous is not None and text[previous.end():start] == " ":
            if previous.group(0).lower() in _COPULAS:
                continue
            if previous.group(0).lower() in _INTENSIFIERS:
                start = previous.start()
        cuts.append((start, following.start()))
    for start, end in reversed(cuts):
        text = text[:start] + text[end:]
    if not cuts:
        return text
    return re.sub(r"\b([Aa])n? (?=([A-Za-z]))",
                  lambda m: f"{m.group(1)}{'n' if m.group(2).lower() in 'aeiou' else ''} ", text)


def _limits(text: str) -> set[str]:
    # "handled in all": in total; "no matter their settings": regardless
    idioms = re.sub(r"\b(?:all in all|in all|at all|after all|no matter)\b", " ", text.lower())
    words = re.findall(r"[a-z]+(?:[-'][a-z]+)*", idioms.replace("\u2019", "'"))
    return {"not" if w.endswith("n't") else _LIMITS[w] for w in words if w.endswith("n't") or w in _LIMITS}


# The model sometimes echoes a token's name after it: "[SYSTEM2] (System2)".
_ECHO = re.compile(r"(?<=\])\s*\((?:system|number|percent|time|date|duration|amount|code)\s*\d+\)", re.IGNORECASE)
_REPEAT = re.compile(r"\b([A-Z][\w.-]*(?: [A-Z][\w.-]*)?) \(\1\)")  # "Fastly (Fastly)"
_WEAK = frozenset(["total", "overall", "roughly", "about", "nearly", "almost", "some", "over"])


def _qualifiers(text: str) -> list[str]:
    """The words that say what a count or share is of: "[NUMBER1] new files published" -> "new", "files";
    "[PERCENT1] of active users" -> "active", "users" (the first two that are not stop or weak words)."""
    found: list[str] = []
    for match in re.finditer(r"\[(?:NUMBER|PERCENT|AMOUNT)\d+\]((?:\s+[A-Za-z][A-Za-z'-]*){1,4})", text):
        words = [w.lower() for w in match.group(1).split()]
        found += [w for w in words if w not in STOP_WORDS | _WEAK][:2]
    return found


def _bracketed(text: str) -> set[str]:
    """Tokens that must stay in brackets: one standing alone there ("(T392465)" is a reference, not a version
    the sentence is about), and any count or measure ("([NUMBER1] of requests lost)" is not "lost requests rose
    by [NUMBER1]"). A name or code in a bracketed phrase ("([CODE1] errors)") may leave it."""
    found: set[str] = set()
    for group in re.findall(r"\(([^()]*)\)", text):
        alone = not re.sub(r"[\s,;]|and", "", TOKEN_RE.sub("", group))
        found |= {m.group(0) for m in TOKEN_RE.finditer(group)
                  if alone or m.group(1) in ("NUMBER", "PERCENT", "AMOUNT", "DURATION")}
    return found


def _counted_word(text: str, token: str) -> str | None:
    """The word right after ``token`` ("[NUMBER1] build waiting" -> "buil"), None if there is none."""
    after = re.search(rf"{re.escape(token)}\s+([A-Za-z][\w-]*)", text)
    return after.group(1).lower()[:4] if after else None


def _same_count(source: str, text: str, token: str) -> bool:
    """Out of its brackets, ``token`` is still followed by a word its bracketed phrase had right after it or
    later ("([NUMBER1] build waiting)" -> "with [NUMBER1] build waiting" or "with [NUMBER1] waiting"), not by
    nothing ("lost requests rose by [NUMBER1]")."""
    group = re.search(rf"\(\s*{re.escape(token)}([^()]*)\)", source)
    words = {w.lower()[:4] for w in _WORD.findall(group.group(1))} - {w[:4] for w in STOP_WORDS} if group else set()
    if _counted_word(text, token) in words:
        return True
    # "(instead [NUMBER3])" -> "..., instead of [NUMBER3]": the word that led it in its brackets still does.
    leading = re.search(rf"\(\s*([A-Za-z]+)\s+{re.escape(token)}\s*\)", source)
    if leading is None:
        return False
    return re.search(rf"\b{leading.group(1)}\s+(?:of\s+)?{re.escape(token)}", text, re.IGNORECASE) is not None


_WHEN = frozenset(["in", "on", "at", "since", "until", "by", "from", "during", "before", "after"])
_IS = frozenset(["is", "was", "are", "were", "be", "been"])


_FUTURE = re.compile(r"\b(?:will|shall|going to)\b|['\u2019]ll\b", re.IGNORECASE)
_FUTURE_SAID = re.compile(r"\b(?:will|shall|going to|plan|schedul|expect|upcoming|next|soon|tomorrow|from now|"
                          r"intend|aim)|['\u2019]ll\b", re.IGNORECASE)


def _still_to_come(source: str, answer: str) -> str:
    """"will be served" that the model wrote as "are being served" or "is now live", put back in the future
    (one such "is"/"are" only); any other answer that lost the future is left for the judge to reject."""
    if not _FUTURE.search(source) or _FUTURE_SAID.search(answer):
        return answer
    found = list(re.finditer(r"\b(?:is|are)(?: now| being)?\b", answer))
    if len(found) != 1 or not re.search(r"\bwill be\b", source, re.IGNORECASE):
        return answer
    return answer[:found[0].start()] + "will be" + answer[found[0].end():]


SHORT_OF_WORDS = 12  # a sentence this long must keep ...
SHORT_SHARE = 0.45  # ... this share of its words at least (2 of 295 passing answers saved from real runs had less)
_ACTIONS = ("added", "removed", "created", "built", "fixed", "deployed", "installed", "enabled", "disabled",
            "launched", "released", "replaced", "upgraded", "introduced", "implemented", "migrated", "deleted",
            "restored", "rolled")


def _new_actions(source: str, answer: str) -> list[str]:
    """Something the answer says we did that the sentence does not: "Including view-only flags that did not
    require main data store access." is not "We added view-only flags ..."."""
    said = re.findall(r"\bwe(?:['\u2019]ve| have| had| will|['\u2019]ll)?\s+(?:now\s+|also\s+|just\s+)?([a-z]+)",
                      answer, re.IGNORECASE)
    return [verb for verb in dict.fromkeys(w.lower() for w in said) if verb in _ACTIONS
            and not _has_word(source, re.sub(r"e?d$", "", verb))]


def _role_changes(source: str, answer: str) -> list[str]:
    """A figure that said when or where ("PyPI in [NUMBER1]") now says what something is ("PyPI, which is
    [NUMBER1]")."""
    def before(text: str) -> dict[str, str]:
        return {m.group(2): m.group(1).lower() for m in re.finditer(r"([A-Za-z]+)\W{0,2}\s*(\[[A-Z]+\d+\])", text)}

    was, now = before(source), before(answer)
    found = [f"{t} became what something is" for t, word in now.items() if word in _IS and was.get(t) in _WHEN]
    # "reduced the delay from [DURATION1]" (from 1h 20m to 40m) is not "reduced the delay by [DURATION1]".
    found += [f"{t} became an amount" for t, word in now.items()
              if word == "by" and was.get(t) in ("from", "to", "since", "until", "at", "on", "in")]
    return found


# What a count is of may be said with another verb: "requests served" are "requests handled".
_SAME_AS = {"served": ("handl", "proces", "deliver", "answer"), "published": ("releas", "upload", "added", "add"),
            "created": ("start", "made", "set up", "launch", "added", "open"),
            "transferred": ("moved", "sent", "download", "deliver"), "enabled": ("turned on", "switched on", "activat"),
            "raised": ("opened", "filed", "logged", "reported"), "completed": ("finish", "done")}
# Praise the sentence already gives may be said with other praise ("fantastic" -> "impressive").
_PRAISE = frozenset(["fantastic", "great", "excellent", "impressive", "amazing", "remarkable", "strong", "good",
                     "popular", "successful", "wonderful", "outstanding", "widely", "well", "impressively",
                     "successfully", "strongly"])


# What state something is in: a sentence that loses it says something else ("Builds needing a virtual machine
# are queued." is not "A task needs a virtual machine."). Each with the stems that say the same.
_STATES = {
    "queued": ("queu", "wait", "backlog", "pending", "line"),
    "blocked": ("block", "stop", "prevent", "disabl", "paus", "not allowed", "cannot", "can't", "unable"),
    "unresponsive": ("unrespons", "respond", "hung", "hang", "froz", "stuck", "not work"),
    "read-only": ("read-only", "read only", "view-only", "view only", "readonly", "no chang", "cannot", "can't"),
    "unavailable": ("unavailab", "down", "offline", "outage", "not available", "inaccessib", "cannot", "can't"),
    "disrupted": ("disrupt", "interrupt", "outage", "down", "unavailab", "affect", "break", "broke", "fail"),
    "failed": ("fail", "error", "unsuccess", "broke", "not work", "n't work", "lost"),
    "delayed": ("delay", "late", "slow", "wait", "held", "postpon", "longer"),  # "took longer"
    "purge": ("purg", "clear", "empt", "clean", "delet", "remov"),
    "cancelled": ("cancel", "call", "stop", "drop"),
    # "the migration off Homu" must not become "reliability with Homu".
    "off ": ("off", "away", "leav", "left", "retir", "replac", "mov", "stop", "end", "drop", "no longer", "phas",
             "disabl", "shut", "switch", "without", "remov"),
    # A direction is a state too: "to reduce the load" must not become "to store the load".
    "reduc": ("reduc", "lower", "cut", "decreas", "less", "fewer", "eas", "lighten", "drop", "fell", "shr", "minimi",
              "down", "sav", "small"),
    "decreas": ("decreas", "reduc", "lower", "cut", "less", "fewer", "drop", "fell", "shr", "down", "small"),
    "increas": ("increas", "rais", "rise", "rose", "grow", "grew", "more", "higher", "up", "doubl", "boost",
                "climb", "longer", "slower", "bigger", "larger", "extra", "add"),
}


_EVENT = re.compile(r"\b([a-z][a-z-]+) (?:outages?|downtimes?|errors?|failures?|disruptions?|degradations?|"
                    r"slowdowns?|incidents?)\b")


_WIDE = ("wide", "whole", "entire", "all ", "every", "complete", "full", "total")


def _event_kinds(text: str) -> list[str]:
    """The word saying what kind of failure an event was ("a write outage" -> "write"); not an article,
    a size or praise word (taken out by ``strip_judgements``) nor an acronym (jargon the model may say plainly)."""
    return [w for w in _EVENT.findall(text) if w not in STOP_WORDS and w not in _JUDGEMENTS]


def _states(text: str) -> list[str]:
    lower = text.lower()
    return [state for state in _STATES if re.search(rf"\b{re.escape(state)}", lower)]


def _says_any(text: str, stems: Iterable[str]) -> bool:
    """A word of ``text`` starts with one of ``stems`` (case ignored)."""
    return any(re.search(rf"\b{re.escape(stem)}", text, re.IGNORECASE) for stem in stems)


def _has_word(text: str, word: str) -> bool:
    """``word``, a form of it (same first four letters) or a verb that says the same is in ``text``."""
    return _says_any(text, [word[:4] if len(word) > 4 else word, *_SAME_AS.get(word, ())])


_WHEN_WORDS = r"(?:on|in|at|since|from|by|until|before|after|during|for)"
_WHEN_TOKEN = r"\[(?:DATE|TIME|DURATION)\d+\]"
_SIMPLE_START = frozenset(["The", "A", "An", "We", "There", "This", "It", "Our", "All", "Some", "Most"])
_SIMPLE_START_LOWER = frozenset(word.lower() for word in _SIMPLE_START)


_TOKEN_GROUP = r"\[[A-Z]+\d+\](?:\s*,\s*\[[A-Z]+\d+\])*"  # "[CODE2], [CODE3]"


def reattach(line: Line, answer: str) -> str:
    """Put back tokens the model left out where the draft had them alone in brackets after a word the answer
    still uses ("Rust releases ([SYSTEM1])" -> the answer's "releases" gets its " ([SYSTEM1])" again; "OS
    upgrade ([CODE2], [CODE3])" likewise), a short aside with a figure after the figure it followed ("to
    [NUMBER2] (instead [NUMBER3])"), a name or code before its word ("[CODE1] errors"), or as a phrase of time
    opening or closing the sentence ("..., since [TIME1]." -> the answer ends with it too)."""
    answer = _reattach_when(line, answer)
    # The plain words first: they are what the model saw ("the backup server ([SYSTEM2])" where the draft said
    # "the spare host ([SYSTEM2])").
    for source in (line.plain, line.original):
        for found in re.finditer(rf"(\[[A-Z]+\d+\]|[A-Za-z][\w.'-]*?)[.,;:]?\s*\(\s*({_TOKEN_GROUP})\s*\)", source):
            group = found.group(2)
            if any(m.group(0) in answer for m in TOKEN_RE.finditer(group)):
                continue  # the model kept some of them: where it put them is for the judge
            answer = _after_nth(source, answer, found.group(1), found.start(1), f" ({group})", lead=True)
        # A short aside holding a figure, after a figure the answer kept: "to [NUMBER2] (instead [NUMBER3])",
        # "[TIME4] ([CODE1] errors)".
        for found in re.finditer(r"(\[[A-Z]+\d+\])\s*\(([^()]*\[[A-Z]+\d+\][^()]*)\)", source):
            head, group = found.groups()
            if len(group.split()) <= 6 and answer.count(head) == 1 and not any(
                    m.group(0) in answer for m in TOKEN_RE.finditer(group)):
                # In place of an aside the model wrote there instead ("[TIME4] (code errors)"), not beside it.
                at = re.search(rf"{re.escape(head)}(?:\s*\([^()]*\))?", answer)
                if at:
                    answer = f"{answer[:at.start()]}{head} ({group.strip()}){answer[at.end():]}"
        # A name or code just before its word, where the answer kept the word: "[CODE1] errors" -> "errors".
        for found in re.finditer(r"(\[(?:SYSTEM|CODE)\d+\]) ([A-Za-z][\w-]+)", source):
            token, word = found.groups()
            if token not in answer and word.lower() not in STOP_WORDS and len(word) > 2:
                answer = _after_nth(source, answer, word, found.start(2), token + " ", before=True)
    return answer


def _after_nth(source: str, answer: str, head: str, at: int, insert: str, before: bool = False,
               lead: bool = False) -> str:
    """``insert`` put after (or before) the answer's occurrence of ``head`` that matches the one at ``at`` in
    ``source``: "from the main server ([SYSTEM1]) to the backup server ([SYSTEM2])" has the same word twice, so
    each name goes to the occurrence it was at in the draft, and only if the answer has as many."""
    escaped = re.escape(head)
    pattern = escaped if escaped.startswith(r"\[") else rf"\b{escaped}\b(?![\w-]|\.\w)"
    in_source = list(re.finditer(pattern, source, re.IGNORECASE))
    in_answer = list(re.finditer(pattern, answer, re.IGNORECASE))
    nth = sum(m.start() < at for m in in_source)
    if len(in_answer) != len(in_source) or nth >= len(in_answer):
        return answer
    word = in_answer[nth]
    # ``lead``: not after the word qualified by another ("OS upgrade ([CODE2])" does not go to "Gerrit version
    # upgrade" when the answer dropped the OS; "Releases" for "Rust releases" is still the releases).
    said = re.search(r"([A-Za-z][\w.'-]*)\s+$", source[: in_source[nth].start()])
    given = re.search(r"([A-Za-z][\w.'-]*)\s+$", answer[: word.start()])
    if lead and said and given and not {said.group(1).lower(), given.group(1).lower()} & STOP_WORDS \
            and said.group(1).lower() != given.group(1).lower():
        return answer
    cut = word.start() if before else word.end()
    return f"{answer[:cut]}{insert}{answer[cut:]}"


_PUT_BACK = ("most", "partially", "partly", "only", "fewer")  # each a limit (``_LIMITS``)


def _put_back_words(line: Line, text: str) -> str:
    """Words the model left out, put back before the word they qualify where that word is still there, once, as
    in the draft: a limit ("contention on most other wikis" -> "competition on other wikis" gets its "most"
    again; only limits that read the same before any word: "not" or "may" would need the verb changed), what
    a count is of ("[PERCENT1] of active users" -> "of users") and the kind of failure ("a [DURATION1] write
    outage" -> "a [DURATION1] outage")."""
    for word in _PUT_BACK:
        if _LIMITS[word] not in _limits(text):
            text = _before_head(line.plain, text, word)
    for word in _modifiers(line.plain):
        if not _has_word(text, word):
            text = _before_head(line.plain, text, word)
    for name in _names(line.plain):  # "the PostHog service" -> "the PostHog Feature Flags service"
        text = _put_back_name(line.plain, text, name)
    for aside in _asides(line.plain):  # after the word it followed, where the answer still has that word
        head = re.search(rf"([A-Za-z][\w-]*)\s*{re.escape(aside)}", line.plain)
        if head and head.group(1).lower() not in STOP_WORDS and not _traced(text, aside):
            text = _after_nth(line.plain, text, head.group(1), head.start(1), f" {aside}")
    # A window of time or place: where the draft opens with it, before the word it stood before (once in
    # each), or at the end of an answer of one clause.
    for phrase in _scopes(line.plain):
        if _keeps_scope(text, phrase) or not text.strip():
            continue
        if line.plain.lower().startswith(phrase.lower() + ",") and text.split()[0] in _SIMPLE_START:
            text = f"{phrase[0].upper()}{phrase[1:]}, {text[0].lower()}{text[1:]}"
        elif _keeps_scope(before := _before_head(line.plain, text, phrase), phrase):
            text = before
        elif not re.search(r"[,;:()]", text):
            body = text.rstrip()
            end = body[-1] if body[-1] in ".!?" else ""
            text = f"{body[: len(body) - len(end)]} {phrase}{end}"
    return text


# A window of time or a place the sentence's statement holds for: "[PERCENT3] of all uploads in the last year",
# "[PERCENT2] of requests failed in the US region".
_SCOPE = re.compile(r"\b(?:in|over|during|for|within) the (?:last|past|previous|next|coming) (?:[a-z]+ )?"
                    r"(years?|months?|weeks?|days?|quarters?|hours?)\b", re.IGNORECASE)
_PLACE = re.compile(r"\bin the ([A-Z][\w-]*) region\b")


def _asides(text: str) -> list[str]:
    """Asides in brackets of three words or more and no figure: "(browsing, cloning, reviewing)"; not a list of
    examples ("(Linux, Windows, etc.)")."""
    return [m.group(0) for m in re.finditer(r"\(([^()\[\]]*)\)", text) if len(_content_words(m.group(1))) >= 2
            and len(m.group(1).split()) >= 3 and not re.search(r"\b(?:etc|e\.g)\b", m.group(1))]


def _traced(text: str, aside: str) -> bool:
    return any(_has_word(text, word) for word in _content_words(aside))


def _content_words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text) if w.lower() not in STOP_WORDS and w.lower() != "etc"]


def _scopes(text: str) -> list[str]:
    return [match.group(0) for pattern in (_SCOPE, _PLACE) for match in pattern.finditer(text)]


def _keeps_scope(text: str, phrase: str) -> bool:
    """The window or place is still said: "in the last year", "over the past year", "last year's"; "US"."""
    place = _PLACE.fullmatch(phrase)
    if place:
        return re.search(rf"\b{re.escape(place.group(1))}\b", text) is not None
    unit = _SCOPE.fullmatch(phrase)
    window = rf"\b(?:last|past|previous|next|coming)\b(?:\s+[a-z]+)?\s+{unit.group(1)[:4] if unit else phrase}"
    return re.search(window, text, re.IGNORECASE) is not None


_NAME = re.compile(r"\b[A-Z][\w.-]*(?: [A-Z][\w.-]*)+")


def _names(text: str) -> list[str]:
    """Names of two words or more ("PostHog Feature Flags", "Release Engineering"), without a sentence's
    opening word ("The Rust Foundation" -> "Rust Foundation")."""
    found = []
    for match in _NAME.finditer(TOKEN_RE.sub("#", text)):
        words = match.group(0).rstrip(".-").split()
        while words and words[0].lower() in STOP_WORDS | _SIMPLE_START_LOWER:
            words = words[1:]
        if len(words) >= 2 and not any(word.isupper() for word in words[1:]):  # "Azure VM": an acronym is jargon
            found.append(" ".join(words))
    return found


def _cut_name(text: str, name: str) -> bool:
    """The answer says the name's first word but not the whole name: "the PostHog service" for "the PostHog
    Feature Flags service" is another, bigger thing."""
    return (re.search(rf"\b{re.escape(name.split()[0])}\b", text) is not None
            and name.lower() not in text.lower())


def _put_back_name(plain: str, text: str, name: str) -> str:
    """The rest of a cut name after its first word, where the answer has that word once followed by the word
    that followed the whole name ("the PostHog service" -> "the PostHog Feature Flags service")."""
    first, rest = name.split(maxsplit=1)
    found = list(re.finditer(rf"\b{re.escape(first)}\b(?!['\u2019])\s*([A-Za-z]*)", text))
    after = re.search(rf"{re.escape(name)}\s*([A-Za-z]*)", plain)
    if len(found) != 1 or not _cut_name(text, name) or not after or found[0].group(1) != after.group(1):
        return text
    cut = found[0].start(1) if found[0].group(1) else found[0].end()
    return f"{text[:cut].rstrip()} {rest}{' ' if found[0].group(1) else ''}{text[cut:]}"


_CLAUSE = re.compile(r"[,;:]|\s[-\u2013\u2014]\s")  # not brackets: an aside tells of the clause it is in


def _moved(source: str, text: str) -> list[str]:
    """Tokens the answer put with another part of the sentence: "Outage finished, cleanup operations were done
    [DATE6] with no impact." -> "Outage finished at [DATE6] with no impact." (the date was the cleanup's). The
    answer's clause holding the token shares more words with a part of the sentence that holds no figure than
    with the token's own part, and fewer than two of the latter (each part of two words or more)."""
    source_parts = _CLAUSE.split(source)
    parts = [content_stems(part) for part in source_parts]
    holders = {m.group(0): i for i, part in enumerate(source_parts) for m in TOKEN_RE.finditer(part)}
    bare = [stems for i, stems in enumerate(parts) if i not in holders.values() and len(stems) >= 2]
    moved = []
    for token, i in holders.items():
        said = next((content_stems(part) for part in _CLAUSE.split(text) if token in part), None)
        if said is None or len(parts[i]) < 2 or not bare:
            continue
        own, other = len(said & parts[i]), max(len(said & stems) for stems in bare)
        if own < 2 and other >= 2:  # "the queue is still full with [NUMBER1] waiting" holds both: it stays
            moved.append(token)
    return moved


def _modifiers(text: str) -> list[str]:
    """Words saying which things a count or an event is about, each right before the word it qualifies: the
    first of two qualifiers after a figure ("[NUMBER1] new files" -> "new") and the kind of failure ("write")."""
    pairs = [(match.group(1), match.group(2)) for match in
             re.finditer(r"\[(?:NUMBER|PERCENT|AMOUNT)\d+\](?:\s+of)?\s+([a-z][a-z-]+)\s+([a-z][a-z-]+)", text)]
    return [first for first, second in pairs if not {first, second} & (STOP_WORDS | _WEAK)] + _event_kinds(text)


def _before_head(plain: str, text: str, word: str) -> str:
    """``word`` put back before the word it stood before in ``plain`` (not a stop word), where both have that
    word exactly once and ``text`` does not already have ``word`` right there."""
    said = re.search(rf"(?<![\w-]){re.escape(word)}\s+([A-Za-z][\w-]*)", plain, re.IGNORECASE)  # not "view-only"
    if not said or said.group(1).lower() in STOP_WORDS:
        return text
    pattern = rf"(?<![\w-]){re.escape(said.group(1))}\b"
    found = list(re.finditer(pattern, text, re.IGNORECASE))
    if len(re.findall(pattern, plain, re.IGNORECASE)) != 1 or len(found) != 1:
        return text
    return f"{text[: found[0].start()]}{word} {text[found[0].start():]}"


_UNITS = r"(?:hours?|hrs?|minutes?|mins?|seconds?|secs?|days?|weeks?|months?|years?)"


def _drop_echoed_units(text: str, line: Line) -> str:
    """A unit or noun the model wrote after a token whose fact already holds one, taken out: "[DURATION1]
    hours" would restore as "37 minutes hours"; "[NUMBER1] outages" (the fact: "2 downtimes") as "2 downtimes
    outages", and "[NUMBER8] users" (the fact: "50,000 projects") says the wrong thing. A duration always holds
    its unit; a count holds its noun where the line knows it (``Line.nouns``)."""
    text = re.sub(rf"(\[DURATION\d+\])\s+{_UNITS}\b", r"\1", text, flags=re.IGNORECASE)
    for token, noun in line.nouns.items():
        after = re.search(rf"{re.escape(token)}\s+([A-Za-z][a-z-]*s)\b(\s+[A-Za-z][\w-]*)?", text)
        if after and after.group(1).lower() not in (noun, *STOP_WORDS) and not (
                after.group(2) and after.group(2).strip().lower() == noun):
            text = text[: after.start(1)].rstrip() + text[after.end(1):]
    return text


def _reattach_when(line: Line, answer: str) -> str:
    """The draft's own phrase of time ("in [DATE1]", "since [TIME1]", ", [DATE1]") where the sentence opens or
    closes with it, put back where the answer left it out; nothing when the answer has other tokens missing."""
    missing = [token for token in line.tokens if token not in answer]
    source = line.original.strip()
    if len(missing) != 1 or not answer.strip() or not re.fullmatch(_WHEN_TOKEN, missing[0]):
        return answer
    token = re.escape(missing[0])
    closing = re.search(rf"(?:,\s*|\s+){_WHEN_WORDS}?\s*(?:the\s+)?{token}\s*([.!?]?)$", source, re.IGNORECASE)
    if closing:
        phrase = closing.group(0)[: len(closing.group(0)) - len(closing.group(1))].rstrip()
        body = answer.rstrip()
        end = body[-1] if body[-1] in ".!?:" else ""
        return f"{body[: len(body) - len(end)].rstrip(' ,;')}{phrase}{end or closing.group(1)}"
    opening = re.match(rf"{_WHEN_WORDS}\s+(?:the\s+)?{token},?", source, re.IGNORECASE)
    first = answer.split(maxsplit=1)[0] if answer.split() else ""
    if opening and first in _SIMPLE_START:
        phrase = opening.group(0).rstrip(",")
        return f"{phrase[0].upper()}{phrase[1:]}, {answer[0].lower()}{answer[1:]}"
    return answer


def judge_line(line: Line, answer: str, all_tokens: Mapping[str, str] | set[str],
               others: frozenset[str] = frozenset()) -> LineAnswer:
    """What code finds in the model's version of one sentence (``all_tokens``: every token of the draft, with
    its fact when known; ``others``: the other sentences' word stems)."""
    source_words = {w.lower() for w in _WORD.findall(line.original + " " + line.plain)}
    text = reattach(line, strip_judgements(source_words, _REPEAT.sub(r"\1", _ECHO.sub("", answer.strip()))))
    text = _put_back_words(line, _drop_echoed_units(_still_to_come(line.original, text), line))
    result = LineAnswer(text=text)
    used = [m.group(0) for m in TOKEN_RE.finditer(text)]
    if not text:
        result.problems.append("empty")
    result.problems += [f"left out {t}" for t in line.tokens if t not in used]
    # Exactly as the draft says it, as the fact lock checks it ("No downtime" would not count as "no downtime").
    result.problems += [f'left out "{s}"' for s in line.statements if not has_fact(text, s)]
    result.problems += [f'left out "{phrase}"' for phrase in _scopes(line.plain) if not _keeps_scope(text, phrase)]
    result.problems += [f'left out "{name}"' for name in _names(line.plain) if _cut_name(text, name)]
    result.problems += [f"{t} moved to another part of its sentence" for t in _moved(line.plain, text)]
    # An aside of its own words must leave a trace: "(mostly impacted would be authenticated users and bots)".
    result.problems += [f'left out "{aside}"' for aside in _asides(line.plain) if not _traced(text, aside)]
    result.problems += [f"{t} belongs to another sentence" for t in dict.fromkeys(used)
                        if t not in line.tokens and t in all_tokens]
    result.problems += [f"unknown token {t}" for t in dict.fromkeys(used) if t not in all_tokens]
    # The fact holds its noun: "[NUMBER8] new projects" would restore as "more than 50,000 projects new projects".
    result.problems += [f'"{noun}" no longer follows {t}' for t, noun in line.nouns.items()
                        if t in used and not _noun_kept(text, t, noun)]
    if re.search(r"\d", TOKEN_RE.sub("", text)) and not re.search(r"\d", TOKEN_RE.sub("", line.original)):
        result.problems.append("wrote a figure of its own")
    if len(text.split()) > 2 * len(line.original.split()) + 12:
        result.problems.append("too long")
    # Half a long sentence gone: "A data store limit was reduced at [DURATION2]." for "A data store connection
    # time limit reduction from [DURATION2] coincided with elevated load on our main data store ...".
    if len(line.plain.split()) >= SHORT_OF_WORDS and len(text.split()) < SHORT_SHARE * len(line.plain.split()):
        result.problems.append("says too little of its sentence")
    result.problems += [f'says we "{verb}"' for verb in _new_actions(line.original + " " + line.plain, text)]
    facts = all_tokens if isinstance(all_tokens, Mapping) else {}
    result.problems += [f'"{w}" after a figure' for t, w in _after_token_words(text)
                        if w not in STOP_WORDS and w not in source_words  # "[NUMBER1] requests": the fact's own noun
                        and w not in str(facts.get(t, "")).lower().split()
                        and not w.endswith("ing")]  # "[NUMBER1] running tests": a verb, not a new count
    # In the words the model was shown: "[NUMBER1] that run benchmarks" was "... run performance tests".
    result.problems += [f'dropped "{w}"' for w in _qualifiers(line.plain)
                        if not _has_word(text, w) and w not in line.nouns.values()]  # the fact holds its noun
    # What kind of failure: "a write outage" is not "an outage", nor "procedural failures" just "failures".
    result.problems += [f'dropped "{w}"' for w in _event_kinds(line.plain) if not _has_word(text, w.split("-")[0])
                        or (w.endswith("-wide") and not _says_any(text, _WIDE))]  # "service-wide": not "service"
    # What something withstands: "phishing-proof two-step login" is not any "two-step login".
    withstands = re.findall(r"\b([a-z]+)-(?:proof|resistant|safe)\b", line.plain.lower())
    result.problems += [f'dropped "{w}"' for w in withstands if not _has_word(text, w)]
    result.problems += [f'dropped "{w.strip()}"' for w in _states(line.original + " " + line.plain)
                        if not _says_any(text, _STATES[w])]
    reference = line.original + "\n" + line.plain
    own_stems = content_stems(reference)
    # A form of a word of its own is not borrowed: "cert" for "certificate", "CDN" for "CDNs".
    borrowed = sorted(stem for stem in content_stems(text) - own_stems & others - {w[:5] for w in COMMON_WORDS}
                      if not any(stem.startswith(w) or w.startswith(stem) for w in source_words if len(w) >= 3))
    # One word may be a synonym the draft happens to use elsewhere; two, or one of a very short answer ("We
    # renewed the certificate." for "Root cause: the certificate expired."), are content moved in.
    if len(borrowed) >= 2 or (borrowed and 3 * len(borrowed) >= len(content_stems(text))):
        result.problems += [f'"{w}" comes from another sentence' for w in borrowed]
    # Out of its brackets a count still counts the same thing: "([NUMBER1] build waiting)" -> "with [NUMBER1]
    # build waiting" (not "requests lost rose by [NUMBER1]").
    result.problems += [f"{t} is no longer in brackets" for t in sorted(_bracketed(line.original) - _bracketed(text))
                        if t in text and not _same_count(line.plain, text, t)]
    result.problems += [f"{t} used twice" for t in dict.fromkeys(used) if used.count(t) > line.original.count(t)]
    result.problems += _role_changes(line.original, text)
    if _FUTURE.search(line.original) and not _FUTURE_SAID.search(text):
        result.problems.append("no longer says it is still to come")  # "will be served" is not "are available"
    before, after = _limits(line.original) | _limits(line.plain), _limits(text)  # plain: "not pre-stored"
    if "partly" in before and re.search(r"\b(?:parts? of|partial)", text, re.IGNORECASE):
        after.add("partly")  # "still partially served by CloudFront": "CloudFront still serves part of it"
    if "may" in before and re.search(r"\b(?:potential(?:ly)?|possibl[ey]|could|risks?)\b", text, re.IGNORECASE):
        after.add("may")  # "might be disrupted": "potential disruptions", "could be disrupted"
    result.problems += [f'dropped "{w}"' for w in sorted(before - after - _ONLY_ADDED)]
    result.problems += [f'added "{w}"' for w in sorted(after - before)]
    # A half of a long sentence may say what the whole sentence says: "This was due to X, which in turn created
    # Y" licenses "This led to Y" for its second half.
    result.claims = [w for _, words in unsupported_claims(reference + "\n" + line.whole, text) for w in words]
    result.claims += sorted({w for w in re.findall(r"[a-z]+", text.lower()) if w in _JUDGEMENTS} - source_words)
    if source_words & _PRAISE:
        result.claims = [c for c in result.claims if c not in _PRAISE]
    if len(own_stems) >= 2 and not own_stems & content_stems(text):
        result.problems.append("not about the same thing")
    result.novel = novel_words(reference, text)
    result.allowed_novel = max(MAX_NOVEL, len(line.plain.split()) // 5)
    result.copy = copy_ratio(line.plain, text, n=3) if len(line.plain.split()) >= 3 else 1.0
    return result


@lru_cache(maxsize=1)
def _examples() -> list[dict[str, str]]:
    with open(PROMPTS_DIR / "rewrite_lines_examples.toml", "rb") as handle:
        return list(tomllib.load(handle)["example"])


def _user(audience: str, cares: str, kind: str, texts: list[str], retry: bool = False,
          keep: list[list[str]] | None = None) -> HumanMessage:
    lost = [f"{number}: {', '.join(words)}" for number, words in enumerate(keep or [], 1) if words]
    keep_block = ("Each new version must still say what its last version lost:\n" + data_block("keep", "\n".join(lost))
                  if lost else "")
    values = {"audience": audience, "cares": cares, "kind": kind, "draft": data_block("draft", numbered(texts))}
    if retry:
        return HumanMessage(load_prompt("rewrite_lines_retry").fill(**values, keep=keep_block).rstrip() + "\n")
    return HumanMessage(load_prompt("rewrite_lines_user").fill(**values))


def line_messages(persona: Persona, kind_word: str, texts: list[str], retry: bool = False,
                  keep: list[list[str]] | None = None) -> list[BaseMessage]:
    """Fixed system prompt and one worked example first (a cached prefix), then the sentences as data (a retry
    says the earlier version kept the draft's wording or lost a detail, and names what each one lost)."""
    messages: list[BaseMessage] = [SystemMessage(load_prompt("rewrite_lines_system").fill())]
    for example in _examples():
        source = [s.strip() for s in example["draft"].strip().splitlines() if s.strip()]
        answer = [s.strip() for s in example["rewrite"].strip().splitlines() if s.strip()]
        messages += [_user(example["audience"], example["cares"], example["kind"], source),
                     AIMessage(numbered(answer))]
    messages.append(_user(persona.label, persona.cares_about, kind_word, texts, retry, keep))
    return messages


def lost_words(line: Line, answer: LineAnswer | None) -> list[str]:
    """What an earlier answer left out that its sentence says, as the sentence says it: tokens, and words that
    limit or qualify it ("most", "active"); named in the next request."""
    found: list[str] = []
    hidden = {m.group(0): head.group(1) if head.group(1).startswith("[") else f'"{head.group(1)}"'
              for head in re.finditer(rf"(\[[A-Z]+\d+\]|[A-Za-z][\w.'-]*){_BRACKETED_NAME.pattern}", line.plain)
              for m in TOKEN_RE.finditer(head.group(0)[len(head.group(1)):])}
    for problem in answer.problems if answer else []:
        token = re.fullmatch(r"left out (\[[A-Z]+\d+\])", problem)
        if token:
            # A name the model was not shown comes back after its word: that word is what was lost.
            found.append(hidden.get(token.group(1), token.group(1)))
            continue
        phrase = re.fullmatch(r'left out ("[^"]+")', problem)  # a statement or a window of time, as drafted
        if phrase:
            found.append(phrase.group(1))
            continue
        word = re.fullmatch(r'dropped "([a-z-]+)"', problem)
        if word is None:
            continue
        forms = [word.group(1), *(k for k, v in _LIMITS.items() if v == word.group(1))]
        said = next((m.group(0) for form in forms
                     for m in [re.search(rf"\b{re.escape(form)}\b", line.plain, re.IGNORECASE)] if m), None)
        if said and not any(re.search(rf"\b{re.escape(said)}\b", named) for named in found):  # "no" in "no downtime"
            found.append(f'"{said}"')
    return list(dict.fromkeys(found))


def settle(lines: list[Line], answers: list[LineAnswer | None]) -> tuple[list[str], list[str]]:
    """What each line becomes, and the sentences kept as the draft wrote them: a passing answer, or the line's
    plain words. Of the two halves of a long sentence, a failed one is kept in plain words only where it still
    reads as a sentence (the first half always does; a second half only if it does not start "which ..."); else
    the whole sentence is kept."""
    ok = [bool(answer and answer.ok) for answer in answers]
    seen: set[str] = set()
    for i, answer in enumerate(answers):  # one answer never stands for two sentences
        if answer is not None and ok[i]:
            ok[i] = answer.text not in seen
            seen.add(answer.text)
    chosen: list[str] = []
    kept: list[str] = []
    for i, (line, answer) in enumerate(zip(lines, answers, strict=True)):
        partner = i + 1 if line.whole and not line.second else i - 1 if line.second else i
        first_index, second_index = (i, partner) if line.whole and not line.second else (partner, i)
        if line.whole and not (ok[i] or ok[partner]):
            chosen.append("" if line.second else line.whole)
            if not line.second:
                kept.append(line.whole)
        elif line.whole and ok[first_index] and not (ok[second_index] or lines[second_index].stands_alone):
            # "..., which in turn ..." cannot stand alone: it stays as the draft said it, joined to the rewritten
            # first half the way the draft joined it.
            if line.second:
                chosen.append("")
                kept.append(_as_drafted(line))
            elif answer is not None:
                chosen.append(_joined(answer.text, lines[second_index]))
        elif ok[i] and answer is not None:
            chosen.append(answer.text)
        else:
            chosen.append(line.plain)
            kept.append(line.plain)
    return chosen, kept


def _as_drafted(second: Line) -> str:
    """A second half in plain words, starting as in the draft ("which", not the "Which" the model was shown)."""
    plain = second.plain
    return second.original[:1] + plain[1:] if plain[:1].lower() == second.original[:1].lower() else plain


def _joined(first: str, second: Line) -> str:
    """A rewritten first half and the second half in plain words, joined as the draft joined them."""
    return first.rstrip().rstrip(".").rstrip() + (second.joint or ", ") + _as_drafted(second)


def assemble(lines: list[Line], chosen: list[str]) -> str:
    """Sentences back into the draft's paragraphs."""
    paragraphs: dict[int, list[str]] = {}
    for line, text in zip(lines, chosen, strict=True):
        sentence = text.strip()
        if sentence and sentence[-1] not in ".!?:":
            sentence += "."
        paragraphs.setdefault(line.paragraph, [])
        if sentence:
            paragraphs[line.paragraph].append(sentence)
    return "\n\n".join(" ".join(p) for p in paragraphs.values() if p)


class NumberStripper:
    """Passes streamed text on without the "3. " each line starts with."""

    def __init__(self, sink: Callable[[str], None] | None) -> None:
        self.sink, self.pending, self.at_line_start = sink, "", True

    def __call__(self, chunk: str) -> None:
        if self.sink is None:
            return
        self.pending += chunk
        out: list[str] = []
        while self.pending:
            if self.at_line_start:
                match = re.match(r"\s*\d{1,3}[.)]\s*", self.pending)
                if match is None and re.fullmatch(r"\s*\d{0,3}[.)]?", self.pending):
                    break  # maybe the start of a number: wait for more
                if match:
                    self.pending = self.pending[match.end():]
                self.at_line_start = False
                continue
            newline = self.pending.find("\n")
            if newline < 0:
                out.append(self.pending)
                self.pending = ""
            else:
                out.append(self.pending[:newline] + " ")
                self.pending = self.pending[newline + 1:]
                self.at_line_start = True
        if out:
            self.sink("".join(out))

    def flush(self) -> None:
        """Emit whatever is held back."""
        if self.sink and self.pending.strip():
            self.sink(self.pending)
        self.pending = ""

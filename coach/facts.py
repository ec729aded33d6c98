"""Facts in a draft, found by code: the figures a rewrite must keep exactly.

A fact is a span of the draft: a date, a time, a duration, a percentage, an amount of money, a number
(with its unit or counted noun when it has one), an HTTP status, a version, or a named system (a host or an
identifier with digits). Facts joined only by "to", "-", "and", "or" or "around" become one fact ("16:58 to
18:46 UTC"), so a rewrite cannot keep one end of a range and lose the other. Hedges ("around", "~",
"more than") stay inside the fact: "around 1600" is not "1600".
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

FactKind = Literal["date", "time", "duration", "percent", "money", "number", "code", "system", "statement"]

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_WEEKDAY = r"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day,?\s"
_ORD = r"\d{1,2}(?:st|nd|rd|th)?"
_HEDGE = r"(?:(?i:approximately|approx\.|around|about|roughly|nearly|almost|over|under|up to|at least|more than|less than|fewer than)\s|~\s?)?"
_NUM = r"\d+(?:[.,]\d+)*"
_TZ = r"(?:\s?(?:UTC|GMT|CET|CEST|EST|EDT|PST|PDT|BST|IST|[ap]\.?m\.?))*"
_DUR_UNIT = (r"(?:milliseconds?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|hr|h|days?|d|weeks?|wks?|"
             r"months?|years?|yrs?)")
_SCALE = r"(?:thousand|million|billion|trillion|[kKMB]n?)"
_UNIT = (r"(?:[KMGTPE]i?B|bytes|kilobytes|megabytes|gigabytes|terabytes|petabytes|exabytes|requests?|users?|"
         r"customers?|staff|employees|people|servers?|machines?|hosts?|VMs?|nodes?|tickets?|incidents?|builds?|"
         r"files?|projects?|logins?|calls?|licen[cs]es?|sites?|stores?|devices?|laptops?|sessions?|errors?|"
         r"outages?|downtimes?|releases?|changes?|agents?|instances?|teams?|engineers?|transactions?|orders?|"
         r"records?|accounts?|days?|GB/s|Mbps|Gbps|rps|req/s|qps|TPS)")
_NUMBER_WORDS = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|hundred)"

# Ordered: earlier patterns win where spans overlap (longest match is also preferred below).
_PATTERNS: list[tuple[FactKind, str]] = [
    ("date", rf"(?:{_WEEKDAY})?{_MONTH}\s{_ORD}(?:,?\s\d{{4}})?(?!\d)"),
    ("date", rf"(?:{_WEEKDAY})?(?:the\s)?{_ORD}\s(?:of\s)?{_MONTH}(?:,?\s\d{{4}})?"),
    ("date", rf"\d{{4}}-\d{{2}}-\d{{2}}(?:[ T]\d{{1,2}}(?::|h)\d{{2}}{_TZ})?"),
    ("date", rf"{_MONTH}\s\d{{4}}"),
    ("date", r"\bQ[1-4](?:\s\d{4}|\sFY\d{2,4})?\b"),
    ("date", r"\bFY\s?\d{2,4}\b"),
    ("time", rf"\b(?:noon|midday|midnight){_TZ}(?:\s(?:the\s)?{_ORD})?"),
    ("time", rf"{_HEDGE}\b\d{{1,2}}(?::\d{{2}}|h\d{{2}}){_TZ}"),
    ("time", r"\b\d{1,2}\s?[ap]\.?m\.?(?:\s?(?:UTC|GMT|[A-Z]{2,4}T))?"),
    ("date", rf"\bthe\s{_ORD}\b"),
    ("money", rf"{_HEDGE}[$€£]\s?{_NUM}(?:\s?{_SCALE})?(?:\s?(?:/\s?(?:yr|year|month|mo|hour|hr|h)|per\s\w+|an?\s(?:year|month|hour)))?"),
    ("money", rf"{_HEDGE}{_NUM}(?:\s?{_SCALE})?\s?(?:USD|EUR|GBP|dollars|euros|pounds)"),
    ("percent", rf"{_HEDGE}{_NUM}\s?(?:%|percent\b|per\scent\b)"),
    ("duration", rf"{_HEDGE}(?<![\w.]){_NUM}\+?\s?{_DUR_UNIT}(?:,?\s(?:and\s)?{_NUM}\s?{_DUR_UNIT})*\b"),
    ("code", r"\bHTTP[ /]?\d{3}\b|\b[45]\d{2}\s(?=errors?\b)"),
    ("number", rf"{_HEDGE}\d+/\d+(?:st|nd|rd|th)?"),
    ("code", r"\b[A-Z]{1,5}-?\d{3,}\b"),
    ("number", rf"{_HEDGE}(?<![\w.]){_NUM}\+?(?:\s{_SCALE}\b)?(?:\s{_UNIT}\b)?(?!\w)"),
    ("number", rf"\b{_NUMBER_WORDS}\s(?:[a-z0-9]+\s)?{_UNIT}\b"),
    ("code", r"\bv?\d+\.\d+(?:\.\d+)+\b"),
    ("system", r"\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:io|com|org|net|dev|rs|co|ai|app|cloud|local|internal)\b"),
    ("system", r"\b(?=[A-Za-z-]*\d)(?=[A-Za-z0-9-]*[A-Za-z]{2})[A-Za-z][A-Za-z0-9-]*\d[A-Za-z0-9-]*\b"),
    ("statement", r"\bno\s(?:downtime|impact|outage|data\sloss|action(?:\srequired)?|customer\simpact)\b"),
]
_COMPILED = [(kind, re.compile(pattern, re.IGNORECASE if kind in ("date", "statement") else 0))
             for kind, pattern in _PATTERNS]
_JOINERS = re.compile(r"^(?:\s?(?:-|–|—|to|and|or|until|through)\s?|\s(?:to|and|or|until|through)\s(?:around\s)?)$")


class Fact(BaseModel):
    """One fact of a draft: its exact text, its kind and where it sits."""

    text: str
    kind: FactKind
    start: int
    end: int


_URL = re.compile(r"(?:https?://|www\.)\S+")


def _candidates(text: str) -> list[Fact]:
    found: list[Fact] = []
    masked = _URL.sub(lambda m: " " * len(m.group(0)), text)  # a figure inside a link is not a fact
    for kind, pattern in _COMPILED:
        group: list[Fact] = []
        for match in pattern.finditer(masked):
            span = match.group(0).rstrip(" ,.")
            if span.strip() and any(ch.isalnum() for ch in span):
                start = match.start() + (len(match.group(0)) - len(match.group(0).lstrip()))
                group.append(Fact(text=span.strip(), kind=kind, start=start, end=start + len(span.strip())))
        found.extend(sorted(group, key=lambda f: f.start - f.end))
    return found


def _non_overlapping(candidates: list[Fact]) -> list[Fact]:
    """Where spans overlap keep the earlier pattern's match (candidates come in pattern order), longest first."""
    chosen: list[Fact] = []
    for fact in candidates:
        if all(fact.end <= other.start or fact.start >= other.end for other in chosen):
            chosen.append(fact)
    return sorted(chosen, key=lambda f: f.start)


def _merge_ranges(text: str, facts: list[Fact]) -> list[Fact]:
    """Join facts separated only by a range word ("16:58 to 18:46 UTC", "10 or 20")."""
    merged: list[Fact] = []
    for fact in facts:
        if merged and fact.kind not in ("system", "statement") and merged[-1].kind not in ("system", "statement"):
            gap = text[merged[-1].end:fact.start]
            if gap and _JOINERS.match(gap):
                prev = merged.pop()
                merged.append(Fact(text=text[prev.start:fact.end], kind=prev.kind, start=prev.start, end=fact.end))
                continue
        merged.append(fact)
    return merged


def extract_facts(text: str) -> list[Fact]:
    """All facts of ``text`` in reading order, ranges merged, no overlaps."""
    return _merge_ranges(text, _non_overlapping(_candidates(text)))


_FIGURE = re.compile(r"(?<![\w.])(?:[$€£]\s?)?\d+(?:[.,:/]\d+)*(?:\s?%)?")


def figures(text: str) -> set[str]:
    """Every bare figure in ``text`` (digits with separators), normalised for comparison."""
    return {_normalise_figure(m.group(0)) for m in _FIGURE.finditer(text)}


def _normalise_figure(figure: str) -> str:
    return re.sub(r"[\s$€£%]", "", figure).rstrip(".,")


def invented_figures(rewrite: str, allowed_texts: list[str]) -> list[str]:
    """Figures in the rewrite that appear in none of the allowed texts (the draft, user-supplied facts)."""
    allowed: set[str] = set()
    for source in allowed_texts:
        allowed |= figures(source)
    return sorted(figure for figure in figures(rewrite) if figure not in allowed)

"""The metric translator: IT metrics become business outcomes, with every sum done here, in code.

"99.9% uptime" becomes hours of downtime a year; an outage's duration becomes its cost once the user says
what an hour of downtime costs; "from ~1h 20m to ~40m" becomes "50% faster". A figure the business has not
given (the cost of an hour, the number of people affected) is asked for in ``questions``, never invented.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from coach.facts import Fact, extract_facts
from coach.rewrite_models import MetricTranslation

HOURS_PER_YEAR = 365 * 24
_UNIT_MINUTES = {"ms": 1 / 60000, "millisecond": 1 / 60000, "s": 1 / 60, "sec": 1 / 60, "second": 1 / 60,
                 "m": 1.0, "min": 1.0, "minute": 1.0, "h": 60.0, "hr": 60.0, "hour": 60.0, "d": 1440.0,
                 "day": 1440.0, "week": 10080.0, "wk": 10080.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s?(milliseconds?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|hr|h|days?|d|weeks?|wks?)\b",
                   re.I)
_MONEY = re.compile(r"([$€£])\s?(\d[\d,]*(?:\.\d+)?)\s?([kKmM]|thousand|million)?")
_PER_HOUR = re.compile(r"(?:\b(?:an?|per|one|each|every)\s|/\s?)(?:hour|hr|h)\b|\bhourly\b", re.I)
_PEOPLE = re.compile(r"(\d[\d,]*)\s+(?:staff|employees|people|users|customers|agents|stores)\b", re.I)
_UPTIME = re.compile(r"(\d+(?:\.\d+)?)\s?%\s*(?:uptime|availability|available)|(?:uptime|availability)\s+(?:(?:of|was|is|at|reached|hit)\s+){0,2}(\d+(?:\.\d+)?)\s?%", re.I)


class BusinessFigures(BaseModel):
    """Figures the user supplied about the business."""

    cost_per_hour: float | None = None
    currency: str = "$"
    people_affected: int | None = None


def minutes(duration: str) -> float | None:
    """Minutes in a duration such as "1 hour and 48 minutes" or "~1h 20m"; None if none is found."""
    total = 0.0
    found = False
    for value, unit in _PART.findall(duration):
        key = unit.lower().rstrip("s") if unit.lower() not in ("s", "ms") else unit.lower()
        key = {"minute": "minute", "min": "min", "second": "second", "sec": "sec"}.get(key, key)
        if key in _UNIT_MINUTES:
            total += float(value) * _UNIT_MINUTES[key]
            found = True
    return total if found else None


def _money_value(amount: str, scale: str | None) -> float:
    value = float(amount.replace(",", ""))
    factor = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}.get((scale or "").lower(), 1.0)
    return value * factor


def parse_supplied(facts: list[str]) -> BusinessFigures:
    """Read the user's business figures ("downtime costs $12,000 an hour", "400 staff use it")."""
    figures = BusinessFigures()
    for text in facts:
        money = _MONEY.search(text)
        if money and _PER_HOUR.search(text):
            figures.cost_per_hour = _money_value(money.group(2), money.group(3))
            figures.currency = money.group(1)
        people = _PEOPLE.search(text)
        if people:
            figures.people_affected = int(people.group(1).replace(",", ""))
    return figures


def money(value: float, currency: str = "$") -> str:
    """A rounded amount a reader can take in at a glance."""
    if value >= 1e6:
        return f"{currency}{value / 1e6:,.1f} million"
    if value >= 1e4:
        return f"{currency}{round(value, -3):,.0f}"
    return f"{currency}{round(value, -1):,.0f}"


def _hours(value: float) -> str:
    return f"{value:,.1f} hours" if value < 100 else f"{value:,.0f} hours"


def translate_uptime(text: str, figures: BusinessFigures) -> list[MetricTranslation]:
    """Uptime percentages become hours of downtime a year (and their cost when known)."""
    out: list[MetricTranslation] = []
    for match in _UPTIME.finditer(text):
        percent = float(match.group(1) or match.group(2))
        hours = (100 - percent) / 100 * HOURS_PER_YEAR
        business = f"{percent:g}% uptime allows about {_hours(hours)} of downtime a year"
        needs = None
        if figures.cost_per_hour is not None:
            business += f", about {money(hours * figures.cost_per_hour, figures.currency)} a year at the cost you gave"
        else:
            needs = "What does one hour of this service being down cost the business (lost sales, idle staff)?"
        out.append(MetricTranslation(metric=match.group(0), business=business + ".", needs=needs))
    return out


_SPEED_CONTEXT = re.compile(r"\b(?:latenc\w*|response|wait\w*|took|takes|time to|result|load(?:ing)? time|faster|"
                            r"slower|speed|turnaround)\b", re.I)


def _sentence_at(text: str, position: int) -> str:
    start = max(text.rfind(".", 0, position), text.rfind("\n", 0, position)) + 1
    end = min((i for i in (text.find(".", position), text.find("\n", position)) if i != -1), default=len(text))
    return text[start:end]


def _duration_ranges(text: str, facts: list[Fact]) -> list[tuple[str, float, float]]:
    """Durations that went from A to B where the sentence is about speed (a shorter timeout is not "faster")."""
    ranges = []
    for fact in facts:
        sentence = _sentence_at(text, fact.start)
        if fact.kind != "duration" or not _SPEED_CONTEXT.search(sentence) or re.search(r"timeout", sentence, re.I):
            continue
        ends = re.split(r"\s(?:to|-|–)\s", fact.text)
        if len(ends) == 2:
            before, after = minutes(ends[0]), minutes(ends[1])
            if before and after and before != after:
                ranges.append((fact.text, before, after))
    return ranges


def translate_changes(text: str, facts: list[Fact]) -> list[MetricTranslation]:
    """"From A to B" durations become a percentage faster or slower, computed here."""
    out = []
    for phrase, before, after in _duration_ranges(text, facts):
        change = (before - after) / before * 100
        if after >= 2 * before:  # "1233% slower" says less than "13 times as slow"
            times = after / before
            amount = f"{times:.1f}".removesuffix(".0") if times < 10 else f"{times:.0f}"
            business = f"{amount} times as slow ({phrase})."
        else:
            business = f"{abs(change):.0f}% {'faster' if change > 0 else 'slower'} ({phrase})."
        out.append(MetricTranslation(metric=phrase, business=business, needs=None))
    return out


_DOWN_WORDS = re.compile(r"\b(?:outage|downtime|down|unavailable|disrupt\w*|offline|incident|failed)\b", re.I)
_NOT_DOWNTIME = re.compile(r"\b(?:MTT[RDA]|mean[- ]time|repair|respond|response|latency|timeout|took|wait)\b", re.I)


def _is_downtime(text: str, fact: Fact) -> bool:
    """A duration that measures time the service was down (not a repair time, a timeout or a wait)."""
    sentence = _sentence_at(text, fact.start)
    return bool(_DOWN_WORDS.search(sentence)) and not _NOT_DOWNTIME.search(sentence)


def translate_outage(text: str, facts: list[Fact], figures: BusinessFigures) -> list[MetricTranslation]:
    """An outage's length becomes its cost when the cost of an hour is known; otherwise a question."""
    if not re.search(r"\b(?:outage|downtime|down|unavailable|disrupt|failed|errors?)\b", text, re.I):
        return []
    durations = [(f.text, minutes(f.text)) for f in facts
                 if f.kind == "duration" and not re.search(r"\sto\s", f.text) and _is_downtime(text, f)]
    durations = [(t, m) for t, m in durations if m and m >= 1]
    if not durations:
        return []
    distinct = dict(durations)
    mins = sum(m for m in distinct.values() if m)
    phrase = " + ".join(distinct) if len(distinct) > 1 else next(iter(distinct))
    hours = mins / 60
    if figures.cost_per_hour is not None:
        cost = money(hours * figures.cost_per_hour, figures.currency)
        business = f"At the cost you gave, {phrase} of downtime cost the business about {cost}."
        return [MetricTranslation(metric=phrase, business=business, needs=None)]
    needs = "What does one hour of this service being down cost the business (lost sales, idle staff)?"
    return [MetricTranslation(metric=phrase, business=f"{phrase} ({_hours(hours)}) of disruption.", needs=needs)]


def translate(text: str, supplied: list[str]) -> tuple[list[MetricTranslation], list[str]]:
    """All translations for a draft, and the questions whose answers would complete them."""
    figures = parse_supplied(supplied)
    facts = extract_facts(text)
    translations = translate_uptime(text, figures) + translate_changes(text, facts) + translate_outage(text, facts, figures)
    questions = list(dict.fromkeys(t.needs for t in translations if t.needs))
    if translations and figures.people_affected is None and re.search(r"\b(?:outage|incident|disrupt|downtime)", text, re.I):
        questions.append("How many staff or customers were affected?")
    return translations, questions

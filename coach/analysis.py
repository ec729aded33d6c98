"""Deterministic checks of a text: jargon, undefined acronyms, readability, accountability, IT metrics.

Everything here is code, not the model, so the same draft always gets the same findings and the
before/after scores compare like with like.
"""

from __future__ import annotations

import re
from functools import lru_cache

import textstat
from pydantic import BaseModel

from coach.facts import extract_facts

# IT jargon -> the plain words a business reader would use. Keys are matched as whole words, case-insensitive.
JARGON: dict[str, str] = {
    "api": "connection between systems", "apis": "connections between systems",
    "cdn": "content delivery network (copies of our files close to users)",
    "cdns": "content delivery networks", "latency": "delay", "latencies": "delays",
    "uptime": "time the service was available", "downtime": "time the service was unavailable",
    "mttr": "average time to fix", "mttd": "average time to notice", "sla": "service promise",
    "slo": "service target", "throughput": "amount of work handled", "endpoint": "service address",
    "instance": "server", "instances": "servers", "cluster": "group of servers", "node": "server",
    "kubernetes": "the platform that runs our services", "k8s": "the platform that runs our services",
    "helm chart": "deployment recipe", "ingress": "traffic routing", "load balancer": "traffic distributor",
    "database": "data store", "writer database": "main data store", "replica": "copy",
    "failover": "switch to the backup", "switchover": "switch to the backup", "rollback": "undo",
    "rollout": "gradual launch", "deploy": "release", "deployment": "release", "deployments": "releases",
    "hotfix": "urgent fix", "patch": "fix", "regression": "something that broke again",
    "timeout": "time limit", "timeouts": "time limits", "retry logic": "automatic retries",
    "cascading failures": "a chain of failures", "runtime configuration": "settings we can change without a restart",
    "hardcoded": "fixed in the code", "configuration": "settings", "config": "settings",
    "cache": "stored copy", "caching": "keeping copies", "uncached": "not pre-stored", "shielding": "extra caching",
    "origin server": "main server", "tls": "secure connection", "dns": "internet address lookup",
    "vm": "virtual machine", "vms": "virtual machines", "agents": "worker machines", "queue": "waiting line",
    "build queue": "waiting line of jobs", "purge": "clear", "bandwidth": "network capacity",
    "infrastructure": "systems", "migration": "move", "mirrors": "copy sites", "redirection": "forwarding",
    "ci": "automatic build and test system", "continuous integration": "automatic build and test system",
    "pipeline": "automated process", "repository": "code store", "prs": "code changes", "pr": "code change",
    "merge": "combine", "bot": "automated assistant", "benchmark": "performance test", "benchmarks": "performance tests",
    "2fa": "two-step login", "mfa": "two-step login", "sso": "single sign-on", "attestation": "proof of origin",
    "read-only": "viewable but not editable", "primary": "main server", "spare host": "backup server",
    "daemon": "background service", "contention": "competition for resources", "race condition": "timing bug",
    "post requests": "submissions", "http": "web", "backlog": "waiting work", "sprint": "two-week work cycle",
    "p1": "top-priority incident", "rca": "root-cause analysis", "root cause": "underlying cause",
    "ticket": "request", "tickets": "requests", "incident response": "how we handled the problem",
    "filesystem": "file storage", "file system": "file storage", "runtime": "live system",
    "provisioning": "setting up", "decommission": "retire", "san": "storage system", "vdi": "virtual desktops",
    "hypervisor": "virtualisation server", "p95": "slowest 5%", "p99": "slowest 1%", "rps": "requests per second",
    "ops": "operations team", "devops": "operations team", "on-prem": "in our own data centre",
    "saas": "rented online software", "erp": "finance and operations system", "crm": "customer system",
}
_JARGON_RE = re.compile(
    r"(?<![\w-])(" + "|".join(sorted((re.escape(k) for k in JARGON), key=len, reverse=True)) + r")(?![\w-])",
    re.IGNORECASE,
)
# Acronyms a business reader already knows.
KNOWN_ACRONYMS = frozenset({
    "IT", "CEO", "CFO", "COO", "CIO", "CTO", "HR", "US", "USA", "UK", "EU", "UTC", "GMT", "AM", "PM", "OK",
    "FAQ", "PDF", "ID", "IDS", "Q1", "Q2", "Q3", "Q4", "FY", "USD", "EUR", "GBP", "AI", "KPI", "ROI", "TV", "PC",
    "ASAP", "ETA", "TBD", "FYI", "VP", "PA", "NA", "EMEA", "APAC", "LLC", "INC", "LTD", "I",
})
_ACRONYM_RE = re.compile(r"(?<![\w.])([A-Z][A-Z0-9]{1,6}s?)(?![\w.])")
_METRIC_PATTERNS: dict[str, re.Pattern[str]] = {
    "uptime": re.compile(r"\d+(?:\.\d+)?\s?%\s*(?:uptime|availability|available)|(?:uptime|availability)\s+(?:of\s+)?\d+(?:\.\d+)?\s?%", re.I),
    "mttr": re.compile(r"\b(?:MTTR|MTTD|mean[- ]time[- ]to[- ](?:respond|repair|resolve|recover|detect))\b[^.]{0,40}", re.I),
    "latency": re.compile(r"\b(?:latenc(?:y|ies)|response times?|p9[59])\b[^.]{0,60}", re.I),
    "tickets": re.compile(r"\d[\d,]*\s+(?:tickets|incidents|requests closed|cases)\b", re.I),
    "error_rate": re.compile(r"\d+(?:\.\d+)?\s?%\s+of\s+(?:[\w-]+\s){0,4}(?:requests|calls|transactions)\s+(?:failed|errored)", re.I),
}
_OWNER_RE = re.compile(r"\b(?:owner|owned by|responsible|accountable|lead(?:s|ing)? by|led by|assigned to|"
                       r"[A-Z][a-z]+ (?:will|is going to|owns)|(?:the )?[A-Z][\w&]+ team (?:will|owns))\b")
_MILESTONE_RE = re.compile(r"\b(?:milestone|phase|deadline|go-live|launch|deliver(?:y|ed|s)?|complete[sd]?|"
                           r"finish(?:ed|es)?|cut-?over|release|due|by (?:the )?end of|next step)\b", re.I)


class TextAnalysis(BaseModel):
    """What code finds in one text."""

    fk_grade: float
    reading_ease: float
    jargon: list[str]
    undefined_acronyms: list[str]
    accountability: dict[str, bool]
    it_metrics: list[tuple[str, str]]

    @property
    def accountability_score(self) -> int:
        """How many of milestone, owner and date the text names (0-3)."""
        return sum(self.accountability.values())


def find_jargon(text: str) -> list[str]:
    """Every jargon term used, in order of first use (lower-case keys of ``JARGON``)."""
    seen: dict[str, None] = {}
    for match in _JARGON_RE.finditer(text):
        seen.setdefault(match.group(1).lower(), None)
    return list(seen)


def count_jargon(text: str) -> int:
    """How many jargon terms occur (each occurrence counts)."""
    return sum(1 for _ in _JARGON_RE.finditer(text))


def undefined_acronyms(text: str) -> list[str]:
    """Acronyms used without being spelled out in the text ("Content Delivery Network (CDN)" defines CDN)."""
    found: dict[str, None] = {}
    for match in _ACRONYM_RE.finditer(text):
        acronym = match.group(1).rstrip("s") if match.group(1).endswith("s") and len(match.group(1)) > 2 else match.group(1)
        if acronym.upper() in KNOWN_ACRONYMS or any(ch.isdigit() for ch in acronym):
            continue
        if not _is_defined(acronym, text):
            found.setdefault(acronym, None)
    return list(found)


def _is_defined(acronym: str, text: str) -> bool:
    letters = r"\W+".join(rf"{re.escape(ch)}\w*" for ch in acronym if ch.isalpha())
    return bool(letters) and (
        re.search(rf"\b{letters}\s*\(\s*{re.escape(acronym)}s?\s*\)", text, re.IGNORECASE) is not None
        or re.search(rf"\b{re.escape(acronym)}\s*\(\s*{letters}", text, re.IGNORECASE) is not None
    )


def accountability(text: str) -> dict[str, bool]:
    """Whether the text names a milestone, an owner and a date."""
    has_date = any(f.kind == "date" for f in extract_facts(text))
    return {
        "milestone": bool(_MILESTONE_RE.search(text)),
        "owner": bool(_OWNER_RE.search(text)),
        "date": has_date,
    }


def it_metrics(text: str) -> list[tuple[str, str]]:
    """IT-focused metrics in the text: (kind, the words that state it)."""
    found: list[tuple[str, str]] = []
    for kind, pattern in _METRIC_PATTERNS.items():
        found.extend((kind, m.group(0).strip()) for m in pattern.finditer(text))
    return found


@lru_cache(maxsize=256)
def analyse(text: str) -> TextAnalysis:
    """All deterministic findings for ``text``."""
    plain = text.strip() or "."
    return TextAnalysis(
        fk_grade=round(float(textstat.flesch_kincaid_grade(plain)), 1),
        reading_ease=round(float(textstat.flesch_reading_ease(plain)), 1),
        jargon=find_jargon(text),
        undefined_acronyms=undefined_acronyms(text),
        accountability=accountability(text),
        it_metrics=it_metrics(text),
    )


def sentences(text: str) -> list[str]:
    """Split into sentences (good enough for plain business prose)."""
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(\[])|\n{2,}", text)
    return [p.strip() for p in parts if p and p.strip()]

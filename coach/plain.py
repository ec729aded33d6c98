"""Plain words put in by code before the small model sees a draft: it copies the words it is shown.

Banning jargon tokens while the model writes made it write nonsense; showing it a draft that already says
"delay" instead of "latency" does not. Only substitutions that read naturally in most sentences are here;
facts are tokens by then, so nothing here can touch a figure.
"""

from __future__ import annotations

import re

SUBSTITUTIONS: dict[str, str] = {
    "writer database": "main data store", "databases": "data stores", "database": "data store",
    "latencies": "delays", "latency": "delay", "uptime": "availability",
    "instances": "servers", "instance": "service", "endpoints": "service addresses", "endpoint": "service address",
    "cdns": "content networks", "cdn": "content network", "content delivery network": "content network",
    "timeouts": "time limits", "timeout": "time limit", "retry logic": "automatic retries",
    "cascading failures": "a chain of failures", "runtime configuration": "settings we can change without a restart",
    "hardcoded configuration values": "built-in settings", "hardcoded": "built-in",
    "configuration values": "settings", "configurations": "settings", "configuration": "settings",
    "config": "settings", "uncached": "not pre-stored", "caching layer": "storage layer",
    "origin server": "main server",
    "azure vm": "cloud machine", "vm agents": "build machines", "vms": "virtual machines", "vm": "virtual machine",
    "agents": "build machines", "purge": "clear", "ingress configuration": "traffic-routing settings",
    "ingress": "traffic routing", "helm chart deployments": "deployments", "helm chart": "deployment recipe",
    "race condition": "timing bug", "kubernetes cluster": "server platform", "kubernetes": "server platform",
    "read-only": "view-only", "switchover": "switch to the backup", "spare host": "backup server",
    "current primary": "current main server", "system daemon user": "system account", "daemon": "background service",
    "prs": "code changes", "continuous integration": "automatic testing", "benchmarking": "performance testing",
    "benchmarks": "performance tests", "benchmark": "performance test", "2fa": "two-step login",
    "non-phishable": "phishing-proof", "attestation": "proof of origin", "apis": "interfaces", "api": "interface",
    "post requests": "form submissions", "contention": "competition for resources", "infrastructure": "technical setup",
    "shielding": "extra caching", "redirection": "forwarding", "filesystem": "file storage",
    "file system": "file storage", "rollout": "launch", "failover": "switch to the backup", "throughput": "capacity",
    "mttr": "average repair time", "tls errors": "secure-connection errors", "ingestion": "data intake",
}
_KEYS = "|".join(re.escape(k) for k in sorted(SUBSTITUTIONS, key=len, reverse=True))  # longest first
_PATTERN = re.compile(rf"(?<![\w\[-])({_KEYS})(?![\w-])", re.IGNORECASE)
_ARTICLE = re.compile(r"\b([Aa])(n?) \x00(?=(\w))")


def _replace(match: re.Match[str]) -> str:
    word = match.group(1)
    before = match.string[:match.start()].rstrip()
    if word[:1].isupper() and not word.isupper() and before and before[-1] not in ".!?:\n":
        return word  # a capitalised word inside a sentence is a name ("the Infrastructure Team"): keep it
    plain = SUBSTITUTIONS[word.lower()]
    cased = plain[:1].upper() + plain[1:] if word[:1].isupper() and not word.isupper() else plain
    return f"\x00{cased}"  # marks where a replacement starts, so only its own article is fixed


def _fix_article(match: re.Match[str]) -> str:
    vowel = match.group(3).lower() in "aeiou"
    return f"{match.group(1)}{'n' if vowel else ''} \x00"


_SPELLED_OUT = re.compile(rf"(?<![\w\[-])({_KEYS})\s*\(\s*({_KEYS})\s*\)", re.IGNORECASE)


def _once(match: re.Match[str]) -> str:
    """"Content Delivery Network (CDN)": both say "content network", so it is said once."""
    long, short = (SUBSTITUTIONS[word.lower()] for word in match.groups())
    return match.group(1) if long == short else match.group(0)


def plain_words(text: str) -> str:
    """``text`` with common IT jargon replaced by plain words, articles agreeing ("an API" -> "an interface"); a
    term followed by its own acronym in brackets is said once."""
    replaced = _ARTICLE.sub(_fix_article, _PATTERN.sub(_replace, _SPELLED_OUT.sub(_once, text)))
    return replaced.replace("\x00", "")

"""How each kind of model is asked to rewrite, and how its answers are checked and chosen.

The embedded 1.5B model copies a draft it is shown plainly, so it gets the small-model strategy: a cleaned
draft whose facts are typed tokens, two worked examples as earlier turns of a fixed (cached) prefix, mild DRY
sampling against copying, and up to three samples — a fresh one, one repair turn that names the missing tokens,
another fresh one — of which code keeps the best. Strong backends get a plain prompt with the real draft and a
bounded repair turn naming the exact strings they dropped. Every candidate is judged by code, never by a model.
"""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from coach.models import ChatModelHandle, Generation, GenerationOptions, generate
from coach.prompts import PROMPTS_DIR, data_block, load_prompt
from coach.rewrite_models import Persona
from coach.verify import (
    TOKEN_RE,
    Placeholders,
    attribution_flags,
    copy_ratio,
    novel_words,
    token_problems,
    unsupported_claims,
)

MAX_WORDS = 220
SMALL_ATTEMPTS = 3
SMALL_TIME_BUDGET_S = 16.0  # no new attempt starts after this; the fallback restores what is missing
STRONG_REPAIRS = 2
# Mild DRY penalises re-emitting long runs of the prompt (copying) without breaking the tokens: "[" and "]"
# must be sequence breakers or the model is pushed to mangle [TIME1] on its second use.
SMALL_SAMPLING = {
    "top_k": 40, "min_p": 0.05, "dry_multiplier": 0.5, "dry_base": 1.75, "dry_allowed_length": 3,
    "dry_penalty_last_n": 4096, "dry_sequence_breakers": ["\n", ":", "\"", "*", "[", "]"], "cache_prompt": True,
}

TokenSink = Callable[[str], None]
ProgressSink = Callable[[str], None]


@dataclass
class Candidate:
    """One model answer and what code found in it."""

    text: str  # as the model wrote it (tokens, for the small strategy)
    generation: Generation
    missing: list[str]
    problems: list[str] = field(default_factory=list)
    attribution: int = 0  # facts on the wrong event plus claims the draft does not make
    copy: float = 0.0

    novel: int = 0  # words neither the draft nor common business prose uses

    @property
    def rank(self) -> tuple[int, int, int, int, float]:
        """Lower is better: hard problems, missing facts, attribution doubts, invented words, then copying."""
        return (len(self.problems), len(self.missing), self.attribution, self.novel, self.copy)


@dataclass
class StrategyResult:
    """The chosen candidate and every generation made on the way."""

    best: Candidate
    generations: list[Generation]


class StreamRestorer:
    """Streams the model's text with tokens already replaced by their facts (holds back a half token)."""

    def __init__(self, sink: TokenSink | None, placeholders: Placeholders | None) -> None:
        self.sink, self.placeholders, self.pending = sink, placeholders, ""

    def __call__(self, chunk: str) -> None:
        if self.sink is None:
            return
        if self.placeholders is None:
            self.sink(chunk)
            return
        self.pending += chunk
        cut = self.pending.rfind("[")
        if cut != -1 and "]" not in self.pending[cut:] and len(self.pending) - cut < 14:
            ready, self.pending = self.pending[:cut], self.pending[cut:]
        else:
            ready, self.pending = self.pending, ""
        if ready:
            self.sink(self.placeholders.restore(ready))

    def flush(self) -> None:
        """Emit whatever is held back."""
        if self.sink and self.pending:
            self.sink(self.placeholders.restore(self.pending) if self.placeholders else self.pending)
        self.pending = ""


@lru_cache(maxsize=1)
def _examples() -> list[dict[str, str]]:
    with open(PROMPTS_DIR / "rewrite_examples.toml", "rb") as handle:
        return list(tomllib.load(handle)["example"])


def small_messages(persona: Persona, kind_word: str, draft_tokens: str) -> list[BaseMessage]:
    """Fixed system prompt and examples first (a cached prefix), then the draft as data."""
    user = load_prompt("rewrite_local_user")
    messages: list[BaseMessage] = [SystemMessage(load_prompt("rewrite_local_system").fill())]
    for example in _examples():
        messages.append(HumanMessage(user.fill(audience=example["audience"], cares=example["cares"],
                                               kind=example["kind"], draft=data_block("draft", example["draft"]))))
        messages.append(AIMessage(example["rewrite"]))
    messages.append(HumanMessage(user.fill(audience=persona.label, cares=persona.cares_about, kind=kind_word,
                                           draft=data_block("draft", draft_tokens))))
    return messages


def _small_problems(text: str, unknown: list[str], overused: list[str]) -> list[str]:
    problems = [f"unknown token {t}" for t in unknown] + [f"token {t} used too often" for t in overused]
    if len(text.split()) > MAX_WORDS:
        problems.append("too long")
    if re.search(r"^\s*(?:[-*•]|\d+\.)\s", text, re.MULTILINE):
        problems.append("bullets")
    if not text.strip():
        problems.append("empty")
    if re.search(r"\d", TOKEN_RE.sub("", text)):
        problems.append("wrote a figure of its own")  # every draft figure is a token: any other digit is invented
    return problems


def whole_sentences(text: str) -> str:
    """A text cut off by the token limit, ended at its last complete sentence."""
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text)]
    return text[: ends[-1]] if ends else text


def judge_small(text: str, generation: Generation, draft_tokens: str, placeholders: Placeholders) -> Candidate:
    """What code finds in one small-model answer."""
    missing, unknown, overused = token_problems(text, placeholders)
    candidate = Candidate(text=text, generation=generation, missing=missing,
                          problems=_small_problems(text, unknown, overused))
    candidate.attribution = len(attribution_flags(draft_tokens, text, placeholders)) + len(
        unsupported_claims(draft_tokens, text))
    candidate.copy = copy_ratio(draft_tokens, text)
    candidate.novel = len(novel_words(draft_tokens, text))
    if candidate.copy > 0.6:
        candidate.problems.append("copied the draft")
    return candidate


def rewrite_small(handle: ChatModelHandle, persona: Persona, kind_word: str, placeholders: Placeholders,
                  on_token: TokenSink | None, on_progress: ProgressSink | None) -> StrategyResult:
    """Up to three samples: fresh, a repair turn naming the missing tokens, fresh again; code keeps the best."""
    base = small_messages(persona, kind_word, placeholders.text)
    candidates: list[Candidate] = []
    messages = base
    started = time.perf_counter()
    for attempt in range(SMALL_ATTEMPTS):
        if attempt and time.perf_counter() - started > SMALL_TIME_BUDGET_S:
            break  # the user is waiting: keep the best so far; code repairs what it lacks
        options = GenerationOptions(max_tokens=260, temperature=0.3, top_p=0.9, seed=1000 + attempt,
                                    local_extra=SMALL_SAMPLING)
        if attempt and on_progress:
            on_progress(f"attempt {attempt + 1}")
        stream = StreamRestorer(on_token, placeholders)
        generation = generate(handle, messages, options, on_token=stream)
        stream.flush()
        text = whole_sentences(generation.text) if generation.finish_reason == "length" else generation.text
        candidate = judge_small(text.strip(), generation, placeholders.text, placeholders)
        candidates.append(candidate)
        if candidate.rank[:3] == (0, 0, 0):
            break
        messages = _repair_messages(base, candidate, placeholders) if attempt == 0 and candidate.missing else base
    best = min(candidates, key=lambda c: c.rank)
    return StrategyResult(best=best, generations=[c.generation for c in candidates])


def _repair_messages(base: list[BaseMessage], candidate: Candidate, placeholders: Placeholders) -> list[BaseMessage]:
    repair = load_prompt("rewrite_local_repair").fill(missing=", ".join(candidate.missing),
                                                      tokens=", ".join(placeholders.tokens))
    return [*base, AIMessage(candidate.text), HumanMessage(repair)]


def strong_messages(persona: Persona, kind_word: str, draft: str, supplied: list[str]) -> list[BaseMessage]:
    """A plain, well-written prompt for capable models; the draft only as data."""
    figures = data_block("figures", "\n".join(supplied) if supplied else "(none)")
    user = load_prompt("rewrite_user").fill(audience=persona.label, cares=persona.cares_about, kind=kind_word,
                                            figures=figures, draft=data_block("draft", draft))
    return [SystemMessage(load_prompt("rewrite_system").fill()), HumanMessage(user)]


def rewrite_strong(handle: ChatModelHandle, persona: Persona, kind_word: str, draft: str, facts: list[str],
                   supplied: list[str], on_token: TokenSink | None, on_progress: ProgressSink | None) -> StrategyResult:
    """A plain prompt, then up to two repair turns naming the exact facts that went missing."""
    base = strong_messages(persona, kind_word, draft, supplied)
    messages, candidates = base, []
    for attempt in range(1 + STRONG_REPAIRS):
        if attempt and on_progress:
            on_progress(f"attempt {attempt + 1}")
        options = GenerationOptions(max_tokens=700, temperature=0.3, top_p=0.95, seed=1000 + attempt)
        generation = generate(handle, messages, options, on_token=StreamRestorer(on_token, None))
        text = generation.text.strip()
        missing = [fact for fact in facts if fact not in text]
        candidate = Candidate(text=text, generation=generation, missing=missing, copy=copy_ratio(draft, text),
                              problems=[] if text else ["empty"])
        candidates.append(candidate)
        if not missing and text:
            break
        problem = "left out some facts" if text else "was empty"
        repair = load_prompt("rewrite_repair").fill(problem=problem, missing="; ".join(f'"{m}"' for m in missing))
        messages = [*base, AIMessage(text or "(empty)"), HumanMessage(repair)]
    best = min(candidates, key=lambda c: c.rank)
    return StrategyResult(best=best, generations=[c.generation for c in candidates])


def warm_up(handle: ChatModelHandle) -> None:
    """Process the fixed prefix once (system prompt and examples) so the first real rewrite reuses its cache."""
    if not handle.profile.small:
        return
    from coach.rewrite_models import AUDIENCES

    messages = small_messages(AUDIENCES["cfo"], "email", "Hello.")
    generate(handle, messages, GenerationOptions(max_tokens=1, temperature=0.0, local_extra=SMALL_SAMPLING))

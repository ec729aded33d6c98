"""How each kind of model is asked to rewrite, and how its answers are checked and chosen.

The embedded 1.5B model copies a draft it is shown plainly and invents when pushed to write freely, so it gets
the small-model strategy: a cleaned draft whose facts are typed tokens, rewritten sentence by sentence after one
worked example in a fixed (cached) prefix, with DRY sampling against copying; code checks each sentence
against its own source and asks again only for the ones that failed (``rewrite_lines``). Strong backends get a
plain prompt with the real draft and a bounded repair turn naming the exact strings they dropped. Every
candidate is judged by code, never by a model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from coach.models import ChatModelHandle, Generation, GenerationOptions, generate
from coach.prompts import data_block, load_prompt
from coach.rewrite_lines import (
    COPIED,
    Line,
    LineAnswer,
    NumberStripper,
    assemble,
    judge_line,
    line_messages,
    lost_words,
    parse_numbered,
    settle,
    split_lines,
)
from coach.rewrite_models import Persona
from coach.tokens import count_tokens
from coach.verify import TOKEN_RE, Placeholders, content_stems, copy_ratio, token_problems

SMALL_ATTEMPTS = 3
FIRST_BATCH_TOKENS = 50  # the first request's sentences: short, so the first words stream soon
SMALL_TIME_BUDGET_S = 19.0  # later rounds are sized to end by then (checks and scores take the rest of 20 s);
# sentences still failing stay as the draft said them
LONG_DRAFT_WORDS = 200  # a draft longer than this (a 150-word status report must take 20 s at most) may take
REVISION_SHARE = 0.35  # ... the first round's time and this share of it again,
MAX_REVISION_S = 10.0  # ... but no more than this again
SLID_COVERAGE = 0.5  # an answer that slid to a neighbouring sentence must hold this share of its content words
MIN_ROUND_TOKENS = 24  # a later round that could write less than this in the time left is not started
STRONG_REPAIRS = 2
# DRY penalises re-emitting long runs of the prompt (copying) without breaking the tokens: "[" and "]"
# must be sequence breakers or the model is pushed to mangle [TIME1] on its second use. Multiplier 0.8 rather than
# the 0.5 of the first experiment: median copy 0.32 -> 0.24 on the dev drafts, no more wrong statements read.
SMALL_SAMPLING = {
    "top_k": 40, "min_p": 0.05, "dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": 3,
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
    sentences: int = 0  # sentence-by-sentence strategy: how many sentences the draft had
    kept: list[str] = field(default_factory=list)  # ... and those kept as the draft wrote them (plain words)


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


def rewrite_small(handle: ChatModelHandle, persona: Persona, kind_word: str, placeholders: Placeholders,
                  on_token: TokenSink | None, on_progress: ProgressSink | None,
                  started: float | None = None) -> StrategyResult:
    """Sentence by sentence (``rewrite_lines``): all sentences once, then only those that failed, up to three
    rounds within the time budget; a sentence that never passes stays as the draft wrote it, in plain words."""
    lines = split_lines(placeholders.text, placeholders.statements, placeholders.tokens)
    known = placeholders.tokens
    stems = [content_stems(line.original + " " + line.plain) for line in lines]
    others = [frozenset().union(*(stem for j, stem in enumerate(stems) if j != i)) for i in range(len(lines))]
    owner = {token: i for i, line in reversed(list(enumerate(lines))) for token in line.tokens}  # first holder
    best: list[LineAnswer | None] = [None] * len(lines)
    generations: list[Generation] = []
    todo = list(range(len(lines)))
    # The budget counts from the request (``started``): a first search of the documents can take a second.
    started, deadline = time.perf_counter() if started is None else started, SMALL_TIME_BUDGET_S
    for attempt in range(SMALL_ATTEMPTS):
        cap = None
        if attempt == 1 and len(placeholders.text.split()) > LONG_DRAFT_WORDS:
            first = time.perf_counter() - started
            deadline = max(SMALL_TIME_BUDGET_S, first + min(REVISION_SHARE * first, MAX_REVISION_S))
        if attempt:
            todo, cap = revision_batch(lines, todo, best, deadline - (time.perf_counter() - started), generations)
            if not todo or (cap is not None and cap < MIN_ROUND_TOKENS):
                break  # the user is waiting: what has not passed stays as the draft said it
        if attempt and on_progress:
            on_progress(f"revising {len(todo)} sentence{'s' if len(todo) != 1 else ''}")
        # The first round streams: its first request is a few sentences only, so the first words come after a
        # short prompt; the rest of the draft follows in a second request that reuses the cached prefix.
        for number, batch in enumerate(first_batches(lines, todo) if attempt == 0 else [todo]):
            if number and on_token:
                on_token(" ")
            keep = [lost_words(lines[i], best[i]) for i in batch] if attempt else None
            generations.append(_line_round(handle, persona, kind_word, placeholders, lines, batch, attempt,
                                           on_token if attempt == 0 else None, cap, keep))
            answers = parse_numbered(generations[-1].text, len(batch))
            cut = generations[-1].finish_reason == "length"
            if cut and answers:
                del answers[max(answers)]  # cut off mid-sentence: never judge half a sentence
            # Fewer answers than sentences: the model skipped or merged one, and the numbers after it may have
            # slid, so an answer must also say most of what its sentence says ("We now watch for expiry." shares
            # one word with "Root cause: the certificate expired." and would pass).
            skipped = not cut and len(answers) < len(batch)
            astray: dict[int, str] = {}
            for position, answer in answers.items():
                # An answer is also judged against the sentence whose figures it holds.
                for index in _targets(batch[position - 1], answer, owner):
                    judged = judge_line(lines[index], answer, known, others[index])
                    numbered_for = index == batch[position - 1]
                    if numbered_for and skipped and judged.ok and not _covers(lines[index], answer) \
                            and not _fits_best(lines, batch[position - 1:], answer):
                        judged.problems.append("says too little of its sentence after a skipped one")
                    if numbered_for and not judged.ok:
                        astray[position] = answer
                    _keep_better(best, index, judged)
            _slid(lines, best, batch, astray, known, others)
        todo = [i for i in todo if not _done(lines[i], best[i])]
        if not todo:
            break
    chosen, kept = settle(lines, best)
    text = assemble(lines, chosen)
    missing, unknown, _ = token_problems(text, placeholders)
    candidate = Candidate(text=text, generation=generations[0], missing=missing,
                          problems=[f"unknown token {t}" for t in unknown], copy=copy_ratio(placeholders.text, text))
    return StrategyResult(best=candidate, generations=generations, sentences=len(lines), kept=kept)


def _line_round(handle: ChatModelHandle, persona: Persona, kind_word: str, placeholders: Placeholders,
                lines: list[Line], batch: list[int], attempt: int, on_token: TokenSink | None,
                cap: int | None = None, keep: list[list[str]] | None = None) -> Generation:
    """One request for the sentences in ``batch``; later rounds (only failed or near-copy sentences) get a little
    more temperature for a different answer. (Stronger DRY there cut copying further but brought back wrong
    statements.)"""
    texts = [lines[i].shown for i in batch]
    budget = min(900, 40 + 2 * sum(count_tokens(t) for t in texts), cap or 900)
    # The model sometimes goes on past the last sentence (splitting a list, or adding a line of its own); answers
    # numbered beyond the batch are never used, so it is stopped there.
    after = len(texts) + 1
    options = GenerationOptions(max_tokens=budget, temperature=0.3 if attempt == 0 else 0.6, top_p=0.9,
                                seed=1000 + attempt, local_extra=SMALL_SAMPLING, stop=[f"\n{after}.", f"\n{after})"])
    restorer = StreamRestorer(on_token, placeholders)
    stream = NumberStripper(restorer)
    generation = generate(handle, line_messages(persona, kind_word, texts, retry=attempt > 0, keep=keep), options,
                          on_token=stream)
    stream.flush()
    restorer.flush()
    return generation


def _speed(generations: list[Generation]) -> float | None:
    """Tokens written per second by this rewrite's requests; None when too few to tell."""
    written = sum(g.completion_tokens or 0 for g in generations)
    writing_s = sum(g.total_ms - (g.first_token_ms or 0) for g in generations) / 1000
    return written / writing_s if written >= 10 and writing_s > 0 else None


def _prompt_seconds(prompt_tokens: int, speed: float, generations: list[Generation]) -> float:
    """How long a later request takes to its first token: its prompt tokens at three times the generation
    speed (about what llama.cpp does on a CPU), but no less than this rewrite's requests took on average (on a
    2-core CPU a revision request waited 3.5 s for its first token where the tokens alone said 1.5 s)."""
    waited = [g.first_token_ms / 1000 for g in generations if g.first_token_ms]
    return max(prompt_tokens / (3 * speed), sum(waited) / len(waited) if waited else 0.0)


def _tokens_that_fit(seconds_left: float, generations: list[Generation], prompt_tokens: int) -> int | None:
    """How many tokens a later round can write and still end in ``seconds_left``, at the speed this rewrite's
    requests ran; None when the speed is unknown."""
    speed = _speed(generations)
    if speed is None:
        return None
    return int((seconds_left - _prompt_seconds(prompt_tokens, speed, generations)) * speed * 0.9)


def revision_batch(lines: list[Line], todo: list[int], best: list[LineAnswer | None], seconds_left: float,
                   generations: list[Generation]) -> tuple[list[int], int | None]:
    """The sentences a later round asks for again, and its token cap: as many as can be rewritten in the time
    left, failed sentences first (they would stay as the draft said them), then near-copies, longer ones first
    within each; a round cut off by its token cap would lose its last sentence anyway."""
    speed = _speed(generations)
    if speed is None:
        return todo, None

    def passed(index: int) -> bool:
        answer = best[index]
        return answer is not None and answer.ok

    sizes = {index: count_tokens(lines[index].plain) for index in todo}
    chosen: list[int] = []
    prompt, written = 100, 0  # the retry request's own words and its KEEP block: about 100 tokens
    for index in sorted(todo, key=lambda i: (passed(i), -sizes[i])):
        size = sizes[index]
        more_prompt, more_written = prompt + size, written + size + 4  # an answer about as long, and its number
        if _prompt_seconds(more_prompt, speed, generations) + more_written / speed <= seconds_left:
            chosen.append(index)
            prompt, written = more_prompt, more_written
    return sorted(chosen), _tokens_that_fit(seconds_left, generations, prompt)


def first_batches(lines: list[Line], todo: list[int]) -> list[list[int]]:
    """The first round's requests: the opening sentences up to ``FIRST_BATCH_TOKENS``, then the rest (one
    request when the rest would be short)."""
    sizes = [count_tokens(lines[index].plain) for index in todo]
    cut = next((n for n, total in enumerate(accumulate(sizes), 1) if total >= FIRST_BATCH_TOKENS), len(todo))
    if sum(sizes[cut:]) < FIRST_BATCH_TOKENS:  # the rest would be short (or empty): one request
        return [todo]
    return [todo[:cut], todo[cut:]]


def _done(line: Line, answer: LineAnswer | None) -> bool:
    """Safe, and not a near-copy of a sentence long enough to say differently."""
    return answer is not None and answer.ok and (answer.copy < COPIED or len(line.plain.split()) < 6)


def _slid(lines: list[Line], best: list[LineAnswer | None], batch: list[int], astray: dict[int, str],
          known: dict[str, str], others: list[frozenset[str]]) -> None:
    """The model skipped, split or merged a sentence and its numbers slid: an answer that failed for the
    sentence it was numbered for goes to another sentence of the request that has no passing answer yet, if it
    passes there and says most of what that sentence says (the nearest such sentence; one only). Passing alone
    is too weak here: "We have a backup server for each service." passes for "All servers will be read-only
    during the switch to the backup." but says something else."""
    for position, answer in astray.items():
        for near in sorted(range(len(batch)), key=lambda n: abs(n - (position - 1))):
            index, held = batch[near], best[batch[near]]
            if near == position - 1 or (held is not None and held.ok):
                continue
            judged = judge_line(lines[index], answer, known, others[index])
            if judged.ok and _covers(lines[index], answer):
                best[index] = judged
                break


def _covers(line: Line, answer: str) -> bool:
    """The answer holds at least half of the content words the model was shown (or words starting like them)."""
    own = content_stems(line.plain)
    return bool(own) and _shared(line, answer) >= SLID_COVERAGE * len(own)


def _shared(line: Line, answer: str) -> int:
    """How many of the line's content words (or words starting like them) the answer holds."""
    said = {stem[:4] for stem in content_stems(answer)}
    return sum(stem[:4] in said for stem in content_stems(line.plain))


def _fits_best(lines: list[Line], rest: list[int], answer: str) -> bool:
    """After a skipped sentence an answer can only have slid up from a later one: it stays with its own
    sentence (``rest[0]``) if it shares at least two words with it and more than with any later sentence of
    the request ("This change doesn't require user interaction." for "This is a transparent change that doesn't
    require users to take any action.")."""
    own = _shared(lines[rest[0]], answer)
    return own >= 2 and all(own > _shared(lines[index], answer) for index in rest[1:])


def _keep_better(best: list[LineAnswer | None], index: int, judged: LineAnswer) -> None:
    current = best[index]
    if current is None or judged.rank < current.rank:
        best[index] = judged


def _targets(numbered_as: int, answer: str, owner: dict[str, int]) -> list[int]:
    """The sentence an answer was numbered for, and the one holding its first figure if that differs."""
    first = TOKEN_RE.search(answer)
    held = owner.get(first.group(0)) if first else None
    return [numbered_as] if held is None or held == numbered_as else [numbered_as, held]


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
    """Process the fixed prefix once (system prompt and example) so the first real rewrite reuses its cache."""
    if not handle.profile.small:
        return
    from coach.rewrite_models import AUDIENCES

    messages = line_messages(AUDIENCES["cfo"], "email", ["Hello."])
    generate(handle, messages, GenerationOptions(max_tokens=1, temperature=0.0, local_extra=SMALL_SAMPLING))

"""What a chat answer may show while it streams: never a copied run of the system message, never a citation
number that names no passage of this turn. Split from ``coach.chat``, which re-exports these names."""

from __future__ import annotations

import re
from collections.abc import Callable

TokenCallback = Callable[[str], None]

CITATION_RE = re.compile(r"\[(?:passage\s*)?(\d+(?:\s*,\s*(?:passage\s*)?\d+)*)\]", re.IGNORECASE)


def strip_citations(text: str) -> str:
    """Remove every ``[n]`` marker."""
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", CITATION_RE.sub("", text))


LEAK_WINDOW = 10  # words: a run this long copied from the system message is a leak
WORD_RE = re.compile(r"[a-z0-9']+", re.IGNORECASE)


def word_runs(text: str, window: int) -> set[tuple[str, ...]]:
    """Every run of ``window`` consecutive words of ``text`` (lower-cased, punctuation ignored)."""
    words = WORD_RE.findall(text.lower())
    return {tuple(words[i : i + window]) for i in range(len(words) - window + 1)}


def leaks_instructions(answer: str, system: str, window: int = LEAK_WINDOW) -> bool:
    """True when the answer repeats any run of ``window`` consecutive words of the system message."""
    return not word_runs(system, window).isdisjoint(word_runs(answer, window))


class StreamGuard:
    """Wraps ``on_token`` so a leak of the system message or an unknown ``[n]`` never reaches the screen.

    The last ``LEAK_WINDOW`` words are held back: whatever is released has been checked together with
    the words that follow it, so no part of a copied run of instructions is shown before the leak is seen.
    Once a leak is seen nothing more is forwarded; the service then replaces the answer.
    """

    def __init__(self, on_token: TokenCallback, system: str, passage_count: int | None) -> None:
        self.on_token = on_token
        self.runs = word_runs(system, LEAK_WINDOW)
        self.passage_count = passage_count  # None: leave [n] alone (role-play answers cite nothing)
        self.raw = ""
        self.released = 0  # characters of ``raw`` already forwarded
        self.leaked = False

    def __call__(self, piece: str) -> None:
        if self.leaked:
            return
        self.raw += piece
        if self._leaks(self.raw):
            self.leaked = True
            return
        self._release(self._safe_end())

    def finish(self, withheld: bool) -> None:
        """Release the held-back tail, unless the answer was withheld."""
        if not (withheld or self.leaked or self._leaks(self.raw)):
            self._release(len(self.raw))

    def _leaks(self, text: str) -> bool:
        for candidate in (text, strip_citations(text)):  # a dropped [n] must not hide a copied run
            if not self.runs.isdisjoint(word_runs(candidate, LEAK_WINDOW)):
                return True
        return False

    def _safe_end(self) -> int:
        """Where the held-back tail starts: before the last words, an unclosed '[' and trailing spaces."""
        starts = [m.start() for m in WORD_RE.finditer(self.raw)]
        end = starts[-LEAK_WINDOW] if len(starts) >= LEAK_WINDOW else 0
        bracket = self.raw.rfind("[", 0, end)
        if bracket >= 0 and end - bracket <= 40 and "]" not in self.raw[bracket:end]:  # "[passage 12, 13]"
            end = bracket
        while end > self.released and self.raw[end - 1].isspace():
            end -= 1  # a space goes out with what follows it, so " [7]" can be dropped whole
        return end

    def _release(self, end: int) -> None:
        if end <= self.released:
            return
        piece = self.raw[self.released : end]
        self.released = end
        if self.passage_count is not None:
            piece = drop_unknown_citations(piece, self.passage_count)
        if piece:
            self.on_token(piece)


def drop_unknown_citations(text: str, passage_count: int) -> str:
    """``text`` without citation numbers outside 1..passage_count (with the space before a dropped marker)."""

    def replace(match: re.Match[str]) -> str:
        numbers = [int(x) for x in re.findall(r"\d+", match.group(2))]
        valid = [n for n in numbers if 1 <= n <= passage_count]
        return match.group(1) + "".join(f"[{n}]" for n in valid) if valid else ""

    return re.sub(r"([ \t]*)" + CITATION_RE.pattern, replace, text, flags=re.IGNORECASE)


def guarded_stream(on_token: TokenCallback | None, system: str, passage_count: int | None) -> StreamGuard | None:
    """A ``StreamGuard`` around ``on_token``, or None when nothing is streamed."""
    return StreamGuard(on_token, system, passage_count) if on_token else None

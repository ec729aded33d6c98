"""Showing untrusted text (drafts, model output, corpus passages) through Markdown without it becoming markup.

Streamlit renders Markdown (links, images, emoji short codes, ``$`` maths, ``:color[...]`` directives) but
never HTML unless asked, and we never ask. Every ASCII punctuation character of untrusted text is
backslash-escaped, which CommonMark allows for all of them: no link, image (so no external image ever
loads), autolink, heading, list, directive or maths can form, and the characters still display as typed.
Line breaks become hard breaks and leading spaces non-breaking spaces, so the text keeps its shape without
turning into a code block.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Iterable
from typing import Literal

_PUNCTUATION = frozenset(string.punctuation)
_LEADING_SPACES = re.compile(r"^[ \t]+", re.MULTILINE)
_TOKENS = re.compile(r"\s+|[^\s]+")
_LINE_BREAKS = re.compile(r"(\s*\n\s*)")

Op = Literal["same", "removed", "added"]


def escape_markdown(text: str) -> str:
    """``text`` with every Markdown-significant character backslash-escaped."""
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in text.replace("\r\n", "\n"))


def as_markdown(text: str) -> str:
    """Untrusted multi-line text as Markdown that displays exactly that text."""
    escaped = escape_markdown(text.strip("\n"))
    escaped = _LEADING_SPACES.sub(lambda m: "\u00a0" * len(m.group().expandtabs(4)), escaped)
    return "  \n".join(escaped.split("\n"))


def one_line(text: str, limit: int = 200) -> str:
    """Untrusted text squeezed onto one escaped line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return escape_markdown(flat)


def word_diff(before: str, after: str) -> list[tuple[Op, str]]:
    """The two texts as runs of words that stayed, were removed, or were added (whitespace kept)."""
    old, new = _TOKENS.findall(before), _TOKENS.findall(after)
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    runs: list[tuple[Op, str]] = []
    pending: tuple[str, str] | None = None  # a change still growing: (removed, added)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        gap = "".join(old[i1:i2])
        if tag == "equal" and not (pending and not gap.strip() and "\n" not in gap):
            runs.extend(_change_runs(pending))
            pending = None
            runs.append(("same", gap))
            continue
        # A change, or a space between two changes: one highlighted phrase reads better than many words.
        removed, added = pending or ("", "")
        pending = (removed + gap, added + "".join(new[j1:j2]))
    runs.extend(_change_runs(pending))
    return runs


def _change_runs(change: tuple[str, str] | None) -> list[tuple[Op, str]]:
    """A merged change as a removed and an added run (an empty side is left out)."""
    if change is None:
        return []
    removed, added = change
    runs: list[tuple[Op, str]] = [("removed", removed), ("added", added)]
    return [(op, text) for op, text in runs if text]


def highlighted(runs: Iterable[tuple[Op, str]], show: Op) -> str:
    """Markdown of one side of a diff: unchanged text plain, ``show`` runs highlighted, the other side left out."""
    colour = "red" if show == "removed" else "green"
    parts: list[str] = []
    for op, text in runs:
        if op in ("same", show):
            parts.extend(_run_markdown(text, colour if op == show else None))
    return "".join(parts).strip()


def _run_markdown(text: str, colour: str | None) -> list[str]:
    """One run as Markdown pieces: line breaks kept, words escaped, highlighted line by line when coloured."""
    pieces: list[str] = []
    for i, piece in enumerate(_LINE_BREAKS.split(text)):
        if i % 2:  # a separator: whitespace holding one or more line breaks
            pieces.append("\n\n" if piece.count("\n") >= 2 else "  \n")
        elif piece.strip():
            pieces.append(_words(piece, colour))
        elif piece:
            pieces.append(" ")
    return pieces


def _words(piece: str, colour: str | None) -> str:
    """Words on one line, escaped, wrapped in a Streamlit background directive when coloured."""
    body = escape_markdown(" ".join(piece.split()))
    if colour:  # a directive cannot span lines, and this piece has none
        body = f":{colour}-background[{body}]"
    lead = " " if piece[:1].isspace() else ""
    tail = " " if piece[-1:].isspace() else ""
    return lead + body + tail

"""Clean a draft before a small model sees it: it copies whatever structure it is shown.

Code drops links, greetings, sign-offs and signatures and headings without a figure; bullets become
sentences; a status page's "[Update - <time>]" blocks become dated sentences in chronological order.
Nothing here changes a fact: every figure left in the cleaned text is exactly as in the draft.
"""

from __future__ import annotations

import re

_URL = re.compile(r"\(?(?:https?://|www\.)\S+\)?")
_LINK_LINE = re.compile(r"^\s*(?:more\s+details?|details|see|read more|source|link)s?\b[^:]*:?\s*$", re.IGNORECASE)
_GREETING = re.compile(r"^\s*(?:hello|hi|hey|dear|good (?:morning|afternoon|evening)|greetings)\b[^.!?]{0,40}[,!:]?\s*$",
                       re.IGNORECASE)
_SIGN_OFF = re.compile(r"^\s*(?:thanks?(?: you)?(?: for [^.]*)?|best(?: regards)?|kind regards|regards|cheers|"
                       r"sincerely|many thanks)\b[^.!?]{0,60}[.!,]?\s*$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•·–]|\d+[.)])\s+")
_BLOCK_LABEL = re.compile(r"^\s*\[(?P<label>[^\]]{1,80})\]\s*$")
_UPDATE_LABEL = re.compile(r"^(?:update|edit)\s*[-–:]?\s*(?P<when>.+)$", re.IGNORECASE)


_ARROW = re.compile(r"([^\s:]+)\s*(?:→|->|=>|⇒)\s*([^\s,;]+)")


def _arrows(line: str) -> str:
    """ "user: gerrit2 → gerrit" says a change; a small model reads the arrow either way, so say it in words."""
    return _ARROW.sub(r"from \1 to \2", line)


def _tidy_after_links(line: str) -> str:
    """Remove what a deleted link leaves behind: empty brackets, a dangling "as per" or "on"."""
    line = re.sub(r"\(\s*\)|\[\s*\]", "", line)
    line = re.sub(r"\(\s*([^()]*?)\s*\)", r"(\1)", line)
    return re.sub(r"[\s,]+(?:as per|on|in|at|see|via|by)\s*([.:]?)\s*$", r"\1", line)


def _is_heading(line: str) -> bool:
    words = line.split()
    return (0 < len(words) <= 7 and not re.search(r"\d", line) and not re.search(r"[.!?:;,]$", line.strip())) or (
        len(words) <= 10 and line.strip().endswith(":") is False and line.strip().istitle() and not re.search(r"\d", line))


def _sentence(text: str) -> str:
    text = text.strip()
    if text and text[-1] not in ".!?":
        text += "."
    return text  # no capitalising: the first word may be a fact ("get.jenkins.io")


def _strip_signature(lines: list[str]) -> list[str]:
    """Cut everything from a signature delimiter or a sign-off line on."""
    for i, line in enumerate(lines):
        if line.strip() in ("--", "-- ", "—") or _SIGN_OFF.match(line):
            return lines[:i]
    return lines


def _paragraphs(lines: list[str]) -> list[str]:
    """Join lines into paragraphs; bullets become sentences of the paragraph they belong to, and a short list
    after a lead-in ("These services may be slow: A, B and C.") becomes one sentence with it."""
    paragraphs: list[str] = []
    current: list[str] = []
    items: list[str] = []

    def end_list() -> None:
        if items and current and current[-1].endswith(":"):
            if _short_list(current[-1], items):
                current[-1] = _sentence(f"{current[-1]} {_series(items)}")
                items.clear()
            else:  # the lead-in stays a paragraph of its own, not glued to the first item
                paragraphs.append(" ".join(current))
                current.clear()
        current.extend(_sentence(item) for item in items)
        items.clear()

    def end_paragraph() -> None:
        end_list()
        if current:
            paragraphs.append(" ".join(current))
            current.clear()

    for raw in lines:
        line = _arrows(_tidy_after_links(_URL.sub("", raw))).rstrip()
        if not line.strip():
            if not (current and current[-1].endswith(":") and not items):  # a list may follow its lead-in
                end_paragraph()
            continue
        if _LINK_LINE.match(line) or _GREETING.match(line):
            continue
        if _BULLET.match(line):
            items.append(_BULLET.sub("", line).strip())
            continue
        end_list()
        if _is_heading(line):
            end_paragraph()
        else:
            current.append(_sentence(line) if not line.strip().endswith(":") else line.strip())
    end_paragraph()
    return [re.sub(r"\s+", " ", p).replace(" .", ".").strip() for p in paragraphs if p.strip()]


LIST_ITEM_WORDS, LIST_SENTENCE_WORDS = 8, 40


def _short_list(lead: str, items: list[str]) -> bool:
    """Two or more short items that read well as one sentence with their lead-in."""
    words = [len(item.split()) for item in items]
    return len(items) >= 2 and max(words) <= LIST_ITEM_WORDS and len(lead.split()) + sum(words) <= LIST_SENTENCE_WORDS


def _series(items: list[str]) -> str:
    """``A, B and C`` (each item without its own closing punctuation)."""
    parts = [item.rstrip(".;,") for item in items]
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def _status_blocks(lines: list[str]) -> list[str] | None:
    """A status page's labelled blocks, oldest first, each starting with its time; None if not that shape."""
    blocks: list[tuple[str, list[str]]] = []
    for line in lines:
        labelled = _BLOCK_LABEL.match(line)
        if labelled:
            blocks.append((labelled.group("label"), []))
        elif blocks:
            blocks[-1][1].append(line)
        elif line.strip():
            blocks.append(("", [line]))
    if sum(1 for label, _ in blocks if label) < 2:
        return None
    ordered = _chronological(blocks)
    out: list[str] = []
    for label, body in ordered:
        text = " ".join(_paragraphs(body))
        update = _UPDATE_LABEL.match(label)
        if update and text:
            text = f"At {update.group('when').strip()}: {text}"
        if text:
            out.append(text)
    return out


def _chronological(blocks: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """Status pages list the newest first; a reader wants the story in order."""
    head = [b for b in blocks if not b[0]]
    initial = [b for b in blocks if re.match(r"initial", b[0], re.IGNORECASE)]
    final = [b for b in blocks if re.match(r"(final|resolved|closed)", b[0], re.IGNORECASE)]
    updates = [b for b in blocks if b not in head + initial + final]
    return head + initial + list(reversed(updates)) + final


def is_greeting_or_sign_off(line: str) -> bool:
    """"Hi all," or "Thanks, Sam": words around a message, not part of it."""
    return bool(_GREETING.match(line) or _SIGN_OFF.match(line))


def clean_draft(text: str) -> str:
    """The draft without links, greetings, sign-offs, signatures, figure-less headings or bullets."""
    lines = _strip_signature(text.replace("\r\n", "\n").split("\n"))
    paragraphs = _status_blocks(lines) or _paragraphs(lines)
    return "\n\n".join(paragraphs).strip()

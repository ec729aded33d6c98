"""Export sessions as Markdown (to read) or JSON (to re-import), and parse a JSON export.

The JSON export is a versioned envelope around the sessions exactly as stored, so an import gives back
equal sessions. The Markdown export puts every piece of user or model text inside a code fence longer than
any backtick run in it: a draft is shown as written and can never turn into markup of the document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from coach.errors import InputError
from coach.session_models import Session, utc_now

ExportFormat = Literal["md", "json"]
EXPORT_FORMAT_NAME: Final = "coach-sessions"
EXPORT_VERSION: Final = 1


class SessionExport(BaseModel):
    """The JSON export file."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["coach-sessions"] = EXPORT_FORMAT_NAME
    version: Literal[1] = EXPORT_VERSION
    exported_at: datetime
    sessions: list[Session]


def export_json(sessions: Iterable[Session]) -> str:
    """A JSON export of ``sessions`` that ``parse_export`` reads back."""
    envelope = SessionExport(exported_at=utc_now(), sessions=list(sessions))
    return envelope.model_dump_json(indent=2) + "\n"


def parse_export(data: str) -> list[Session]:
    """The sessions of a JSON export; a clear ``InputError`` if it is not one."""
    try:
        raw = json.loads(data)
    except json.JSONDecodeError as exc:
        raise InputError(f"That file is not JSON ({exc.msg} at line {exc.lineno}).",
                         hint="Import a file written by `coach sessions export --format json`.") from None
    if not isinstance(raw, dict) or raw.get("format") != EXPORT_FORMAT_NAME:
        raise InputError("That JSON file is not a coach sessions export.",
                         hint="Import a file written by `coach sessions export --format json`.")
    try:
        return SessionExport.model_validate(raw).sessions
    except ValidationError as exc:
        where = ".".join(str(part) for part in exc.errors()[0]["loc"])
        raise InputError(f"The export is damaged: {exc.errors()[0]['msg']} at {where}.",
                         hint="Export it again, or fix that field.") from None


def export_markdown(sessions: Iterable[Session]) -> str:
    """A readable Markdown document of ``sessions``."""
    return "\n\n---\n\n".join(session_markdown(s) for s in sessions) + "\n"


def session_markdown(session: Session) -> str:
    """One session as Markdown: header, draft, rewrite, feedback, fact lock, scores, messages, notes."""
    parts = [f"# {_one_line(session.title)}", _header(session)]
    if session.draft:
        parts += ["## Draft", fence(session.draft)]
    if session.result:
        parts += _result_sections(session.result)
    if session.messages:
        parts.append("## Conversation")
        for message in session.messages:
            parts += [f"**{message.role}**", fence(message.content)]
            parts += [f"- cited: {_one_line(c.source)}\n{fence(c.text)}" for c in message.citations or []]
    if session.notes:
        parts += ["## Notes", fence(session.notes)]
    return "\n\n".join(parts)


def _header(session: Session) -> str:
    rows = [
        ("Session", session.id),
        ("Type", session.type),
        ("Created", session.created_at.isoformat()),
        ("Updated", session.updated_at.isoformat()),
        ("Audience", session.audience or "-"),
        ("Kind", session.kind or "-"),
        ("Rating", f"{session.rating}/5" if session.rating else "-"),
        ("Principles", ", ".join(session.principles) or "-"),
    ]
    return "\n".join(f"- **{name}:** {_one_line(value)}" for name, value in rows)


def _result_sections(result: dict[str, Any]) -> list[str]:
    parts = ["## Rewrite", fence(str(result.get("rewrite", "")))]
    feedback = result.get("feedback") or []
    if feedback:
        parts.append("## Feedback")
        for item in feedback:
            parts.append(f"### {_one_line(str(item.get('principle') or item.get('principle_id')))}")
            parts.append(fence(json.dumps(item, indent=2, ensure_ascii=False)))
    for key, heading in (("facts", "Fact lock"), ("scores", "Scores")):
        if result.get(key):
            parts += [f"## {heading}", fence(json.dumps(result[key], indent=2, ensure_ascii=False), "json")]
    return parts


def fence(body: str, info: str = "") -> str:
    """``body`` in a code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{body}\n{ticks}"


def _one_line(value: str) -> str:
    # Header values are inline: collapse newlines and escape characters Markdown would act on.
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", " ".join(value.split()))

"""`coach sessions`: list, show, export, import, delete and progress stats of saved coaching sessions.

A thin shell over ``coach.sessions.SessionStore``. Titles and drafts are user text: control characters are
stripped before they reach the terminal, so a pasted escape sequence cannot rewrite the screen.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from coach.config import load_settings
from coach.errors import InputError, StorageError
from coach.session_export import session_markdown
from coach.session_models import Session, SessionQuery, SessionStats
from coach.sessions import SessionStore

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def register(subparsers: Any) -> None:
    """Add the `sessions` sub-command and its actions."""
    parser = subparsers.add_parser("sessions", help="review, export, import and delete saved sessions")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    _register_list(actions)
    show = actions.add_parser("show", help="show one session")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="print the stored session as JSON")
    show.set_defaults(run=run_show)
    _register_export(actions)
    imp = actions.add_parser("import", help="import a JSON export (`-` reads stdin)")
    imp.add_argument("file")
    imp.set_defaults(run=run_import)
    delete = actions.add_parser("delete", help="delete one session (asks first unless --yes)")
    delete.add_argument("id")
    delete.add_argument("--yes", action="store_true", help="delete without asking")
    delete.set_defaults(run=run_delete)
    stats = actions.add_parser("stats", help="progress per week: scores before/after, principles flagged")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(run=run_stats)
    for action in actions.choices.values():
        action.add_argument("--user", help="act on this user's sessions only (default: COACH_USER, else all)")


def _register_list(actions: Any) -> None:
    parser = actions.add_parser("list", help="list sessions, newest first")
    _add_filters(parser)
    parser.add_argument("--limit", type=int, default=50, help="at most this many (default 50; 0 for all)")
    parser.add_argument("--json", action="store_true", help="print summaries as JSON")
    parser.set_defaults(run=run_list)


def _register_export(actions: Any) -> None:
    parser = actions.add_parser("export", help="export sessions as Markdown or JSON")
    parser.add_argument("ids", nargs="*", metavar="ID")
    parser.add_argument("--all", action="store_true", help="export every session matching the filters")
    _add_filters(parser)
    parser.add_argument("--format", choices=("md", "json"), default="md")
    parser.add_argument("--out", type=Path, help="write to this file instead of stdout")
    parser.set_defaults(run=run_export)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--search", help="text to find in the draft, rewrite, messages or notes")
    parser.add_argument("--type", choices=("rewrite", "chat", "roleplay"))
    parser.add_argument("--audience")
    parser.add_argument("--kind")
    parser.add_argument("--principle", help="a principle id")


def _query(args: argparse.Namespace, limit: int | None = None) -> SessionQuery:
    return SessionQuery(search=args.search, type=args.type, audience=args.audience, kind=args.kind,
                        principle=args.principle, limit=limit or None)


def _store(args: argparse.Namespace) -> SessionStore:
    settings = load_settings(user=args.user)
    return SessionStore(settings, user_id=settings.user)


def _clean(text: str) -> str:
    """User text made safe for a terminal line."""
    return _CONTROL.sub(" ", text)


def _summary(session: Session) -> dict[str, Any]:
    return {
        "id": session.id, "created_at": session.created_at.isoformat(), "updated_at": session.updated_at.isoformat(),
        "type": session.type, "audience": session.audience, "kind": session.kind, "title": session.title,
        "rating": session.rating, "principles": session.principles,
    }


def run_list(args: argparse.Namespace) -> int:
    """Print matching sessions, newest first."""
    sessions = _store(args).list(_query(args, args.limit))
    if args.json:
        print(json.dumps([_summary(s) for s in sessions], ensure_ascii=False, indent=2))
        return 0
    if not sessions:
        print("No sessions.", file=sys.stderr)
    for s in sessions:
        stars = f"{s.rating}/5" if s.rating else "-"
        print(f"{s.id}  {s.created_at:%Y-%m-%d %H:%M}  {s.type:<8}  {stars:>3}  {_clean(s.title)}")
    return 0


def _get(store: SessionStore, session_id: str) -> Session:
    session = store.get(session_id)
    if session is None:
        raise StorageError(f"No session {session_id}.", hint="`coach sessions list` shows the ids.")
    return session


def run_show(args: argparse.Namespace) -> int:
    """Print one session as Markdown or JSON."""
    session = _get(_store(args), args.id)
    print(session.model_dump_json(indent=2) if args.json else _clean_block(session_markdown(session)))
    return 0


def _clean_block(text: str) -> str:
    return "\n".join(_clean(line) for line in text.split("\n"))


def run_export(args: argparse.Namespace) -> int:
    """Export the given sessions (or --all matching the filters) to stdout or --out."""
    if bool(args.ids) == bool(args.all):
        raise InputError("Name the sessions to export, or pass --all.", hint="e.g. `coach sessions export --all`.")
    store = _store(args)
    data = store.export(args.ids if args.ids else _query(args), args.format)
    if args.out is None:
        sys.stdout.write(data)
        return 0
    try:
        args.out.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot write {args.out}: {exc.strerror}.", hint="Choose another --out path.") from None
    print(f"exported to {args.out}", file=sys.stderr)
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Import a JSON export."""
    try:
        data = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read {args.file}: {exc}.",
                         hint="Pass a file written by `coach sessions export --format json`.") from None
    ids = _store(args).import_json(data)
    print(f"imported {len(ids)} session{'s' if len(ids) != 1 else ''}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    """Delete one session after confirmation (a TTY prompt, or --yes)."""
    store = _store(args)
    session = _get(store, args.id)
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError("Refusing to delete without confirmation.", hint="Add --yes to delete for sure.")
        answer = input(f"Delete session {session.id} ({_clean(session.title)})? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Kept.", file=sys.stderr)
            return 1
    store.delete(session.id)
    print(f"deleted {session.id}", file=sys.stderr)
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print progress per week."""
    stats = _store(args).stats()
    print(stats.model_dump_json(indent=2) if args.json else _stats_text(stats))
    return 0


def _stats_text(stats: SessionStats) -> str:
    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [f"{stats.sessions} sessions", "week        sessions  rewrites  grade before->after  jargon before->after"]
    for w in stats.weeks:
        lines.append(f"{w.week_start}  {w.sessions:>8}  {w.rewrites:>8}  {num(w.fk_grade_before):>12} -> "
                     f"{num(w.fk_grade_after):<5}  {num(w.jargon_before):>13} -> {num(w.jargon_after)}")
    flagged = ", ".join(f"{_clean(p.principle)} ({p.sessions})" for p in stats.top_principles) or "-"
    lines.append(f"most flagged principles: {flagged}")
    return "\n".join(lines)

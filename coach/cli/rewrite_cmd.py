"""`coach rewrite`: rewrite a draft for a business audience, verified and explained."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from coach.config import load_settings
from coach.errors import InputError
from coach.rewrite import read_draft_bytes, rewrite_draft
from coach.rewrite_models import AUDIENCES, KINDS, RewriteRequest, RewriteResult
from coach.sessions import SessionStore

_CONTROL = str.maketrans({chr(c): None for c in [*range(0, 9), *range(11, 32), 127]})


def register(subparsers: Any) -> None:
    """Add the `rewrite` sub-command."""
    parser = subparsers.add_parser("rewrite", help="rewrite a draft for a business audience")
    parser.add_argument("file", nargs="?", default="-", help="draft file (.txt/.md); - or nothing reads stdin")
    parser.add_argument("--audience", "-a", choices=sorted(AUDIENCES), default="cfo")
    parser.add_argument("--kind", "-k", choices=["auto", *KINDS], default="auto")
    parser.add_argument("--fact", action="append", default=[], metavar="TEXT",
                        help='a business figure to use, e.g. "downtime costs $12,000 an hour" (repeatable)')
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    parser.add_argument("--no-save", action="store_true", help="do not save the session")
    parser.add_argument("--user", help="save the session as this user's (default: COACH_USER)")
    parser.set_defaults(run=run)


def read_input(name: str) -> str:
    """The draft from a file or stdin, decoded strictly."""
    if name == "-":
        if sys.stdin.isatty():
            print("Paste the draft, then Ctrl-D:", file=sys.stderr)
        return read_draft_bytes(sys.stdin.buffer.read(), "the input")
    path = Path(name)
    try:
        return read_draft_bytes(path.read_bytes(), str(path))
    except FileNotFoundError:
        raise InputError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not a file.") from None


def run(args: argparse.Namespace) -> int:
    """Rewrite, stream to stderr when interactive, print the report or JSON."""
    settings = load_settings(user=args.user)
    request = RewriteRequest(draft=read_input(args.file), audience=args.audience, kind=args.kind,
                             supplied_facts=args.fact)
    live = sys.stderr.isatty() and not args.json
    store = None if args.no_save else SessionStore(settings, user_id=settings.user)
    result = rewrite_draft(
        settings, request, store=store,
        on_token=(lambda t: print(t, end="", file=sys.stderr, flush=True)) if live else None,
        on_progress=(lambda s: print(f"\n[{s}]", file=sys.stderr, flush=True)) if live else None,
    )
    if live:
        print("\n", file=sys.stderr)
    print(json.dumps(result.model_dump(mode="json"), indent=2) if args.json else report(result))
    return 0


def report(result: RewriteResult) -> str:
    """A readable report: the rewrite, what to check, the feedback, the scores."""
    out = [f"Rewrite for {AUDIENCES[result.audience].label} ({KINDS[result.kind]}), model: {result.model}", ""]
    if result.review_required:
        out += ["DRAFT TO REVIEW: check every flagged item before sending.", ""]
    out += [result.rewrite.translate(_CONTROL), ""]
    if result.flags:
        out.append("Check before sending:")
        out += [f"  ! {f.message}".translate(_CONTROL) for f in result.flags]
        out.append("")
    facts = result.facts
    out.append(f"Facts: {len(facts.kept)}/{len(facts.draft)} kept, {len(facts.missing)} missing, "
               f"{len(facts.added)} added figures, {len(facts.supplied)} supplied by you.")
    out += ["", "Feedback:"]
    for item in result.feedback:
        out += [f"  [{item.principle_id}] {item.principle}", f"    Draft: \"{item.draft_excerpt}\"".translate(_CONTROL),
                f"    Change: {item.change}".translate(_CONTROL), f"    Why: {item.why}",
                f"    Source: \"{item.passage.text}\" ({item.passage.source})".translate(_CONTROL)]
    for t in result.metric_translations:
        out.append(f"In business terms: {t.business}")
    if result.questions:
        out += ["", "Questions (answer with --fact to complete the figures):"] + [f"  ? {q}" for q in result.questions]
    before, after = result.scores.before, result.scores.after
    out += ["", f"Reading grade {before.fk_grade:g} -> {after.fk_grade:g}; jargon {before.jargon} -> {after.jargon}; "
            f"copy ratio {result.copy_ratio:.2f}; {result.timings.total_ms / 1000:.1f} s"]
    if result.session_id:
        out.append(f"Saved as session {result.session_id}.")
    return "\n".join(out)

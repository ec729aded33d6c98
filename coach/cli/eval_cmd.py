"""`coach eval`: run the rewrite pipeline over a JSONL file of drafts and report the measurements."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from coach.config import load_settings
from coach.evaluation import EvalRow, load_cases, markdown_report, run_eval, summary
from coach.models import open_chat_model
from coach.rewrite_strategies import warm_up


def register(subparsers: Any) -> None:
    """Add the `eval` sub-command."""
    parser = subparsers.add_parser("eval", help="measure the rewrite pipeline on a JSONL file of drafts")
    parser.add_argument("file", type=Path, help="JSONL with id, kind, text and optional facts per line")
    parser.add_argument("--audience", default=None, help="audience for every draft (default: each line's, or cfo)")
    parser.add_argument("--json", action="store_true", help="print rows and totals as JSON")
    parser.add_argument("--out", type=Path, help="also write a Markdown report with every rewrite")
    parser.set_defaults(run=run)


def _progress(row: EvalRow) -> None:
    status = row.error or f"{row.kept}/{row.facts} facts kept, copy {row.copy_ratio:.2f}, {row.seconds:.1f} s"
    print(f"{row.id}: {status}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Evaluate every line; exit 0 even when drafts fail (the report says which)."""
    settings = load_settings()
    cases = load_cases(args.file)
    if args.audience:
        cases = [case.model_copy(update={"audience": args.audience}) for case in cases]
    handle = open_chat_model(settings)
    # As the app does when it starts: the fixed prompt prefix is read once, so the first draft is timed and
    # budgeted like every other one rather than with the model's start-up inside it.
    print("coach eval: starting the model", file=sys.stderr, flush=True)
    warm_up(handle)
    rows = run_eval(settings, cases, handle=handle, on_row=_progress)
    if args.out:
        args.out.write_text(markdown_report(rows), encoding="utf-8")
    if args.json:
        rows_json = [r.model_dump(exclude={"rewrite"}) for r in rows]
        print(json.dumps({"rows": rows_json, "summary": summary(rows)}, indent=2))
    else:
        print(markdown_report(rows).split("\n## Rewrites")[0])
    return 0

"""`coach index`: build or update the corpus index (idempotent: a second run adds nothing)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from coach.config import load_settings
from coach.index import Progress, open_index


def register(subparsers: Any) -> None:
    """Add the `index` sub-command."""
    parser = subparsers.add_parser("index", help="index the corpus for retrieval (safe to re-run)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)


def _progress_reporter() -> tuple[Progress, Any]:
    """A tqdm bar on a terminal, plain lines otherwise; both on stderr. Returns (callback, closer)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=0, unit="entry", desc="indexing", file=sys.stderr, leave=False)

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        return update, bar.close

    def line(done: int, total: int) -> None:
        print(f"indexing: {done}/{total} passages and keys embedded", file=sys.stderr, flush=True)

    return line, lambda: None


def run(args: argparse.Namespace) -> int:
    """Build the index and report documents, chunks, added and removed."""
    started = time.perf_counter()
    index = open_index(load_settings())
    progress, close = _progress_reporter()
    try:
        report = index.build(progress=progress)
    finally:
        close()
    if args.json:
        print(json.dumps(report.model_dump()))
    else:
        print(f"Indexed {report.documents} documents in {report.chunks} chunks: {report.added} added, "
              f"{report.removed} removed ({time.perf_counter() - started:.1f} s).")
    return 0

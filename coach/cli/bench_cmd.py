"""`coach bench`: measure speed on this machine in one run and print a table (or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from coach.bench import BenchReport, RawTiming, RewriteRun, run_bench, target_checks
from coach.config import load_settings


def register(subparsers: Any) -> None:
    """Add the `bench` sub-command."""
    parser = subparsers.add_parser("bench", help="measure model load, rewrite latency, retrieval and indexing")
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    parser.add_argument("--quick", action="store_true", help="medium draft only, fewer retrieval queries")
    parser.add_argument("--threads", type=int, help="model threads for this run (default: COACH_THREADS or 2)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the bench, reporting each step on stderr, and print the table or JSON on stdout."""
    settings = load_settings(threads=args.threads) if args.threads else load_settings()
    report = run_bench(settings, quick=args.quick,
                       progress=lambda step: print(f"bench: {step}", file=sys.stderr, flush=True))
    print(report_json(report) if args.json else render_table(report))
    return 0


def report_json(report: BenchReport) -> str:
    """The report and its target checks as one JSON document."""
    checks = [{**check.model_dump(), "met": check.met} for check in target_checks(report)]
    return json.dumps({**report.model_dump(mode="json"), "targets": checks}, indent=2)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.2f} s"


def _num(value: float | int | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:g}{suffix}"


def _rewrite_row(run: RewriteRun) -> list[str]:
    state = run.state + ("*" if run.first_after_start else "")
    attempts = str(run.attempts) + (f" (+{run.failed_requests} failed)" if run.failed_requests else "")
    return [run.draft, str(run.words), state, _ms(run.first_token_ms), _ms(run.total_ms), attempts,
            f"{run.prompt_tokens_tiktoken}/{_num(run.prompt_tokens_model)} ({run.first_round_requests}x"
            f"{run.prefix_tokens_tiktoken})",
            _num(run.completion_tokens), _ms(run.raw_total_ms), _num(run.overhead_ratio)]


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]


def _speed_line(label: str, raw: RawTiming | None) -> str:
    if raw is None:
        return f"{label}: -"
    return (f"{label}: {_num(raw.prompt_per_s, ' tokens/s')} ({_num(raw.prompt_evaluated)} prompt tokens "
            f"in {_ms(raw.total_ms)})")


def render_table(report: BenchReport) -> str:
    """The report as plain-text tables for a terminal."""
    lines = [
        f"coach bench: {report.model}, {report.threads} thread(s); load average {report.load_average[0]:g} "
        f"before, {report.load_average[1]:g} after (2 cores: above 2, other work slowed this run)",
        f"model load: {report.model_load_s:.2f} s    indexing: {report.indexing_s:.2f} s "
        f"({report.indexed_chunks} chunks)    peak memory: {report.peak_rss_mib:,.0f} MiB",
        f"retrieval: p50 {report.retrieval_p50_ms:.1f} ms, p95 {report.retrieval_p95_ms:.1f} ms "
        f"over {report.retrieval_queries} queries",
        f"generation: {_num(report.generation_per_s, ' tokens/s')}",
        _speed_line("prompt processing, cache off (medium)", report.cold_prompt),
        f"prompt tokens, ours / naive baseline (medium): {_num(report.prompt_ratio)} in all, "
        f"{_num(report.per_draft_prompt_ratio)} without our cached fixed prefix",
        "",
        *_grid(["draft", "words", "state", "1st token", "total", "attempts",
                "prompt tok tiktoken/model (requests x prefix)", "out tok", "raw total", "overhead"],
               [_rewrite_row(r) for r in report.rewrites]),
        "* first request after the model started (empty cache); cold = first request for that draft",
        "",
        *_grid(["naive RAG", "state", "1st token", "total", "prompt tok tiktoken/model", "out tok"],
               [[b.draft, b.state, _ms(b.timing.first_token_ms), _ms(b.timing.total_ms),
                 f"{b.prompt_tokens_tiktoken}/{_num(b.timing.prompt_tokens)}", _num(b.timing.completion_tokens)]
                for b in report.baseline]),
        "",
        *_grid(["target", "value", "limit", "met"],
               [[c.name, _num(c.value, f" {c.unit}"), f"<= {c.limit:g} {c.unit}",
                 {True: "yes", False: "NO", None: "-"}[c.met]] for c in target_checks(report)]),
    ]
    return "\n".join(lines)

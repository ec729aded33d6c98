"""`coach doctor`: check the data dir, the corpus index and the chat model (with a one-token completion).

Each check records a problem instead of stopping, so one run shows everything that is wrong; the first
problem is the one-line reason and the exit code is 1. Nothing printed ever contains a key, and server URLs are
shown without their ``user:password@`` part.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlparse

from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field

from coach.config import Settings, load_settings, redact_url
from coach.errors import CoachError, ModelOutputError


class DoctorReport(BaseModel):
    """What `coach doctor --json` prints."""

    ok: bool = False
    backend: str
    model: str
    base_url: str | None = None
    corpus: dict[str, int] | None = None
    chroma: dict[str, Any] | None = None  # {url, ok} when COACH_CHROMA_URL is set
    database: dict[str, Any] | None = None  # {kind: sqlite|postgresql, ok}; never the URL (it holds a password)
    data_dir: str
    model_file_verified: bool | None = None
    ping_ms: float | None = None
    problems: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


def register(subparsers: Any) -> None:
    """Add the `doctor` sub-command."""
    parser = subparsers.add_parser("doctor", help="check the model, the corpus index and the data folder")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the report; exit 1 with a one-line reason when something is wrong."""
    report = diagnose(load_settings())
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        _print_human(report)
    if not report.ok:
        print(f"coach: {report.problems[0]}", file=sys.stderr)
        return 1
    return 0


def diagnose(settings: Settings) -> DoctorReport:
    """Run every check and collect the results."""
    base_url = redact_url(settings.base_url) if settings.base_url and settings.backend == "compatible" else None
    report = DoctorReport(backend=settings.backend, model=settings.model_label, data_dir=str(settings.data_dir),
                          base_url=base_url)
    _check_data_dir(settings, report)
    _check_chroma(settings, report)
    _check_database(settings, report)
    _check_corpus(settings, report)
    if settings.backend == "local":
        _check_model_file(settings, report)
    if report.model_file_verified is not False:  # no point loading a model file that failed
        _check_model(settings, report)
    report.problems = [_without_userinfo(problem, settings) for problem in report.problems]
    report.ok = not report.problems
    return report


def _without_userinfo(message: str, settings: Settings) -> str:
    """``message`` without the ``user:password@`` of any configured server URL, whichever module wrote it."""
    for url in (settings.base_url, settings.chroma_url):
        userinfo = urlparse(url).netloc.rpartition("@")[0] if url else ""
        if userinfo:
            message = message.replace(f"{userinfo}@", "")
    return message


def _check_data_dir(settings: Settings, report: DoctorReport) -> None:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=settings.data_dir, prefix=".doctor-"):
            pass
    except OSError as exc:
        report.problems.append(f"The data folder {settings.data_dir} is not writable ({exc.strerror or exc}); "
                               "set COACH_DATA_DIR to a writable folder.")


def _check_chroma(settings: Settings, report: DoctorReport) -> None:
    """Heartbeat the Chroma server (embedded index: nothing to reach)."""
    if not settings.chroma_url:
        return
    url = redact_url(settings.chroma_url)
    report.chroma = {"url": url, "ok": False}
    try:
        from coach.index import _client  # the one place that turns COACH_CHROMA_URL into a client

        _client(settings).heartbeat()
        report.chroma["ok"] = True
    except CoachError as exc:
        report.problems.append(str(exc))
    except Exception as exc:  # the doctor must report, not crash
        report.problems.append(f"The Chroma server at {url} cannot be reached ({type(exc).__name__}); "
                               "start it (`chroma run`) or fix COACH_CHROMA_URL.")


def _check_database(settings: Settings, report: DoctorReport) -> None:
    """Open (and migrate) the session database; report its kind, never its URL."""
    from coach.sessions import database_url, open_database

    report.database = {"kind": "sqlite" if settings.database_url is None else "postgresql", "ok": False}
    try:
        report.database["kind"] = "postgresql" if database_url(settings).drivername.startswith("postgres") else "sqlite"
        open_database(settings)
        report.database["ok"] = True
    except CoachError as exc:  # StorageError/ConfigError messages show the URL with its password hidden
        report.problems.append(str(exc))
    except Exception as exc:  # e.g. an unwritable data folder for SQLite; never echo the URL
        report.problems.append(f"The session database cannot be opened ({type(exc).__name__}).")


def _check_corpus(settings: Settings, report: DoctorReport) -> None:
    """Index statistics; the index module is optional here so the doctor works on a partial install."""
    try:
        from coach.index import open_index
    except ImportError as exc:
        report.warnings.append(f"The corpus index is not available ({exc.name or exc}).")
        return
    try:
        report.corpus = dict(open_index(settings).stats())
    except CoachError as exc:
        report.problems.append(str(exc))
        return
    except Exception as exc:  # the doctor must report, not crash
        report.problems.append(f"The corpus index cannot be read ({type(exc).__name__}); run `coach index`.")
        return
    if not report.corpus.get("chunks"):
        report.warnings.append("The corpus index is empty; run `coach index`.")


def _check_model_file(settings: Settings, report: DoctorReport) -> None:
    from coach.local_model import ensure_model_file

    def progress(stage: str, done: int, total: int) -> None:
        if done == total or done % (256 * 1024 * 1024) < 8 * 1024 * 1024:
            print(f"model file: {stage} {done * 100 // max(total, 1)}%", file=sys.stderr, flush=True)

    try:
        ensure_model_file(settings, progress)
        report.model_file_verified = True
    except CoachError as exc:
        report.model_file_verified = False
        report.problems.append(str(exc))


def _check_model(settings: Settings, report: DoctorReport) -> None:
    """Open the chat model and time a one-token completion."""
    from coach.models import GenerationOptions, generate, open_chat_model

    try:
        handle = open_chat_model(settings)
        report.model = handle.profile.name
        if settings.backend in ("local", "openai"):
            report.base_url = redact_url(handle.base_url or "") or None
        started = time.perf_counter()
        # One token may be whitespace (an "empty" answer): the model still answered, which is all a ping checks.
        with contextlib.suppress(ModelOutputError):
            generate(handle, [HumanMessage("Reply with the word OK.")], GenerationOptions(max_tokens=1, temperature=0))
        report.ping_ms = round((time.perf_counter() - started) * 1000, 1)
    except CoachError as exc:
        report.problems.append(str(exc))


def _print_human(report: DoctorReport) -> None:
    lines = [
        f"backend      {report.backend} ({report.model})",
        f"server       {report.base_url or '-'}",
        f"data folder  {report.data_dir}",
        f"chroma       {_reach(report.chroma, 'url') if report.chroma else 'embedded'}",
        f"database     {_reach(report.database, 'kind') if report.database else '-'}",
        f"corpus       {json.dumps(report.corpus) if report.corpus is not None else 'unavailable'}",
        f"model file   {_verified(report.model_file_verified)}",
        f"ping         {f'{report.ping_ms:.0f} ms' if report.ping_ms is not None else '-'}",
    ]
    lines += [f"warning      {warning}" for warning in report.warnings]
    lines += [f"problem      {problem}" for problem in report.problems]
    lines.append("ok" if report.ok else "NOT OK")
    print("\n".join(lines))


def _reach(check: dict[str, Any], name: str) -> str:
    return f"{check[name]} ({'reachable' if check['ok'] else 'NOT reachable'})"


def _verified(value: bool | None) -> str:
    return "not used" if value is None else ("verified" if value else "missing or corrupt")

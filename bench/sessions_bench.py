"""Session store figures: time to list 10,000 sessions, and saves/s with 20 threads + 2 processes.

    .venv/bin/python bench/sessions_bench.py                      # SQLite in a temp data dir
    .venv/bin/python bench/sessions_bench.py --pg "$(scripts/postgres.sh)"   # and PostgreSQL

Each backend starts from an empty database (PostgreSQL: a fresh schema, dropped afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coach.config import Settings, load_settings  # noqa: E402
from coach.session_export import export_json  # noqa: E402
from coach.session_models import Session, SessionQuery  # noqa: E402
from coach.sessions import SessionStore, close_databases  # noqa: E402


def sample(n: int) -> Session:
    """A rewrite session of realistic size (~3 KB of JSON)."""
    result = {
        "rewrite": f"Unscheduled downtime fell from 10 h to 8 h a year (report {n}), saving $200K a year. " * 3,
        "feedback": [{"principle_id": p, "principle": p, "draft_excerpt": "99.9% uptime", "change": "business terms",
                      "why": "leaders buy outcomes", "passage": {"text": "business-focused metrics", "source": "e.md"}}
                     for p in ("business-metrics", "lead-with-outcome")],
        "facts": {"draft": ["99.9%"], "kept": ["99.9%"], "missing": [], "added": [], "supplied": []},
        "scores": {"before": {"fk_grade": 12.0, "jargon": 4}, "after": {"fk_grade": 8.0, "jargon": 1}},
        "metric_translations": [], "questions": [], "flags": [], "model": "bench",
        "timings": {"retrieval_ms": 3.0, "first_token_ms": 120.0, "total_ms": 900.0},
    }
    draft = f"Weekly status {n}\n" + "Uptime was 99.9% and the SLA held; the P1 backlog is down to 4 tickets.\n" * 6
    created = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=n)
    return Session(type="rewrite", audience="CFO", kind="status", draft=draft, result=result, created_at=created,
                   updated_at=created)


@contextmanager
def database(pg_url: str | None) -> Iterator[Settings]:
    """Settings for an empty SQLite file, or an empty schema on the PostgreSQL server."""
    with tempfile.TemporaryDirectory() as data_dir:
        if pg_url is None:
            yield load_settings(data_dir=data_dir)
            close_databases()
            return
        base = make_url(pg_url).set(drivername="postgresql+psycopg")
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
        try:
            yield load_settings(data_dir=data_dir, database_url=url)
        finally:
            close_databases()
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def timed(fn: object, repeat: int = 3) -> float:
    """Median wall time of ``fn()`` in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_list(settings: Settings, count: int) -> dict[str, float]:
    """Load ``count`` sessions (one import transaction), then time listing them."""
    store = SessionStore(settings)
    start = time.perf_counter()
    store.import_json(export_json(sample(n) for n in range(count)))
    loaded = time.perf_counter() - start
    assert len(store.list()) == count
    return {
        "import_s": round(loaded, 2),
        "list_all_s": round(timed(store.list), 3),
        "list_page_50_ms": round(timed(lambda: store.list(SessionQuery(limit=50))) * 1000, 1),
        "search_all_s": round(timed(lambda: store.list(SessionQuery(search="report 99"))), 3),
        "stats_s": round(timed(store.stats), 3),
    }


def bench_concurrency(settings: Settings, threads: int, processes: int, total: int) -> dict[str, float]:
    """Wall time and saves/s for ``total`` saves split over threads here and worker processes."""
    store = SessionStore(settings)
    per_process = total // 5 if processes else 0  # 2 processes x 100 of 500, as in the durability test
    rest = total - per_process * processes
    per_thread = [rest // threads + (1 if i < rest % threads else 0) for i in range(threads)]
    env = {**os.environ, "COACH_DATA_DIR": str(settings.data_dir)}
    if settings.database_url is not None:
        env["COACH_DATABASE_URL"] = settings.database_url.get_secret_value()
    start = time.perf_counter()
    workers = [subprocess.Popen([sys.executable, __file__, "--worker", str(per_process)], env=env)
               for _ in range(processes)]
    errors: list[BaseException] = []
    pool = [threading.Thread(target=_save_many, args=(store, count, errors)) for count in per_thread]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    codes = [w.wait() for w in workers]
    elapsed = time.perf_counter() - start
    saved = sum(per_thread) + per_process * processes
    listed = len(store.list())
    if errors or any(codes) or listed != saved:
        raise SystemExit(f"concurrency run failed: errors={errors[:3]} exit codes={codes} listed={listed}/{saved}")
    return {"saves": saved, "wall_s": round(elapsed, 2), "saves_per_s": round(saved / elapsed, 1)}


def _save_many(store: SessionStore, count: int, errors: list[BaseException]) -> None:
    try:
        for n in range(count):
            store.save(sample(n).model_copy(update={"id": uuid.uuid4().hex}))
    except BaseException as exc:
        errors.append(exc)


def main() -> int:
    """Run the benchmarks and print one JSON line per backend."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=os.environ.get("COACH_TEST_DATABASE_URL"), help="a PostgreSQL URL")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--saves", type=int, default=500)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        errors: list[BaseException] = []
        _save_many(SessionStore(load_settings()), args.worker, errors)
        return 1 if errors else 0
    for backend, url in (("sqlite", None), ("postgres", args.pg)):
        if backend == "postgres" and not url:
            print(json.dumps({"backend": "postgres", "skipped": "no --pg URL"}))
            continue
        with database(url) as settings:
            figures = {"backend": backend, f"list_{args.sessions}": bench_list(settings, args.sessions)}
        with database(url) as settings:
            figures["concurrency"] = bench_concurrency(settings, args.threads, args.processes, args.saves)
        print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

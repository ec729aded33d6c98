"""Sessions are never lost: concurrent writers, crashes mid-save, and migrations from every earlier schema.

Each test runs against SQLite and (marked ``postgres``) a real PostgreSQL server.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from test_sessions_support import BACKENDS, REPO, backend_database, sample_session, settings_for

from coach import sessions as sessions_module
from coach.config import Settings
from coach.errors import StorageError
from coach.migrations import MIGRATIONS, SCHEMA_VERSION, applied_migrations, migrate
from coach.session_models import SessionQuery
from coach.sessions import DraftStore, SessionStore, close_databases, database_url, open_database

THREADS, PER_THREAD = 20, 15
PROCESSES, PER_PROCESS = 2, 100  # 20 * 15 + 2 * 100 = 500 sessions in all


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, isolated_environment: Path) -> Iterator[Settings]:
    """Settings pointing at a fresh (not yet opened) database of each backend."""
    with backend_database(request.param, isolated_environment) as url:
        yield settings_for(isolated_environment, url)


def _child_env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, "COACH_DATA_DIR": str(settings.data_dir), "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"}
    if settings.database_url is not None:
        env["COACH_DATABASE_URL"] = settings.database_url.get_secret_value()
    return env


SAVER = textwrap.dedent("""
    import sys
    from coach.config import load_settings
    from coach.sessions import SessionStore
    from test_sessions_support import sample_session
    store = SessionStore(load_settings())
    for i in range(int(sys.argv[1])):
        print(store.save(sample_session(i, notes=sys.argv[2])).id, flush=True)
""")


def test_threads_and_processes_save_500_sessions_without_loss_or_lock_errors(settings: Settings) -> None:
    store = SessionStore(settings)
    children = [subprocess.Popen([sys.executable, "-c", SAVER, str(PER_PROCESS), f"process {n}"],
                                 env=_child_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for n in range(PROCESSES)]
    saved: list[str] = []
    errors: list[BaseException] = []

    def save_many(n: int) -> None:
        try:
            for i in range(PER_THREAD):
                saved.append(store.save(sample_session(i, notes=f"thread {n}")).id)
        except BaseException as exc:  # any error reaching a caller fails the test
            errors.append(exc)

    threads = [threading.Thread(target=save_many, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        assert "locked" not in err
        saved.extend(out.split())
    assert errors == []
    listed = [s.id for s in store.list()]
    assert len(saved) == len(set(saved)) == THREADS * PER_THREAD + PROCESSES * PER_PROCESS
    assert len(listed) == len(set(listed)) and set(listed) == set(saved)
    assert len(store.list(SessionQuery(search="process 1"))) == PER_PROCESS


def test_an_error_inside_the_transaction_leaves_no_partial_session(settings: Settings,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store = SessionStore(settings)
    kept = store.save(sample_session(0))
    real_upsert = SessionStore._upsert

    def upsert_then_fail(self: SessionStore, conn: object, session: object) -> None:
        real_upsert(self, conn, session)  # type: ignore[arg-type]
        raise RuntimeError("disk pulled out")

    monkeypatch.setattr(SessionStore, "_upsert", upsert_then_fail)
    new = sample_session(1)
    with pytest.raises(RuntimeError):
        store.save(new)
    with pytest.raises(RuntimeError):
        store.save(kept.model_copy(update={"notes": "half-written", "result": None, "principles": []}))
    monkeypatch.undo()
    assert store.get(new.id) is None
    assert store.get(kept.id) == kept
    assert [s.id for s in store.list(SessionQuery(principle="business-metrics"))] == [kept.id]


KILLED_MID_SAVE = textwrap.dedent("""
    import os, signal, sys
    from coach.config import load_settings
    from coach.sessions import SessionStore
    from test_sessions_support import sample_session
    real_upsert = SessionStore._upsert
    def upsert_then_die(self, conn, session):
        real_upsert(self, conn, session)
        print(session.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # rows written, transaction not committed
    SessionStore._upsert = upsert_then_die
    SessionStore(load_settings()).save(sample_session(7))
""")


def test_a_process_killed_mid_save_leaves_no_partial_session(settings: Settings) -> None:
    store = SessionStore(settings)
    child = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE], env=_child_env(settings),
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    killed_id = child.stdout.strip()
    assert len(killed_id) == 32
    assert store.get(killed_id) is None
    assert store.list() == []
    after = store.save(sample_session(8))  # the write lock was released with the dead process
    assert [s.id for s in store.list()] == [after.id]


@pytest.mark.parametrize("version", range(SCHEMA_VERSION + 1))
def test_migrations_apply_from_every_earlier_schema(settings: Settings, version: int) -> None:
    # Build the database as an older release left it, with data in it, then open it with this one.
    database = sessions_module._connect(database_url(settings))
    migrate(database.engine, database.write_connection, upto=version)
    if version == 1:
        _seed_v1(database.engine, settings)
    database.engine.dispose()
    store = SessionStore(settings)
    with open_database(settings).engine.connect() as conn:
        assert applied_migrations(conn) == [m.name for m in MIGRATIONS]
    if version == 1:
        [old] = store.list()
        assert (old.title, old.user_id) == ("Weekly status 3", None)
        assert DraftStore(settings).load_draft("rewrite") == "typed before the upgrade"
    assert store.save(sample_session(4)).id in {s.id for s in store.list()}


def _seed_v1(engine: object, settings: Settings) -> None:
    """A session and a draft written by the version-1 schema (no user_id, drafts in `drafts`)."""
    session = sample_session(3)
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text(
            "INSERT INTO sessions (id, created_at, updated_at, type, audience, kind, title, rating, search_text,"
            " body) VALUES (:id, '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', 'rewrite', 'CFO',"
            " 'status', :title, NULL, 'weekly status', :body)"),
            {"id": session.id, "title": session.title, "body": session.model_dump_json(exclude={"user_id"})})
        conn.execute(text("INSERT INTO session_principles VALUES (:id, 'business-metrics')"), {"id": session.id})
        conn.execute(text("INSERT INTO drafts VALUES ('rewrite', 'typed before the upgrade', "
                          "'2025-01-01T00:00:00.000000Z')"))


def test_reopening_a_migrated_database_applies_nothing(settings: Settings) -> None:
    SessionStore(settings).save(sample_session())
    close_databases()
    database = open_database(settings)
    assert migrate(database.engine, database.write_connection) == []
    assert len(SessionStore(settings).list()) == 1


def _hold_sqlite_write_lock(data_dir: Path, seconds: float) -> threading.Thread:
    """Another program's write transaction on the SQLite file, held for ``seconds``."""
    held = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(data_dir / "sessions.db", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    return thread


def test_sqlite_save_waits_out_another_writer(isolated_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions_module, "SQLITE_BUSY_TIMEOUT_S", 0.2)  # busy errors happen, and are retried
    store = SessionStore(settings_for(isolated_environment, None))
    holder = _hold_sqlite_write_lock(isolated_environment, 0.5)
    saved = store.save(sample_session())
    holder.join()
    assert store.get(saved.id) == saved
    close_databases()


def test_sqlite_lock_held_too_long_is_a_storage_error(isolated_environment: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions_module, "SQLITE_BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(sessions_module, "WRITE_ATTEMPTS", 2)
    store = SessionStore(settings_for(isolated_environment, None))
    holder = _hold_sqlite_write_lock(isolated_environment, 1.5)
    with pytest.raises(StorageError, match="stayed busy") as caught:
        store.save(sample_session())
    holder.join()
    assert "locked" not in str(caught.value)
    close_databases()

"""Saved coaching sessions that are never lost: SQLite in the data dir by default, PostgreSQL for teams.

Design decisions:
- One engine per database and process, migrated when first opened (``coach.migrations``).
- SQLite: WAL (readers never block the writer), ``synchronous=FULL`` (a committed session survives a power
  cut), a 30 s busy timeout, and writes serialised twice: a per-process lock (so threads queue instead of
  spinning on SQLITE_BUSY) and ``BEGIN IMMEDIATE`` (so processes take the write lock before reading, which
  rules out the deadlock the busy handler cannot resolve). A write still refused after the timeout is retried
  as a whole; only after that does the caller see a ``StorageError`` — never a raw "database is locked".
- PostgreSQL: the server handles concurrency; upserts are single ``INSERT ... ON CONFLICT`` statements and a
  deadlock or serialisation failure is retried.
- One transaction per save: the session row and its principle rows commit together or not at all.
- Each row holds the session's JSON and a few columns to filter on. JSON is validated when read; a row that
  fails is skipped with a warning, so one corrupt row never hides the others.
- With ``user_id`` every statement is scoped to that user: no user can read, overwrite or delete another's
  session or draft. Without it (one user on one laptop, or an administrator's CLI) the store sees everything.
- Nothing from ``Settings`` is ever serialised, and any configured key or database password that a user
  pastes into a draft is replaced by ``[redacted]`` before it reaches the database.
"""

from __future__ import annotations

import builtins
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError

from coach.config import Settings
from coach.errors import ConfigError, StorageError
from coach.migrations import iso_utc, migrate
from coach.session_export import ExportFormat, export_json, export_markdown, parse_export
from coach.session_models import (
    RATING_MAX,
    RATING_MIN,
    Session,
    SessionQuery,
    SessionStats,
    compute_stats,
    utc_now,
)

__all__ = ["DraftStore", "Session", "SessionQuery", "SessionStats", "SessionStore", "close_databases"]

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_S = 30.0
WRITE_ATTEMPTS = 4
REDACTED = "[redacted]"
_RETRY_SQLSTATES = {"40001", "40P01"}  # PostgreSQL serialization failure, deadlock detected


@dataclass
class _Database:
    """An engine, how to write to it, and a label safe to show (no password)."""

    engine: Engine
    label: str
    write_lock: AbstractContextManager[Any] = field(default_factory=nullcontext)

    @property
    def is_postgres(self) -> bool:
        """True for PostgreSQL, False for SQLite."""
        return self.engine.dialect.name == "postgresql"

    def write_connection(self) -> Connection:
        """A connection whose transactions take the write lock at BEGIN (SQLite: ``BEGIN IMMEDIATE``)."""
        return self.engine.connect().execution_options(coach_write=True)

    def read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a read transaction."""
        return self._attempt(lambda: self._once(self.engine.connect, work))

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction: all of it commits, or none of it."""

        def locked() -> T:
            with self.write_lock:
                return self._once(self.write_connection, work)

        return self._attempt(locked)

    @staticmethod
    def _once(connect: Callable[[], Connection], work: Callable[[Connection], T]) -> T:
        with connect() as conn, conn.begin():
            return work(conn)

    def _attempt(self, run: Callable[[], T]) -> T:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return run()
            except DBAPIError as exc:
                if attempt == WRITE_ATTEMPTS or not _retryable(exc):
                    raise self._storage_error(exc) from None
                log.info("session database busy (attempt %d), retrying", attempt)
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def _storage_error(self, exc: DBAPIError) -> StorageError:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        if _retryable(exc):
            return StorageError(f"The session database {self.label} stayed busy for over a minute.",
                                hint="Another program is holding it; close that program and try again.")
        if isinstance(exc, OperationalError):
            return StorageError(f"Cannot use the session database {self.label}: {reason}.",
                                hint="Check COACH_DATABASE_URL (or the data dir's permissions and free space).")
        return StorageError(f"The session database {self.label} refused a statement: {reason}.")


def _retryable(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    message = str(exc.orig).lower()
    return sqlstate in _RETRY_SQLSTATES or "database is locked" in message or "database is busy" in message


_databases: dict[tuple[int, str], _Database] = {}
_databases_lock = threading.Lock()


def database_url(settings: Settings) -> URL:
    """The SQLAlchemy URL of the session database: ``COACH_DATABASE_URL`` or ``<data dir>/sessions.db``."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return URL.create("sqlite", database=str(settings.data_dir / "sessions.db"))
    try:
        url = make_url(settings.database_url.get_secret_value())
    except Exception:  # the message would echo the URL, password included
        raise ConfigError("COACH_DATABASE_URL is not a database URL.",
                          hint="Use postgresql://user:password@host:5432/dbname.") from None
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername == "sqlite" and url.database:
        return url
    raise ConfigError(f"COACH_DATABASE_URL uses {url.drivername!r}, which the session store does not support.",
                      hint="Use a postgresql:// URL, or unset it to keep sessions in SQLite in the data dir.")


def open_database(settings: Settings) -> _Database:
    """The process's handle on the session database, created and migrated on first use."""
    url = database_url(settings)
    key = (os.getpid(), url.render_as_string(hide_password=False))
    with _databases_lock:
        if key not in _databases:
            database = _connect(url)
            database.read(lambda conn: None)  # fail here, with a clear error, if it cannot be reached
            migrate(database.engine, database.write_connection)
            _databases[key] = database
        return _databases[key]


def close_databases() -> None:
    """Dispose of every engine this process opened (tests, and before dropping a database)."""
    with _databases_lock:
        for database in _databases.values():
            database.engine.dispose()
        _databases.clear()


def _connect(url: URL) -> _Database:
    label = url.render_as_string(hide_password=True)
    if url.drivername == "sqlite":
        engine = create_engine(url, pool_size=5, max_overflow=25,
                               connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})
        _configure_sqlite(engine)
        return _Database(engine, label, threading.Lock())
    engine = create_engine(url, pool_size=5, max_overflow=25, pool_pre_ping=True,
                           connect_args={"connect_timeout": 10})
    return _Database(engine, label)


def _configure_sqlite(engine: Engine) -> None:
    """WAL, busy timeout, foreign keys, and our own BEGIN (the sqlite3 module's would be deferred)."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("coach_write") else "BEGIN")


class _Redactor:
    """Replaces configured secrets (API key, database password) in text about to be stored."""

    def __init__(self, settings: Settings) -> None:
        values = [s.get_secret_value() for s in (settings.openai_api_key, settings.compatible_api_key) if s]
        if settings.database_url is not None:
            values.append(settings.database_url.get_secret_value())
            values.append(make_url(values[-1]).password or "")
        # Short values would redact ordinary words; no real key or password we accept is that short.
        self._secrets = sorted({v for v in values if len(v) >= 8}, key=len, reverse=True)

    def session(self, session: Session) -> Session:
        """``session`` with every secret value replaced."""
        data = session.model_dump_json()
        if not any(secret in data for secret in self._secrets):
            return session
        return Session.model_validate_json(self.text(data))

    def text(self, value: str) -> str:
        """``value`` with every secret value replaced."""
        for secret in self._secrets:
            value = value.replace(secret, REDACTED)
        return value


def _parse_row(session_id: str, body: str) -> Session | None:
    """The session stored in a row, or None (with a warning) when it does not validate."""
    try:
        return Session.model_validate_json(body)
    except ValidationError as exc:
        log.warning("skipping damaged session %s (%s)", session_id, exc.errors()[0]["msg"])
        return None


def _like_pattern(term: str) -> str:
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class SessionStore:
    """Saved sessions: save, get, list with search and filters, rate, annotate, delete, export, import."""

    def __init__(self, settings: Settings, user_id: str | None = None) -> None:
        self._db = open_database(settings)
        self._user = user_id
        self._redactor = _Redactor(settings)

    # --- writes -------------------------------------------------------------------------------------------
    def save(self, session: Session) -> Session:
        """Insert or update ``session`` in one transaction; returns it as stored (updated_at set to now)."""
        stored = self._prepare(session, updated_at=True)
        self._db.write(lambda conn: self._upsert(conn, stored))
        return stored

    def delete(self, session_id: str) -> bool:
        """Delete a session; False if there was none (or it belongs to another user)."""

        def work(conn: Connection) -> bool:
            if self._select_body(conn, session_id) is None:
                return False
            conn.execute(text("DELETE FROM session_principles WHERE session_id = :id"), {"id": session_id})
            conn.execute(text("DELETE FROM sessions WHERE id = :id"), {"id": session_id})
            return True

        return self._db.write(work)

    def save_fields(self, session_id: str, fields: dict[str, Any]) -> Session:
        """Create the session with ``fields``, or change only those fields of the stored one, in one transaction
        (a rating or notes set meanwhile elsewhere are kept)."""

        def work(conn: Connection) -> Session:
            body = self._select_body(conn, session_id, for_update=True)
            current = _parse_row(session_id, body) if body is not None else None
            base = current.model_dump() if current is not None else {"id": session_id}
            stored = self._prepare(Session.model_validate({**base, **fields, "id": session_id}), updated_at=True)
            self._upsert(conn, stored)
            return stored

        return self._db.write(work)

    def set_rating(self, session_id: str, rating: int | None) -> Session:
        """Rate a session 1-5 stars, or clear the rating with None."""
        if rating is not None and not RATING_MIN <= rating <= RATING_MAX:
            raise StorageError(f"A rating is {RATING_MIN} to {RATING_MAX} stars, not {rating}.")
        return self._update(session_id, {"rating": rating})

    def set_notes(self, session_id: str, notes: str) -> Session:
        """Replace a session's notes."""
        return self._update(session_id, {"notes": notes})

    def import_json(self, data: str) -> builtins.list[str]:
        """Import a JSON export in one transaction (all or nothing); returns the ids imported."""
        sessions = [self._prepare(s, updated_at=False) for s in parse_export(data)]

        def work(conn: Connection) -> builtins.list[str]:
            for session in sessions:
                self._upsert(conn, session)
            return [s.id for s in sessions]

        return self._db.write(work)

    # --- reads --------------------------------------------------------------------------------------------
    def get(self, session_id: str) -> Session | None:
        """The session with that id, or None; a damaged one raises ``StorageError``."""
        body = self._db.read(lambda conn: self._select_body(conn, session_id))
        if body is None:
            return None
        session = _parse_row(session_id, body)
        if session is None:
            raise StorageError(f"Session {session_id} is damaged and cannot be read.",
                               hint=f"Delete it with `coach sessions delete {session_id}`.")
        return session

    def list(self, query: SessionQuery | None = None) -> list[Session]:
        """Sessions matching ``query``, newest first; damaged rows are skipped with a warning."""
        sql, params = self._list_sql(query or SessionQuery())
        rows = self._db.read(lambda conn: conn.execute(text(sql), params).all())
        return [s for s in (_parse_row(row.id, row.body) for row in rows) if s is not None]

    def stats(self) -> SessionStats:
        """Per-week average scores before/after and the most often flagged principles."""
        return compute_stats(self.list())

    def export(self, selection: Iterable[str] | SessionQuery | None, format: ExportFormat = "json") -> str:
        """Export sessions chosen by ids or a query (None: all) as Markdown or JSON."""
        if selection is None or isinstance(selection, SessionQuery):
            sessions = self.list(selection)
        else:
            sessions = self._get_all(selection)
        if format == "json":
            return export_json(sessions)
        if format == "md":
            return export_markdown(sessions)
        raise StorageError(f"Unknown export format {format!r}.", hint="Use md or json.")

    # --- internals ----------------------------------------------------------------------------------------
    def _prepare(self, session: Session, *, updated_at: bool) -> Session:
        changes: dict[str, Any] = {}
        if self._user is not None:
            changes["user_id"] = self._user
        if updated_at:
            changes["updated_at"] = utc_now()
        if changes:
            session = Session.model_validate({**session.model_dump(), **changes})
        return self._redactor.session(session)

    def _get_all(self, ids: Iterable[str]) -> builtins.list[Session]:
        sessions = []
        for session_id in ids:
            session = self.get(session_id)
            if session is None:
                raise StorageError(f"No session {session_id}.", hint="`coach sessions list` shows the ids.")
            sessions.append(session)
        return sessions

    def _update(self, session_id: str, changes: dict[str, Any]) -> Session:
        def work(conn: Connection) -> Session:
            body = self._select_body(conn, session_id, for_update=True)
            if body is None:
                raise StorageError(f"No session {session_id}.", hint="`coach sessions list` shows the ids.")
            current = _parse_row(session_id, body)
            if current is None:
                raise StorageError(f"Session {session_id} is damaged and cannot be changed.")
            updated = Session.model_validate({**current.model_dump(), **changes, "updated_at": utc_now()})
            updated = self._redactor.session(updated)
            self._upsert(conn, updated)
            return updated

        return self._db.write(work)

    def _scope(self, column: str = "user_id") -> tuple[str, dict[str, Any]]:
        if self._user is None:
            return "", {}
        return f" AND {column} = :scope_user", {"scope_user": self._user}

    def _select_body(self, conn: Connection, session_id: str, *, for_update: bool = False) -> str | None:
        scope, params = self._scope()
        lock = " FOR UPDATE" if for_update and self._db.is_postgres else ""
        row = conn.execute(text(f"SELECT body FROM sessions WHERE id = :id{scope}{lock}"),
                           {"id": session_id, **params}).first()
        return None if row is None else str(row.body)

    def _upsert(self, conn: Connection, session: Session) -> None:
        # A scoped store may only overwrite its own user's row; the WHERE makes the update a no-op otherwise.
        guard = " WHERE sessions.user_id = excluded.user_id" if self._user is not None else ""
        columns = _row(session)
        names = ", ".join(columns)
        updates = ", ".join(f"{name} = excluded.{name}" for name in columns if name != "id")
        result = conn.execute(
            text(f"INSERT INTO sessions ({names}) VALUES ({', '.join(':' + n for n in columns)}) "
                 f"ON CONFLICT (id) DO UPDATE SET {updates}{guard}"),
            columns,
        )
        if result.rowcount == 0:
            raise StorageError(f"Session {session.id} cannot be saved: that id is taken.",
                               hint="Save it as a new session.")
        conn.execute(text("DELETE FROM session_principles WHERE session_id = :id"), {"id": session.id})
        if session.principles:
            conn.execute(text("INSERT INTO session_principles (session_id, principle_id) VALUES (:s, :p)"),
                         [{"s": session.id, "p": p} for p in dict.fromkeys(session.principles)])

    def _list_sql(self, query: SessionQuery) -> tuple[str, dict[str, Any]]:
        where, params = self._filters(query)
        sql = f"SELECT id, body FROM sessions WHERE 1 = 1{where} ORDER BY created_at DESC, id DESC"
        if query.limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = query.limit
        elif query.offset:
            sql += " LIMIT ALL" if self._db.is_postgres else " LIMIT -1"
        if query.offset:
            sql += " OFFSET :offset"
            params["offset"] = query.offset
        return sql, params

    def _filters(self, query: SessionQuery) -> tuple[str, dict[str, Any]]:
        where, params = self._scope()
        for name in ("type", "audience", "kind"):
            if getattr(query, name):
                where += f" AND {name} = :{name}"
                params[name] = getattr(query, name)
        if query.search:
            where += " AND search_text LIKE :search ESCAPE '\\'"
            params["search"] = _like_pattern(query.search)
        if query.principle:
            where += (" AND EXISTS (SELECT 1 FROM session_principles sp"
                      " WHERE sp.session_id = sessions.id AND sp.principle_id = :principle)")
            params["principle"] = query.principle
        if query.since:
            where += " AND created_at >= :since"
            params["since"] = iso_utc(query.since)
        if query.until:
            where += " AND created_at < :until"
            params["until"] = iso_utc(query.until)
        return where, params


def _row(session: Session) -> dict[str, Any]:
    """The columns stored for a session (the JSON body is the source of truth; the rest is for filtering)."""
    return {
        "id": session.id,
        "created_at": iso_utc(session.created_at),
        "updated_at": iso_utc(session.updated_at),
        "type": session.type,
        "audience": session.audience,
        "kind": session.kind,
        "title": session.title,
        "rating": session.rating,
        "search_text": session.search_text(),
        "body": session.model_dump_json(),
        "user_id": session.user_id or "",
    }


class DraftStore:
    """Autosaved, not yet submitted text (a draft, a chat input), kept per user and key across reloads."""

    def __init__(self, settings: Settings, user_id: str | None = None) -> None:
        self._db = open_database(settings)
        self._user = user_id or ""
        self._redactor = _Redactor(settings)

    def save_draft(self, key: str, text_value: str) -> None:
        """Store the current text under ``key`` (replacing what was there)."""
        params = {"u": self._user, "k": key, "t": self._redactor.text(text_value), "at": iso_utc(utc_now())}
        self._db.write(lambda conn: conn.execute(text(
            "INSERT INTO session_drafts (user_id, key, text, updated_at) VALUES (:u, :k, :t, :at) "
            "ON CONFLICT (user_id, key) DO UPDATE SET text = excluded.text, updated_at = excluded.updated_at"
        ), params))

    def load_draft(self, key: str) -> str | None:
        """The text last saved under ``key``, or None."""
        row = self._db.read(lambda conn: conn.execute(
            text("SELECT text FROM session_drafts WHERE user_id = :u AND key = :k"), {"u": self._user, "k": key}
        ).first())
        return None if row is None else str(row.text)

    def clear_draft(self, key: str) -> None:
        """Forget the text saved under ``key`` (after it became a session)."""
        self._db.write(lambda conn: conn.execute(
            text("DELETE FROM session_drafts WHERE user_id = :u AND key = :k"), {"u": self._user, "k": key}
        ))

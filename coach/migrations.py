"""Named, ordered schema migrations for the session database, recorded in ``schema_migrations``.

Each migration runs in one transaction together with the row that records it, so a crash leaves the
schema either before or after it, never half-way. Concurrent openers are serialised: SQLite by
``BEGIN IMMEDIATE`` (the write lock), PostgreSQL by a transaction-scoped advisory lock. The set of applied
migrations is re-read under that lock, so a second process never applies one twice.

The SQL is kept to what SQLite and PostgreSQL both accept. Times are ISO-8601 UTC text of fixed width
(``2025-01-31T09:15:00.000000Z``): they sort and compare as text the same way in both engines and
round-trip exactly. Never edit a released migration; add a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

# Any constant shared by all coach processes; it names the advisory lock that serialises migrations.
_PG_MIGRATION_LOCK = 7_316_614_401


@dataclass(frozen=True)
class Migration:
    """One schema change: a stable name and the statements that make it."""

    name: str
    statements: tuple[str, ...]


V1_BASE_TABLES = Migration(
    "0001_sessions_and_drafts",
    (
        """CREATE TABLE sessions (
            id VARCHAR(32) PRIMARY KEY,
            created_at VARCHAR(32) NOT NULL,
            updated_at VARCHAR(32) NOT NULL,
            type VARCHAR(16) NOT NULL,
            audience TEXT,
            kind TEXT,
            title TEXT NOT NULL,
            rating INTEGER,
            search_text TEXT NOT NULL,
            body TEXT NOT NULL
        )""",
        """CREATE TABLE session_principles (
            session_id VARCHAR(32) NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            principle_id TEXT NOT NULL,
            PRIMARY KEY (session_id, principle_id)
        )""",
        """CREATE TABLE drafts (
            key TEXT PRIMARY KEY,
            text TEXT NOT NULL,
            updated_at VARCHAR(32) NOT NULL
        )""",
    ),
)

# Per-user privacy (issue 9): sessions and autosaved drafts belong to a user ('' = the single local user).
V2_USER_SCOPE = Migration(
    "0002_user_scope_and_indexes",
    (
        "ALTER TABLE sessions ADD COLUMN user_id TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX ix_sessions_user_created ON sessions (user_id, created_at)",
        "CREATE INDEX ix_sessions_created ON sessions (created_at)",
        "CREATE INDEX ix_session_principles_principle ON session_principles (principle_id)",
        """CREATE TABLE session_drafts (
            user_id TEXT NOT NULL DEFAULT '',
            key TEXT NOT NULL,
            text TEXT NOT NULL,
            updated_at VARCHAR(32) NOT NULL,
            PRIMARY KEY (user_id, key)
        )""",
        "INSERT INTO session_drafts (user_id, key, text, updated_at) SELECT '', key, text, updated_at FROM drafts",
        "DROP TABLE drafts",
    ),
)

MIGRATIONS: tuple[Migration, ...] = (V1_BASE_TABLES, V2_USER_SCOPE)
SCHEMA_VERSION = len(MIGRATIONS)


def iso_utc(moment: datetime) -> str:
    """The fixed-width text form of a time, in UTC, that the database stores and compares."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def applied_migrations(conn: Connection) -> list[str]:
    """Names of the migrations already applied, oldest first (empty for a blank database)."""
    conn.execute(text(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at VARCHAR(32) NOT NULL)"
    ))
    rows = conn.execute(text("SELECT name FROM schema_migrations ORDER BY applied_at, name"))
    return [row[0] for row in rows]


def migrate(engine: Engine, begin: Callable[[], Connection], upto: int | None = None) -> list[str]:
    """Apply the pending migrations (the first ``upto`` only, for tests); returns the names applied."""
    wanted: Sequence[Migration] = MIGRATIONS[:upto] if upto is not None else MIGRATIONS
    applied: list[str] = []
    for migration in wanted:
        with begin() as conn, conn.begin():
            _lock(engine, conn)
            if migration.name in applied_migrations(conn):
                continue
            for statement in migration.statements:
                conn.execute(text(statement))
            conn.execute(
                text("INSERT INTO schema_migrations (name, applied_at) VALUES (:name, :at)"),
                {"name": migration.name, "at": iso_utc(datetime.now(UTC))},
            )
            applied.append(migration.name)
    return applied


def _lock(engine: Engine, conn: Connection) -> None:
    if engine.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})

"""Team deployment on real engines: a Chroma server and PostgreSQL, two app instances, per-user privacy.

The servers are started once per test session by the project's own scripts (``scripts/chroma.sh``,
``scripts/postgres.sh``), each in a private directory so a developer's servers and parallel runs are left
alone, and stopped afterwards. ``COACH_TEST_DATABASE_URL`` (set by ``scripts/test``) is reused instead of
starting a second cluster. A server that cannot be started skips the tests that need it, saying why (fails
them when ``COACH_REQUIRE_POSTGRES`` is set, as ``scripts/test`` does in CI).

The "app instances" are `coach` processes with their own data dirs (nothing shared but the two servers, as on
two hosts), on the fake chat model and fake embedder. Each test gets its own PostgreSQL schema.
Select with ``-m postgres`` (servers) or ``-m real_embeddings`` (the Chroma server vs embedded comparison).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings
from sqlalchemy import create_engine, text
from test_retrieval_quality import CASES
from test_sessions_support import PG_ENV, backend_database, server_unavailable

from coach.cli.doctor_cmd import diagnose
from coach.config import load_settings
from coach.corpus import add_user_document, remove_user_document
from coach.errors import IndexBusy, InputError, StorageError
from coach.identity import SignInRequired, resolve_user
from coach.index import PG_INDEX_LOCK, CorpusIndex
from coach.session_models import Session
from coach.sessions import DraftStore, SessionStore

REPO = Path(__file__).resolve().parent.parent
SCRIPT_TIMEOUT_S = 180
CLI_TIMEOUT_S = 180
DRAFT = "Our uptime was 99.9% in Q3. We migrated 12 servers to the new cluster. Next steps: patching.\n"


# ---- servers ---------------------------------------------------------------------------------------------
def _script(name: str, action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / "scripts" / name), action], env={**os.environ, **env}, text=True,
                          capture_output=True, timeout=SCRIPT_TIMEOUT_S, check=False)


def _start(name: str, env: dict[str, str]) -> str:
    """Start a server with its script and return the URL it prints; skip (or fail) with the script's reason."""
    try:
        done = _script(name, "start", env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        server_unavailable(f"scripts/{name} could not start a server: {exc}")
    if done.returncode != 0 or not done.stdout.strip():
        server_unavailable(f"scripts/{name} could not start a server: {done.stderr.strip()[-400:]}")
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server on 127.0.0.1 (``chroma run``), for the whole test session."""
    env = {"COACH_CHROMA_DIR": str(tmp_path_factory.mktemp("chroma") / "server")}
    started = time.perf_counter()
    url = _start("chroma.sh", env)
    print(f"\nchroma server up in {time.perf_counter() - started:.1f} s at {url}")
    yield url
    _script("chroma.sh", "stop", env)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A real PostgreSQL: ``COACH_TEST_DATABASE_URL``, else a private cluster from ``scripts/postgres.sh``."""
    if os.environ.get(PG_ENV):
        yield os.environ[PG_ENV]
        return
    # Directly under the temp dir: as root the cluster belongs to `postgres`, who cannot enter pytest's tmp dirs.
    env = {"COACH_PG_DIR": str(Path(tempfile.gettempdir()) / f"coach-team-pg-{uuid.uuid4().hex[:8]}")}
    started = time.perf_counter()
    url = _start("postgres.sh", env)
    print(f"\npostgresql up in {time.perf_counter() - started:.1f} s")
    yield url
    _script("postgres.sh", "stop", env)


@pytest.fixture
def database_url(pg_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A URL to a fresh, empty schema of the PostgreSQL server (dropped after the test)."""
    monkeypatch.setenv(PG_ENV, pg_server)
    with backend_database("postgres", tmp_path) as url:
        assert url is not None
        yield url


# ---- app instances ---------------------------------------------------------------------------------------
class Instance:
    """One app instance: `coach` processes with their own data dir, sharing only the servers."""

    def __init__(self, data_dir: Path, chroma: str, database: str) -> None:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("COACH_", "OPENAI_"))}
        self.env = {**keep, "COACH_DATA_DIR": str(data_dir), "COACH_BACKEND": "fake", "COACH_EMBEDDINGS": "fake",
                    "COACH_CHROMA_URL": chroma, "COACH_DATABASE_URL": database, "ANONYMIZED_TELEMETRY": "False",
                    "COACH_MODEL_DIR": os.environ.get("COACH_MODEL_DIR", "")}
        self.draft = data_dir.parent / f"{data_dir.name}-draft.txt"
        self.draft.write_text(DRAFT, encoding="utf-8")

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run `coach ARGS` in this instance."""
        return subprocess.run([sys.executable, "-m", "coach", *args], env=self.env, input=stdin, text=True,
                              capture_output=True, timeout=CLI_TIMEOUT_S, cwd=REPO, check=False)

    def json(self, *args: str) -> Any:
        """Run `coach ARGS` that must succeed and print JSON."""
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def _both(first: tuple[Instance, list[str]], second: tuple[Instance, list[str]]) -> list[Any]:
    """Run one command on each instance at the same time; both must succeed and print JSON."""
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(instance.json, *args) for instance, args in (first, second)]
        return [f.result() for f in futures]


@pytest.fixture
def instances(tmp_path: Path, chroma_url: str, database_url: str) -> tuple[Instance, Instance]:
    """Two app instances against the same Chroma server and PostgreSQL schema."""
    return (Instance(tmp_path / "app-1", chroma_url, database_url),
            Instance(tmp_path / "app-2", chroma_url, database_url))


def _refused(done: subprocess.CompletedProcess[str], session_id: str) -> None:
    """The call failed with the store's 'no such session' answer, and printed nothing of the session."""
    assert done.returncode != 0, done.stdout
    assert f"No session {session_id}" in done.stderr
    assert "uptime" not in done.stdout.lower()


@pytest.mark.postgres
def test_two_instances_share_servers_and_keep_users_apart(instances: tuple[Instance, Instance]) -> None:
    app1, app2 = instances
    started = time.perf_counter()
    built = app1.json("index", "--json")
    again = app2.json("index", "--json")
    assert built["chunks"] > 0 and again == {**built, "added": 0}  # the second instance finds the shared index
    index_s = time.perf_counter() - started

    started = time.perf_counter()
    rewrite_a, rewrite_b = _both((app1, ["rewrite", "--user", "alice", "--json", str(app1.draft)]),
                                 (app2, ["rewrite", "--user", "bob", "--json", str(app2.draft)]))
    chat_a, chat_b = _both((app2, ["chat", "--user", "alice", "-m", "How do I report uptime?", "--json"]),
                           (app1, ["chat", "--user", "bob", "-m", "How do I report uptime?", "--json"]))
    work_s = time.perf_counter() - started
    assert rewrite_a["feedback"] and rewrite_a["facts"]["missing"] == []
    a_ids = {rewrite_a["session_id"], chat_a["session_id"]}
    b_ids = {rewrite_b["session_id"], chat_b["session_id"]}

    lists = _both((app2, ["sessions", "list", "--user", "alice", "--json"]),
                  (app1, ["sessions", "list", "--user", "bob", "--json"]))
    assert [{s["id"] for s in found} for found in lists] == [a_ids, b_ids]
    everyone = app1.json("sessions", "list", "--json")  # an administrator without --user sees the team
    assert {s["id"] for s in everyone} == a_ids | b_ids

    started = time.perf_counter()
    b_rewrite, b_chat = rewrite_b["session_id"], chat_b["session_id"]
    attempts = [(b_id, [*args, "--user", "alice"]) for b_id, args in (
        (b_rewrite, ["sessions", "show", b_rewrite]), (b_chat, ["sessions", "show", b_chat, "--json"]),
        (b_rewrite, ["sessions", "export", b_rewrite]), (b_chat, ["sessions", "export", b_chat, "--format", "json"]),
        (b_rewrite, ["sessions", "delete", b_rewrite, "--yes"]), (b_chat, ["sessions", "delete", b_chat, "--yes"]))]
    with ThreadPoolExecutor(2) as pool:  # alice tries from both instances
        done = list(pool.map(lambda n: (app1, app2)[n % 2].run(*attempts[n][1]), range(len(attempts))))
    for (b_id, _), result in zip(attempts, done, strict=True):
        _refused(result, b_id)
    _refused(app2.run("chat", "--user", "alice", "--session", chat_b["session_id"], "-m", "go on"),
             chat_b["session_id"])
    exported = json.loads(app1.run("sessions", "export", "--all", "--format", "json", "--user", "alice").stdout)
    assert {s["id"] for s in exported["sessions"]} == a_ids
    assert app1.json("sessions", "stats", "--json", "--user", "alice")["sessions"] == 2
    cross_s = time.perf_counter() - started

    # An import that reuses bob's ids cannot take his sessions over.
    stolen = app2.run("sessions", "export", "--all", "--format", "json").stdout  # the admin's export: everyone
    assert app2.run("sessions", "import", "-", "--user", "alice", stdin=stolen).returncode != 0
    assert {s["id"] for s in app1.json("sessions", "list", "--user", "bob", "--json")} == b_ids
    assert app1.run("sessions", "delete", rewrite_a["session_id"], "--yes", "--user", "alice").returncode == 0
    assert {s["id"] for s in app2.json("sessions", "list", "--json")} == (a_ids | b_ids) - {rewrite_a["session_id"]}
    print(f"\nindex (2 instances) {index_s:.1f} s; 2 rewrites + 2 chats in parallel {work_s:.1f} s; "
          f"9 cross-user calls {cross_s:.1f} s")


def test_organisation_documents_survive_a_build_on_an_instance_without_them(chroma_url: str, tmp_path: Path) -> None:
    app1, app2 = (Instance(tmp_path / name, chroma_url, "") for name in ("app-1", "app-2"))  # SQLite each
    settings1, settings2 = (load_settings(data_dir=tmp_path / name, chroma_url=chroma_url)
                            for name in ("app-1", "app-2"))
    name = f"Clinic plan {uuid.uuid4().hex[:8]}.md"  # the collection outlives this test
    document = add_user_document(settings1, name, b"Every clinic opens on time: one scheduling system by May.\n")
    first = app1.json("index", "--json")
    second = app2.json("index", "--json")  # app-2 has no copy of the document on its disk
    assert second == {**first, "added": 0, "removed": 0}
    found = CorpusIndex(settings2).query("clinic scheduling system", k=2, doc_ids=[document.id])
    assert found and found[0].source == name

    remove_user_document(settings2, document.id)  # the explicit path works from any instance
    assert CorpusIndex(settings1).query("clinic scheduling system", doc_ids=[document.id]) == []
    with pytest.raises(InputError, match="no organisation document"):
        remove_user_document(settings2, document.id)


@pytest.fixture
def fresh_collection(chroma_url: str) -> Iterator[None]:
    """The fake embedder's collection on the shared server, emptied before and after the test."""
    host, port = chroma_url.rsplit("//", 1)[1].split(":")
    client = chromadb.HttpClient(host=host, port=int(port), settings=ChromaSettings(anonymized_telemetry=False))

    def drop() -> None:
        if "coach-corpus-fake" in {collection.name for collection in client.list_collections()}:
            client.delete_collection("coach-corpus-fake")

    drop()
    yield
    drop()


@pytest.mark.postgres
def test_two_instances_building_at_once_take_turns(instances: tuple[Instance, Instance],
                                                   fresh_collection: None) -> None:
    # Each instance has its own data dir (so its own index.lock) and the same library, as two hosts would have.
    for instance in instances:
        settings = load_settings(data_dir=instance.env["COACH_DATA_DIR"])
        for n in range(30):  # a bigger library makes the builds long enough to overlap
            add_user_document(settings, f"Handbook {n}.md", "\n\n".join(
                f"Section {n}.{i}: the service desk answers within {i + 2} hours and names an owner." * 6
                for i in range(12)).encode())
    reports = _both((instances[0], ["index", "--json"]), (instances[1], ["index", "--json"]))
    assert sorted(r["added"] for r in reports) == [0, reports[0]["chunks"]]  # the second found it all done
    assert reports[0]["chunks"] == reports[1]["chunks"] > 200
    settings = load_settings(**{k: instances[0].env[v] for k, v in (("data_dir", "COACH_DATA_DIR"),
                             ("chroma_url", "COACH_CHROMA_URL"), ("database_url", "COACH_DATABASE_URL"))})
    assert CorpusIndex(settings).stats() == {"documents": 35, "chunks": reports[0]["chunks"]}


@pytest.mark.postgres
def test_a_build_waits_for_the_team_wide_writer_lock(chroma_url: str, database_url: str, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "app", chroma_url=chroma_url, database_url=database_url)
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn, conn.begin():  # another instance's build, as PostgreSQL sees it
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_INDEX_LOCK})
            with pytest.raises(IndexBusy, match=r"Another process has been indexing the corpus"):
                CorpusIndex(settings, lock_timeout_s=0.5).build()
        assert CorpusIndex(settings, lock_timeout_s=5).build().chunks > 0  # free again once it commits
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_scoped_services_never_reach_another_users_sessions(database_url: str) -> None:
    settings = load_settings(database_url=database_url)
    alice, bob = SessionStore(settings, user_id="alice"), SessionStore(settings, user_id="bob")
    mine = alice.save(Session(type="rewrite", title="alice's report", draft="uptime 99.9%"))
    theirs = bob.save(Session(type="rewrite", title="bob's report", draft="uptime 99.5%"))
    assert [s.id for s in alice.list()] == [mine.id]
    assert alice.get(theirs.id) is None
    assert alice.delete(theirs.id) is False
    for change in (lambda: alice.set_rating(theirs.id, 1), lambda: alice.set_notes(theirs.id, "mine now"),
                   lambda: alice.export([theirs.id]), lambda: alice.save(theirs.model_copy(update={"title": "x"}))):
        with pytest.raises(StorageError):
            change()
    assert bob.get(theirs.id) == theirs  # untouched by every attempt
    assert alice.stats().sessions == 1

    DraftStore(settings, user_id="alice").save_draft("rewrite", "alice's draft")
    assert DraftStore(settings, user_id="bob").load_draft("rewrite") is None
    DraftStore(settings, user_id="bob").clear_draft("rewrite")
    assert DraftStore(settings, user_id="alice").load_draft("rewrite") == "alice's draft"


@pytest.mark.postgres
def test_doctor_reports_both_servers_without_the_password(chroma_url: str, database_url: str) -> None:
    report = diagnose(load_settings(backend="fake", chroma_url=chroma_url, database_url=database_url))
    assert report.chroma == {"url": chroma_url, "ok": True}
    assert report.database == {"kind": "postgresql", "ok": True}
    password = database_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password not in report.model_dump_json()


def test_doctor_reports_an_unreachable_chroma_server_and_sqlite(tmp_path: Path) -> None:
    report = diagnose(load_settings(backend="fake", chroma_url="http://127.0.0.1:9"))
    assert report.chroma == {"url": "http://127.0.0.1:9", "ok": False}
    assert report.database == {"kind": "sqlite", "ok": True}
    assert not report.ok and "Chroma server" in report.problems[0]


# ---- identity --------------------------------------------------------------------------------------------
def test_single_user_mode_without_identity() -> None:
    assert resolve_user(load_settings(), {}, ["mallory"]) is None  # a header counts only when configured


def test_trusted_header_names_the_user_and_is_required_once_configured() -> None:
    settings = load_settings(trusted_user_header="X-Forwarded-User")
    assert resolve_user(settings, {}, [" alice@example.com "]) == "alice@example.com"
    for values in ([], ["alice", "bob"], [" "], ["alice\x1b[2J"], ["a" * 300]):
        with pytest.raises(SignInRequired):
            resolve_user(settings, {}, values)


def test_oidc_sign_in_wins_and_is_required_once_configured() -> None:
    settings = load_settings(trusted_user_header="X-Forwarded-User")
    claims = {"is_logged_in": True, "email": "alice@example.com", "sub": "123"}
    assert resolve_user(settings, claims, ["bob"]) == "alice@example.com"
    assert resolve_user(settings, {"is_logged_in": True, "sub": "123"}, []) == "123"
    for signed_out in ({"is_logged_in": False}, {"is_logged_in": True}):
        with pytest.raises(SignInRequired):
            resolve_user(settings, signed_out, ["bob"])


def test_the_team_extra_pins_an_authlib_that_st_login_accepts() -> None:
    from streamlit.auth_util import is_authlib_installed

    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    pin = next(spec for spec in extras["team"] if spec.lower().startswith("authlib=="))
    assert pin in (REPO / "requirements.lock").read_text(encoding="utf-8").splitlines()
    import authlib  # scripts/test installs the team extra

    assert authlib.__version__ == pin.split("==")[1] and is_authlib_installed()


def test_cli_user_comes_from_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACH_USER", "carol")
    assert load_settings().user == "carol"
    assert load_settings(user="dave").user == "dave"


# ---- retrieval through the Chroma server -----------------------------------------------------------------
@pytest.mark.real_embeddings
def test_chroma_server_gives_the_embedded_top_three(chroma_url: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACH_EMBEDDINGS", "minilm")
    embedded = CorpusIndex(load_settings(data_dir=tmp_path / "embedded"))
    server = CorpusIndex(load_settings(data_dir=tmp_path / "server", chroma_url=chroma_url))
    timings = {}
    for name, index in (("embedded", embedded), ("server", server)):
        started = time.perf_counter()
        index.build()
        timings[name] = time.perf_counter() - started
    assert server.stats() == embedded.stats()
    differences = []
    for question, _ in CASES:
        local, remote = embedded.query(question, k=3), server.query(question, k=3)
        if [p.chunk_id for p in local] != [p.chunk_id for p in remote]:
            differences.append((question, [p.chunk_id for p in local], [p.chunk_id for p in remote]))
        assert [p.score for p in remote] == pytest.approx([p.score for p in local], abs=1e-3)
    print(f"\nbuild: embedded {timings['embedded']:.1f} s, server {timings['server']:.1f} s; "
          f"{len(CASES) - len(differences)}/{len(CASES)} identical top-3")
    assert differences == []


# ---- two Streamlit instances behind a (simulated) trusted proxy --------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGE_WAIT_MS = 90_000


def _open_sessions(browser: Any, url: str, user: str | None) -> Any:
    """The Sessions page as ``user``: the browser sends the header the proxy would set (on the websocket too)."""
    headers = {"X-Forwarded-User": user} if user else {}
    page = browser.new_context(extra_http_headers=headers).new_page()
    page.set_default_timeout(PAGE_WAIT_MS)
    page.goto(f"{url}/sessions")
    return page


@pytest.mark.browser
@pytest.mark.postgres
def test_two_streamlit_instances_show_each_user_only_their_sessions(
    chroma_url: str, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from browser_support import serve_app
    from playwright.sync_api import sync_playwright

    settings = load_settings(database_url=database_url)
    SessionStore(settings, user_id="alice").save(Session(type="rewrite", title="Alice uptime report", draft="a"))
    SessionStore(settings, user_id="bob").save(Session(type="rewrite", title="Bob vendor renewal", draft="b"))
    for name, value in (("COACH_CHROMA_URL", chroma_url), ("COACH_DATABASE_URL", database_url),
                        ("COACH_TRUSTED_USER_HEADER", "X-Forwarded-User")):
        monkeypatch.setenv(name, value)
    started = time.perf_counter()
    with serve_app(tmp_path / "app-1", tmp_path / "app-1.log") as url1, \
            serve_app(tmp_path / "app-2", tmp_path / "app-2.log") as url2, sync_playwright() as playwright:
        up_s = time.perf_counter() - started
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--headless", "--no-sandbox", "--disable-gpu"])
        for url, user, own, other in ((url1, "alice", "Alice uptime report", "Bob vendor renewal"),
                                      (url2, "bob", "Bob vendor renewal", "Alice uptime report")):
            page = _open_sessions(browser, url, user)
            page.get_by_text(own).first.wait_for()
            assert page.get_by_text(other).count() == 0
        anonymous = _open_sessions(browser, url1, None)
        anonymous.get_by_text("This request has no X-Forwarded-User header.").wait_for()
        assert anonymous.get_by_text("Alice uptime report").count() == 0
        assert anonymous.get_by_text("Bob vendor renewal").count() == 0
        browser.close()
    print(f"\ntwo streamlit instances up in {up_s:.1f} s; browser checks {time.perf_counter() - started - up_s:.1f} s")

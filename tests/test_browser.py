"""End to end in Debian's Chromium: rewrite a draft, find it in Sessions, export it, chat, add a document.

Drives ``streamlit run app.py`` (fake chat model, fake embedder, a temp data dir) with Playwright and the
system ``chromium`` binary (no browser download). Screenshots at 1280x800 go to ``test-artifacts/``.
Every request the page makes (HTTP and websocket) is recorded: the app must call nowhere but itself, so an
external image in model output, a font or a favicon fetched from the internet fails the test even on a
machine whose network would have let it load.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser_support import REPO, serve_app

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "test-artifacts"
DRAFT = ("Q3 infrastructure status: uptime was 99.9% across the ERP estate. Unscheduled downtime went from "
         "10 hours to 8 hours. MTTR improved after the SAN migration. Next step: patch window on 14 March.")
WAIT_MS = 60_000
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SEEN: list[str] = []  # every URL the page requested, so a test can show the recording works

if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ARTIFACTS.mkdir(exist_ok=True)
    with serve_app(tmp_path_factory.mktemp("coach-data"), ARTIFACTS / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser_page(app_url: str) -> Iterator[tuple[Any, list[str]]]:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
        page.on("request", lambda r: check_local(r.url, problems))
        page.on("websocket", lambda w: check_local(w.url, problems))
        page.set_default_timeout(WAIT_MS)
        page.goto(app_url)
        yield page, problems
        browser.close()


def check_local(url: str, problems: list[str]) -> None:
    """Record a request to anywhere but this machine's app (data: and blob: URLs stay in the page)."""
    SEEN.append(url)
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob"):
        return
    if parts.scheme not in ("http", "https", "ws", "wss") or parts.hostname not in LOCAL_HOSTS:
        problems.append(f"request to {url}")


def test_check_local_flags_any_other_host() -> None:
    problems: list[str] = []
    for url in ("http://127.0.0.1:8501/_stcore/health", "ws://localhost:8501/_stcore/stream", "data:image/png;x",
                "https://fonts.gstatic.com/s/x.woff2", "http://127.0.0.1.evil.example/p.png", "file:///etc/passwd"):
        check_local(url, problems)
    assert problems == ["request to https://fonts.gstatic.com/s/x.woff2",
                        "request to http://127.0.0.1.evil.example/p.png", "request to file:///etc/passwd"]


def settle(page: Any) -> None:
    """Wait until Streamlit has finished the current run."""
    page.wait_for_timeout(300)
    page.wait_for_selector('[data-testid="stStatusWidget"] >> text=Running', state="detached")
    page.wait_for_timeout(300)


def shot(page: Any, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def scroll_to(page: Any, locator: Any) -> None:
    """Scroll Streamlit's main area so ``locator`` is at the top of the window."""
    locator.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(400)


def go(page: Any, link: str) -> None:
    page.get_by_role("link", name=link, exact=True).click()
    settle(page)


def test_1_rewrite_a_draft(browser_page: tuple[Any, list[str]]) -> None:
    page, problems = browser_page
    page.get_by_role("heading", name="Rewrite a draft").wait_for()
    page.get_by_role("button", name="Rewrite", exact=True).wait_for(state="visible")
    page.get_by_test_id("stFileUploaderDropzone").wait_for(state="visible")
    settle(page)  # the first run has finished: no grey skeletons in the screenshot
    shot(page, "01-rewrite-empty")
    assert any(urlsplit(url).path.startswith("/_stcore/") for url in SEEN)  # requests are being recorded
    page.get_by_label("Your draft").fill(DRAFT)
    page.get_by_role("button", name="Rewrite", exact=True).click()
    page.get_by_role("tab", name=re.compile(r"^Feedback \(\d+\)")).wait_for()
    settle(page)
    assert page.get_by_text("Your draft", exact=True).count() >= 1
    assert page.get_by_text("What changed:").count() >= 1
    scroll_to(page, page.get_by_role("heading", name="Your draft", exact=True).last)
    shot(page, "02-rewrite-result")
    scroll_to(page, page.get_by_role("tab", name=re.compile(r"^Feedback")))
    shot(page, "03-rewrite-feedback")
    page.get_by_role("tab", name="Scores").click()
    page.wait_for_timeout(500)
    shot(page, "04-rewrite-scores")
    assert not problems, problems


def test_2_find_and_export_it_in_sessions(browser_page: tuple[Any, list[str]]) -> None:
    page, problems = browser_page
    go(page, "Sessions")
    page.get_by_role("heading", name="Sessions").wait_for()
    # The table cells are drawn on a canvas (their DOM copies stay hidden): wait for a visible mention.
    page.get_by_text("Q3 infrastructure status").filter(visible=True).first.wait_for()
    page.get_by_role("textbox", name="Search").wait_for()
    page.wait_for_timeout(800)
    shot(page, "05-sessions")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export this session (Markdown)").click()
    exported = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert "Q3 infrastructure status" in exported and "## Draft" in exported
    page.get_by_role("button", name="Prepare an export of all matching sessions").click()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export all matching (JSON)").click()
    assert "Q3 infrastructure status" in Path(download_info.value.path()).read_text(encoding="utf-8")
    assert not problems, problems


def test_3_chat_one_turn(browser_page: tuple[Any, list[str]]) -> None:
    page, problems = browser_page
    go(page, "Chat")
    page.get_by_role("heading", name="Chat and rehearse").wait_for()
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill("How should I report IT metrics to the CFO?")
    box.press("Enter")
    page.locator('[data-testid="stChatMessage"]').nth(1).wait_for()
    settle(page)
    assert page.locator('[data-testid="stChatMessage"]').count() == 2
    shot(page, "06-chat")
    assert not problems, problems


def test_4_add_a_document_in_the_library(browser_page: tuple[Any, list[str]]) -> None:
    page, problems = browser_page
    go(page, "Library")
    page.get_by_role("heading", name="Library").wait_for()
    page.locator('input[type="file"]').set_input_files(files=[{
        "name": "strategy.md", "mimeType": "text/markdown",
        "buffer": b"# Strategy 2026\n\nGrow online sales by 20% in 2026. IT serves the sales team first.\n"}])
    page.get_by_role("button", name="Add to the library").click()
    page.get_by_text("Added strategy").wait_for()
    settle(page)
    shot(page, "07-library")
    page.get_by_role("tab", name="Principles").click()
    page.wait_for_timeout(500)
    shot(page, "08-library-principles")
    assert not problems, problems


def test_5_settings(browser_page: tuple[Any, list[str]]) -> None:
    page, problems = browser_page
    go(page, "Settings")
    page.get_by_role("heading", name="Settings").wait_for()
    page.get_by_role("button", name="Test connection").click()
    page.get_by_text("answered in").wait_for()
    shot(page, "09-settings")
    assert not problems, problems

"""Refresh docs/screenshot.png: the Rewrite page's result on the embedded model, in Debian's Chromium.

    flock /tmp/coach-model.lock .venv/bin/python scripts/readme_screenshot.py

Starts the app headless on a throwaway data dir (the joined model is reused from COACH_MODEL_DIR if set),
rewrites a short incident email for the CFO and saves the result view at 1280x800. Read the picture before
committing it: it shows what the model wrote today.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
PORT = 8599
DRAFT = """Hi all,

On March 3 the order API was down for 2 hours and 15 minutes, from 09:10 to 11:25 UTC. About 35% of checkout \
requests failed with HTTP 503 errors during that window. Root cause: a TLS certificate on the load balancer \
expired. We renewed the cert and added expiry monitoring, so the same failure will alert us 30 days ahead next time.

Thanks,
Sam
"""


def main() -> None:
    data = tempfile.mkdtemp(prefix="coach-shot-")
    env = {**os.environ, "COACH_DATA_DIR": data, "ANONYMIZED_TELEMETRY": "False"}
    for key in ("OPENAI_API_KEY", "COACH_BASE_URL", "COACH_BACKEND"):
        env.pop(key, None)
    app = subprocess.Popen([str(REPO / ".venv/bin/streamlit"), "run", "app.py", "--server.headless", "true",
                            "--server.port", str(PORT)], cwd=REPO, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(300_000)
            page.goto(f"http://127.0.0.1:{PORT}")
            page.get_by_role("heading", name="Rewrite a draft").wait_for()
            page.get_by_label("Your draft").fill(DRAFT)
            page.get_by_role("button", name="Rewrite", exact=True).click()
            page.get_by_role("tab", name=re.compile(r"^Feedback \(\d+\)")).wait_for()
            page.wait_for_timeout(2000)
            page.get_by_role("heading", name="Your draft", exact=True).last.evaluate(
                "e => e.scrollIntoView({block: 'start'})")
            page.mouse.wheel(0, -110)
            page.wait_for_timeout(800)
            page.screenshot(path=str(REPO / "docs" / "screenshot.png"))
            browser.close()
    finally:
        app.terminate()
        app.wait(20)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()

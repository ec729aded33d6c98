"""Support for the browser tests: serve the app headless on a free 127.0.0.1 port, on the fake model.

Run as a script (``python tests/browser_support.py PORT``) it starts Streamlit in this process. While
``coach.rewrite`` does not exist yet, the test stand-in ``StubRewrite`` (tests/test_app_support.py) is
installed in its place so the whole flow can still be driven; once the service lands, the real one runs
on the fake chat model.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def install_rewrite_stand_in() -> bool:
    """Use the stub rewrite service when the real one is missing; True if it was installed."""
    try:
        import coach.rewrite  # noqa: F401
    except ModuleNotFoundError as missing:
        if missing.name != "coach.rewrite":
            raise
        sys.path.insert(0, str(Path(__file__).parent))
        from test_app_support import StubRewrite

        sys.modules["coach.rewrite"] = type(sys)("coach.rewrite")
        sys.modules["coach.rewrite"].rewrite_draft = StubRewrite()  # type: ignore[attr-defined]
        return True
    return False


@contextmanager
def serve_app(data_dir: Path, log_path: Path) -> Iterator[str]:
    """The app at its URL, served by a child process that is stopped afterwards."""
    port = free_port()
    env = {**os.environ, "COACH_BACKEND": "fake", "COACH_EMBEDDINGS": "fake", "COACH_DATA_DIR": str(data_dir),
           "ANONYMIZED_TELEMETRY": "False"}
    env.pop("OPENAI_API_KEY", None)
    with open(log_path, "wb") as log:
        child = subprocess.Popen([sys.executable, __file__, str(port)], cwd=REPO, env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, child)
            yield url
        finally:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def wait_until_up(url: str, child: subprocess.Popen[bytes]) -> None:
    """Poll Streamlit's health endpoint until it answers."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {child.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer at {url} within {START_TIMEOUT_S:.0f} s")


def main(port: int) -> None:
    """Serve app.py on ``port`` (headless, loopback, no usage statistics: .streamlit/config.toml)."""
    from streamlit.web import cli

    install_rewrite_stand_in()
    sys.argv = ["streamlit", "run", str(REPO / "app.py"), "--server.port", str(port),
                "--server.address", "127.0.0.1", "--server.headless", "true",
                "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    cli.main()


if __name__ == "__main__":
    main(int(sys.argv[1]))

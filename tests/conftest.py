"""Shared fixtures: every test gets its own data dir, and real model requests fail unless a test opts in.

Mark a test ``@pytest.mark.real_model`` to let it run the embedded chat model (slow, offline) and
``@pytest.mark.real_embeddings`` to use the packaged ONNX embedding model instead of the fake embedder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_stub import OpenAIStub

REPO = Path(__file__).resolve().parent.parent
# The joined embedded-model file is big (1.1 GB): tests share one copy instead of one per data dir.
SHARED_MODEL_DIR = REPO / ".coach-data" / "models"


@pytest.fixture(autouse=True)
def isolated_environment(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A fresh data dir, no keys or servers from the developer's shell, and no real model requests."""
    for name in ("OPENAI_API_KEY", "COACH_BASE_URL", "COACH_MODEL", "COACH_BACKEND", "COACH_CHROMA_URL",
                 "COACH_DATABASE_URL", "OPENAI_BASE_URL", "COACH_API_KEY", "COACH_EMBEDDINGS"):
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "coach-data"
    monkeypatch.setenv("COACH_DATA_DIR", str(data_dir))
    monkeypatch.setenv("COACH_MODEL_DIR", str(SHARED_MODEL_DIR))
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    if request.node.get_closest_marker("real_embeddings") is None:
        monkeypatch.setenv("COACH_EMBEDDINGS", "fake")
    yield data_dir


@pytest.fixture(autouse=True)
def block_real_model_requests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to build a real chat model fails loudly unless the test is marked ``real_model``."""
    from coach import models

    allowed = request.node.get_closest_marker("real_model") is not None
    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", allowed)


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    """A misbehaving-on-cue OpenAI-compatible server on 127.0.0.1 (see tests/openai_stub.py)."""
    stub = OpenAIStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def allow_stub_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the chat-model factory build a client; use only with URLs that point at ``openai_stub``."""
    from coach import models

    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", True)

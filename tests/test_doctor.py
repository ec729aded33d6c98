"""`coach doctor`: one report, never a key, exit 1 with a one-line reason when something is wrong."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from openai_stub import OpenAIStub, status

from coach import local_model
from coach.cli import main
from coach.config import load_settings
from coach.errors import ConfigError, ModelFileError

SENTINEL_KEY = "sk-SENTINEL-doctor-0123456789"


def run_doctor(capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str, str]:
    code = main(["doctor", *flags])
    out, err = capsys.readouterr()
    return code, out, err


def test_fake_backend_is_ok_with_every_field(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACH_BACKEND", "fake")
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    code, out, err = run_doctor(capsys, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and err == ""
    assert {"ok", "backend", "model", "base_url", "corpus", "data_dir", "model_file_verified", "ping_ms"} <= set(report)
    assert report["backend"] == "fake" and report["model_file_verified"] is None
    assert isinstance(report["ping_ms"], float)
    assert report["corpus"] is None or set(report["corpus"]) == {"documents", "chunks"}
    assert SENTINEL_KEY not in out + err


@pytest.mark.usefixtures("allow_stub_requests")
def test_unreachable_server_exits_1_with_one_line(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("COACH_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("COACH_MODEL", "llama3")
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    monkeypatch.setenv("COACH_MAX_RETRIES", "0")
    code, out, err = run_doctor(capsys, "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False and report["ping_ms"] is None
    assert report["base_url"] == f"http://127.0.0.1:{port}/v1"
    assert err.count("\n") == 1 and err.startswith(f"coach: Cannot reach the model server at 127.0.0.1:{port}")
    assert SENTINEL_KEY not in out + err


@pytest.mark.usefixtures("allow_stub_requests")
def test_ping_is_a_one_token_completion(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                        openai_stub: OpenAIStub) -> None:
    monkeypatch.setenv("COACH_BASE_URL", openai_stub.url)
    monkeypatch.setenv("COACH_MODEL", "stub-model")
    code, out, _ = run_doctor(capsys, "--json")
    report = json.loads(out)
    assert code == 0 and report["ping_ms"] > 0 and report["model"] == "stub-model"
    assert openai_stub.requests[0].body["max_tokens"] == 1


def test_corrupt_model_file_is_reported_without_loading(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def corrupt(*args: object, **kwargs: object) -> None:
        raise ModelFileError("The embedded model file is corrupt.", hint="Delete it; it will be rebuilt.")

    monkeypatch.setattr(local_model, "ensure_model_file", corrupt)
    code, out, err = run_doctor(capsys, "--json")
    report = json.loads(out)
    assert code == 1 and report["backend"] == "local" and report["model_file_verified"] is False
    assert report["ping_ms"] is None  # the model was not started (it would raise: requests are blocked here)
    assert err == "coach: The embedded model file is corrupt. Delete it; it will be rebuilt.\n"


def test_missing_index_module_degrades_to_a_warning(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACH_BACKEND", "fake")
    monkeypatch.setitem(sys.modules, "coach.index", None)
    code, out, _ = run_doctor(capsys, "--json")
    report = json.loads(out)
    assert code == 0 and report["corpus"] is None
    assert any("index is not available" in warning for warning in report["warnings"])


def test_human_report_names_the_problem(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("COACH_BACKEND", "fake")
    monkeypatch.setenv("COACH_DATA_DIR", str(blocker / "data"))
    monkeypatch.setitem(sys.modules, "coach.index", None)
    code, out, err = run_doctor(capsys)
    assert code == 1 and "NOT OK" in out and "not writable" in out
    assert err.startswith("coach: The data folder") and "COACH_DATA_DIR" in err


@pytest.mark.usefixtures("allow_stub_requests")
def test_an_unknown_model_name_is_one_line_naming_the_setting(capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              openai_stub: OpenAIStub) -> None:
    openai_stub.enqueue(*[status(404)] * 3)
    monkeypatch.setenv("COACH_BASE_URL", openai_stub.url)
    monkeypatch.setenv("COACH_MODEL", "llama-9000")
    code, out, err = run_doctor(capsys)
    assert code == 1 and "NOT OK" in out
    assert err == (f"coach: The model server at {openai_stub.url.split('//')[1].split('/')[0]} does not serve the "
                   "model 'llama-9000' (HTTP 404). Set COACH_MODEL to a model that server has.\n")


@pytest.mark.parametrize("url", ["localhost:11434/v1", "http:///v1", "ftp://models.example.com/v1"])
def test_a_base_url_without_scheme_or_host_is_a_config_error_naming_it(
        url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="COACH_BASE_URL"):
        load_settings(base_url=url)
    monkeypatch.setenv("COACH_BASE_URL", url)
    code, out, err = run_doctor(capsys, "--json")
    assert code == 2 and out == ""
    assert err == (f"coach: COACH_BASE_URL={url!r} is not an http(s) URL with a host. Use e.g. "
                   "COACH_BASE_URL=http://localhost:11434/v1 (scheme, host, port and path).\n")


@pytest.mark.usefixtures("allow_stub_requests")
@pytest.mark.parametrize("flags", [(), ("--json",)])
def test_server_urls_are_reported_without_their_user_and_password(
        flags: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as model_sock, socket.socket() as chroma_sock:
        model_sock.bind(("127.0.0.1", 0))
        chroma_sock.bind(("127.0.0.1", 0))
        model_port, chroma_port = model_sock.getsockname()[1], chroma_sock.getsockname()[1]
    monkeypatch.setenv("COACH_BASE_URL", f"http://vllm-user:PA55-model@127.0.0.1:{model_port}/v1")
    monkeypatch.setenv("COACH_CHROMA_URL", f"http://chroma-admin:PA55-chroma@127.0.0.1:{chroma_port}")
    monkeypatch.setenv("COACH_MODEL", "llama3")
    monkeypatch.setenv("COACH_MAX_RETRIES", "0")
    code, out, err = run_doctor(capsys, *flags)
    assert code == 1
    for secret in ("PA55", "vllm-user", "chroma-admin"):
        assert secret not in out + err
    assert f"http://127.0.0.1:{model_port}/v1" in out and f"http://127.0.0.1:{chroma_port}" in out
    if flags:
        report = json.loads(out)
        assert report["chroma"] == {"url": f"http://127.0.0.1:{chroma_port}", "ok": False}

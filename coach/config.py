"""Settings from explicit values, Streamlit secrets and the environment, in that order.

One resolver for everything, keys included: ``load_settings(openai_api_key=...)`` beats
``.streamlit/secrets.toml`` which beats the environment. Keys are ``SecretStr`` so they never show in a
repr, a log or a saved session.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, SecretStr

from coach.errors import ConfigError

Backend = Literal["local", "openai", "compatible", "fake"]
LocalModelName = Literal["qwen-1.5b", "qwen-0.5b"]

ENV_NAMES: dict[str, str] = {
    "data_dir": "COACH_DATA_DIR",
    "backend": "COACH_BACKEND",
    "openai_api_key": "OPENAI_API_KEY",
    "base_url": "COACH_BASE_URL",
    "compatible_api_key": "COACH_API_KEY",
    "model": "COACH_MODEL",
    "chroma_url": "COACH_CHROMA_URL",
    "database_url": "COACH_DATABASE_URL",
    "local_model": "COACH_LOCAL_MODEL",
    "threads": "COACH_THREADS",
    "request_timeout_s": "COACH_TIMEOUT",
    "max_retries": "COACH_MAX_RETRIES",
    "trusted_user_header": "COACH_TRUSTED_USER_HEADER",
    "user": "COACH_USER",
}

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)?[^/?#@]*@")


def redact_url(url: str) -> str:
    """``url`` without its ``user:password@`` part: safe to print, log or report."""
    return _USERINFO.sub(r"\1", url)


def _check_http_url(name: str, url: str | None) -> None:
    """Refuse a server URL without an http(s) scheme or a host (it would fail later, far less clearly)."""
    if url is None:
        return
    parsed = urlparse(str(url))
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"{name}={redact_url(url)!r} is not an http(s) URL with a host.",
                          hint=f"Use e.g. {name}=http://localhost:11434/v1 (scheme, host, port and path).")


def default_data_dir() -> Path:
    """A per-user data folder (XDG on Linux, Application Support on macOS, AppData on Windows)."""
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "coach"
    if os.uname().sysname == "Darwin":
        return Path.home() / "Library" / "Application Support" / "coach"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "coach"


class Settings(BaseModel):
    """Everything configurable, resolved once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path
    backend: Backend
    openai_api_key: SecretStr | None = None
    base_url: str | None = None
    compatible_api_key: SecretStr | None = None  # a key for a custom server; the OpenAI key never goes there
    model: str | None = None
    chroma_url: str | None = None
    database_url: SecretStr | None = None
    local_model: LocalModelName = "qwen-1.5b"
    threads: int = 2
    request_timeout_s: float = 120.0
    max_retries: int = 2
    # Only behind a reverse proxy that sets this header itself (see coach/identity.py and docs/deployment.md).
    trusted_user_header: str | None = None
    user: str | None = None  # CLI scoping (`--user`/COACH_USER): act on this user's sessions only
    corpus_dir: Path = PROJECT_ROOT / "corpus"
    prompts_dir: Path = PROJECT_ROOT / "prompts"

    @property
    def model_label(self) -> str:
        """A human name for the chat model in use (never contains a key)."""
        if self.backend == "local":
            return f"embedded {self.local_model}"
        if self.backend == "fake":
            return "fake"
        return self.model or "gpt-4o-mini"

    @property
    def user_docs_dir(self) -> Path:
        """Where the organisation's own documents are stored."""
        return self.data_dir / "documents"


def _streamlit_secrets(path: Path | None = None) -> dict[str, Any]:
    """Read ``.streamlit/secrets.toml`` without importing Streamlit (the CLI must not need it)."""
    local = [Path.cwd() / ".streamlit" / "secrets.toml", PROJECT_ROOT / ".streamlit" / "secrets.toml"]
    candidates = [path] if path else local
    for candidate in candidates:
        if candidate and candidate.is_file():
            try:
                return tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"Cannot read {candidate}: {exc}.", hint="Fix or remove that file.") from None
    return {}


def _lookup(field: str, explicit: dict[str, Any], secrets: dict[str, Any]) -> Any:
    if explicit.get(field) not in (None, ""):
        return explicit[field]
    env_name = ENV_NAMES.get(field)
    for key in (field, env_name):
        if key and secrets.get(key) not in (None, ""):
            return secrets[key]
    value = os.environ.get(env_name) if env_name else None
    return value if value not in (None, "") else None


def _choose_backend(requested: str | None, key: Any, base_url: Any) -> Backend:
    if requested:
        if requested not in ("local", "openai", "compatible", "fake"):
            raise ConfigError(
                f"COACH_BACKEND={requested!r} is not a backend.", hint="Use local, openai or compatible."
            )
        if requested == "openai" and base_url:
            return "compatible"
        return requested  # type: ignore[return-value]
    if base_url:
        return "compatible"
    if key:
        return "openai"
    return "local"


def load_settings(secrets_path: Path | None = None, **explicit: Any) -> Settings:
    """Resolve settings: explicit keyword values, then Streamlit secrets, then environment variables."""
    secrets = _streamlit_secrets(secrets_path)
    values = {field: _lookup(field, explicit, secrets) for field in ENV_NAMES}
    values["backend"] = _choose_backend(values["backend"], values["openai_api_key"], values["base_url"])
    values["data_dir"] = Path(values["data_dir"]).expanduser() if values["data_dir"] else default_data_dir()
    if values["backend"] == "openai" and not values["openai_api_key"]:
        raise ConfigError(
            "COACH_BACKEND=openai needs an API key.",
            hint="Set OPENAI_API_KEY, or unset COACH_BACKEND to use the embedded model.",
        )
    _check_http_url("COACH_BASE_URL", values["base_url"])
    for field in ("corpus_dir", "prompts_dir"):
        if explicit.get(field):
            values[field] = Path(explicit[field])
    try:
        return Settings(**{k: v for k, v in values.items() if v is not None})
    except ValueError as exc:
        first = str(exc).splitlines()[1:3]
        raise ConfigError(f"Invalid setting: {' '.join(first)}.") from None

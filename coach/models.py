"""The chat-model seam: one factory for every backend, one ``generate`` that streams and speaks to users.

Every backend is a LangChain ``ChatOpenAI`` pointed at an OpenAI-compatible endpoint (OpenAI itself, any
``COACH_BASE_URL``, or the embedded llama.cpp server on 127.0.0.1), or the scripted ``FakeChatModel``.

Decisions that live here:
- Retries are declared in one place, ``generate``: the OpenAI client is built with ``max_retries=0`` and
  ``generate`` retries connection failures, 5xx and 429 up to ``settings.max_retries`` times, only before the
  first token (a half-streamed answer is never silently restarted). Timeouts are not retried, so a timeout
  reaches the user within ``settings.request_timeout_s``. Every ``ModelError`` carries ``attempts``.
- ``timeout_s`` is a deadline for the whole ``generate`` call, retries included, checked on every streamed
  chunk: httpx's timeout only bounds each socket read, so a server trickling tokens would otherwise never
  time out. The embedded model gets ``LOCAL_TIMEOUT_S`` unless ``COACH_TIMEOUT`` is set: on two busy cores
  one chat answer (a 3,200-token prompt read at ~70 tokens/s, then 300 tokens at ~26/s) has taken 146 s,
  while a whole rewrite takes about 20 s on an idle machine.
- The OpenAI key goes to api.openai.com only (pinned, so ``OPENAI_BASE_URL`` cannot redirect it). A custom
  ``base_url`` gets a key only if one was configured for it (``settings.compatible_api_key`` when present),
  otherwise a placeholder.
- A JSON schema travels as ``response_format`` inside ``extra_body`` so LangChain streams it like any answer
  (its own ``response_format`` path switches to a parse helper with different failure modes); the wire body
  is the same. llama.cpp-only sampling (``local_extra``) is sent to the embedded backend only.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from coach.config import Settings
from coach.errors import (
    AuthRejected,
    CoachError,
    ConfigError,
    ModelError,
    ModelOutputError,
    ModelUnavailable,
    RateLimited,
)

log = logging.getLogger(__name__)

ALLOW_MODEL_REQUESTS: bool = True
"""Tests set this to False: building any real (non-fake) chat model then raises."""

OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
PLACEHOLDER_KEY = "not-needed"
LOCAL_TIMEOUT_S = 300.0
LOCAL_EXTRA_KEYS = frozenset({
    "top_k", "min_p", "dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n",
    "dry_sequence_breakers", "cache_prompt", "repeat_penalty", "repeat_last_n",
})
# llama.cpp's defaults differ from other runtimes', so the embedded backend always gets these explicitly.
DEFAULT_LOCAL_SAMPLING: dict[str, Any] = {"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0, "cache_prompt": True}


class GenerationOptions(BaseModel):
    """Sampling and output constraints for one request; always sent explicitly."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(default=512, ge=1)
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    seed: int | None = 42
    stop: list[str] | None = None
    json_schema: dict[str, Any] | None = None
    schema_name: str = "answer"
    local_extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("local_extra")
    @classmethod
    def _known_local_extra(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - LOCAL_EXTRA_KEYS
        if unknown:
            raise ValueError(f"unknown llama.cpp sampling option(s): {', '.join(sorted(unknown))}")
        return value


class Generation(BaseModel):
    """One finished answer with its timings and token counts."""

    text: str
    finish_reason: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    first_token_ms: float | None = None
    total_ms: float
    model: str


class ModelProfile(BaseModel):
    """Per-model facts the services adapt to (the embedded model gets the small-model strategy)."""

    model_config = ConfigDict(frozen=True)

    backend: Literal["local", "openai", "compatible", "fake"]
    name: str
    supports_json_schema: bool
    small: bool


@dataclass(frozen=True)
class ChatModelHandle:
    """A chat model with its profile and the retry/timeout policy ``generate`` applies."""

    model: BaseChatModel
    profile: ModelProfile
    base_url: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 2

    @property
    def host(self) -> str:
        """The server's host:port for messages (never a key)."""
        return _host(self.base_url) if self.base_url else self.profile.name


def _host(url: str) -> str:
    """host:port of ``url``, without any user:password@ it carries."""
    return urlparse(url).netloc.rpartition("@")[2]


def open_chat_model(settings: Settings) -> ChatModelHandle:
    """The chat model ``settings`` selects; the embedded server is started (once) when needed."""
    if settings.backend == "fake":
        return _fake_handle(settings)
    if not ALLOW_MODEL_REQUESTS:
        raise RuntimeError(
            f"Real model requests are disabled (backend {settings.backend!r}): coach.models.ALLOW_MODEL_REQUESTS "
            "is False. Mark the test @pytest.mark.real_model or use COACH_BACKEND=fake."
        )
    if settings.backend == "openai":
        return _openai_handle(settings)
    if settings.backend == "compatible":
        return _compatible_handle(settings)
    return _local_handle(settings)


def _fake_handle(settings: Settings) -> ChatModelHandle:
    from coach.testing import FakeChatModel

    profile = ModelProfile(backend="fake", name="fake", supports_json_schema=True, small=False)
    return ChatModelHandle(FakeChatModel(), profile, None, settings.request_timeout_s, settings.max_retries)


def _chat_openai(settings: Settings, model: str, base_url: str, api_key: str, **extra: Any) -> BaseChatModel:
    """A streaming ``ChatOpenAI`` with an explicit timeout and no library retries (``generate`` retries)."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=model, base_url=base_url, api_key=SecretStr(api_key), timeout=settings.request_timeout_s,
        max_retries=0, stream_usage=True, **extra,
    )


def _openai_handle(settings: Settings) -> ChatModelHandle:
    if settings.openai_api_key is None:
        raise ConfigError("The openai backend needs an API key.", hint="Set OPENAI_API_KEY.")
    name = settings.model or DEFAULT_OPENAI_MODEL
    model = _chat_openai(settings, name, OPENAI_BASE_URL, settings.openai_api_key.get_secret_value())
    profile = ModelProfile(backend="openai", name=name, supports_json_schema=True, small=False)
    return ChatModelHandle(model, profile, OPENAI_BASE_URL, settings.request_timeout_s, settings.max_retries)


def _compatible_handle(settings: Settings) -> ChatModelHandle:
    if not settings.base_url:
        raise ConfigError("The compatible backend needs a server URL.", hint="Set COACH_BASE_URL, e.g. http://localhost:11434/v1.")
    if not settings.model:
        raise ConfigError(
            f"No model name for the server at {_host(settings.base_url)}.",
            hint="Set COACH_MODEL to a model that server serves (e.g. qwen2.5:7b for Ollama).",
        )
    # The OpenAI key is never sent to a custom URL; only a key configured for that server is.
    own_key: SecretStr | None = getattr(settings, "compatible_api_key", None)
    key = own_key.get_secret_value() if own_key else PLACEHOLDER_KEY
    model = _chat_openai(settings, settings.model, settings.base_url, key)
    profile = ModelProfile(backend="compatible", name=settings.model, supports_json_schema=True, small=False)
    return ChatModelHandle(model, profile, settings.base_url, settings.request_timeout_s, settings.max_retries)


def _local_handle(settings: Settings) -> ChatModelHandle:
    from coach.local_model import local_server

    server = local_server(settings)
    base_url = f"{server.base_url}/v1"
    settings = settings.model_copy(update={"request_timeout_s": local_timeout_s(settings)})
    # Loopback traffic must not follow a proxy from the environment.
    client = httpx.Client(trust_env=False, timeout=settings.request_timeout_s)
    model = _chat_openai(settings, server.model, base_url, server.api_key.get_secret_value(), http_client=client)
    profile = ModelProfile(backend="local", name=server.model, supports_json_schema=True, small=True)
    return ChatModelHandle(model, profile, base_url, settings.request_timeout_s, settings.max_retries)


def local_timeout_s(settings: Settings) -> float:
    """The embedded model's whole-request deadline: ``COACH_TIMEOUT`` when set, else ``LOCAL_TIMEOUT_S``."""
    explicit = "request_timeout_s" in settings.model_fields_set
    return settings.request_timeout_s if explicit else LOCAL_TIMEOUT_S


def request_kwargs(profile: ModelProfile, options: GenerationOptions) -> dict[str, Any]:
    """The per-request arguments for LangChain's ``stream``: sampling always explicit."""
    kwargs: dict[str, Any] = {"temperature": options.temperature, "top_p": options.top_p}
    extra: dict[str, Any] = {}
    if profile.backend in ("local", "compatible"):
        extra["max_tokens"] = options.max_tokens  # LangChain would rename it to max_completion_tokens
    else:
        kwargs["max_tokens"] = options.max_tokens
    if options.seed is not None:
        kwargs["seed"] = options.seed
    if options.stop:
        kwargs["stop"] = list(options.stop)
    if profile.backend == "local":
        extra.update({**DEFAULT_LOCAL_SAMPLING, **options.local_extra})
    if options.json_schema is not None:
        if not profile.supports_json_schema:
            raise ConfigError(f"The model {profile.name} cannot be constrained by a JSON schema.")
        extra["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": options.schema_name, "strict": True, "schema": options.json_schema},
        }
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


@dataclass
class _StreamState:
    """What one attempt produced so far (tokens already shown cannot be taken back)."""

    parts: list[str]
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    first_token_ms: float | None = None

    @property
    def emitted(self) -> bool:
        return bool(self.parts)


def generate(
    handle: ChatModelHandle,
    messages: Sequence[BaseMessage],
    options: GenerationOptions,
    on_token: Callable[[str], None] | None = None,
) -> Generation:
    """Stream one answer, calling ``on_token`` per chunk; every failure becomes a ``ModelError`` for users."""
    kwargs = request_kwargs(handle.profile, options)
    started = time.perf_counter()
    attempts = 1 + max(0, handle.max_retries)
    for attempt in range(1, attempts + 1):
        state = _StreamState(parts=[])
        try:
            _stream_once(handle, list(messages), kwargs, state, on_token, started)
        except Exception as exc:
            error = map_model_error(exc, handle, options, attempt, mid_stream=state.emitted)
            delay = retry_delay(exc, attempt)
            elapsed = time.perf_counter() - started
            if attempt == attempts or state.emitted or not is_retryable(exc) or elapsed + delay > handle.timeout_s:
                raise error from exc
            log.info("model request failed (%s), attempt %d of %d; retrying in %.1f s",
                     type(exc).__name__, attempt, attempts, delay)
            time.sleep(delay)
            continue
        return _finish(handle, options, state, started, attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _stream_once(
    handle: ChatModelHandle,
    messages: list[BaseMessage],
    kwargs: dict[str, Any],
    state: _StreamState,
    on_token: Callable[[str], None] | None,
    started: float,
) -> None:
    """One streamed request, accumulating text, finish reason and usage into ``state``.

    Raises ``TimeoutError`` (mapped to the timeout message, never retried) once the whole request passes
    ``handle.timeout_s``; closing the stream hangs up, so the server stops generating.
    """
    stream = handle.model.stream(messages, **kwargs)
    try:
        for chunk in stream:
            _past_deadline(handle, state, started)
            _take_chunk(chunk, state, on_token, started)
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()


def _past_deadline(handle: ChatModelHandle, state: _StreamState, started: float) -> None:
    """Raise once the request has run past its budget (an answer already finished only awaits its usage)."""
    if state.finish_reason is None and time.perf_counter() - started > handle.timeout_s:
        raise TimeoutError(f"no complete answer within {handle.timeout_s:g} s")


def _take_chunk(chunk: Any, state: _StreamState, on_token: Callable[[str], None] | None, started: float) -> None:
    """Add one streamed chunk's text, finish reason and usage to ``state``."""
    piece = chunk.text if isinstance(chunk.text, str) else ""
    if piece:
        if state.first_token_ms is None:
            state.first_token_ms = round((time.perf_counter() - started) * 1000, 1)
        state.parts.append(piece)
        if on_token:
            on_token(piece)
    reason = chunk.response_metadata.get("finish_reason")
    if reason:
        state.finish_reason = reason
    usage = getattr(chunk, "usage_metadata", None)
    if usage:
        state.usage = dict(usage)


def _finish(
    handle: ChatModelHandle, options: GenerationOptions, state: _StreamState, started: float, attempt: int
) -> Generation:
    """Check the streamed answer is usable and package it."""
    text = "".join(state.parts)
    _check_output(text, state.finish_reason, options, attempt)
    usage = state.usage or {}
    return Generation(
        text=text, finish_reason=state.finish_reason, prompt_tokens=usage.get("input_tokens"),
        completion_tokens=usage.get("output_tokens"), first_token_ms=state.first_token_ms,
        total_ms=round((time.perf_counter() - started) * 1000, 1), model=handle.profile.name,
    )


def _check_output(text: str, finish_reason: str | None, options: GenerationOptions, attempt: int) -> None:
    """Empty, cut-off or (for a schema) unparsable answers become ``ModelOutputError``."""
    if not text.strip():
        raise ModelOutputError("The model returned an empty answer.", hint="Try again.", attempts=attempt)
    if finish_reason is None:
        raise ModelUnavailable(
            "The model's answer stopped before it was complete (the connection ended early).",
            hint="Try again; if it keeps happening, check the model server.", attempts=attempt,
        )
    if options.json_schema is None:
        return
    if finish_reason == "length":
        raise ModelOutputError(
            f"The model ran out of room (max_tokens={options.max_tokens}) before finishing its structured answer.",
            hint="Shorten the input, or try again.", attempts=attempt,
        )
    try:
        json.loads(text)
    except ValueError:
        raise ModelOutputError(
            "The model's structured answer is not valid JSON.", hint="Try again.", attempts=attempt
        ) from None


RETRY_BACKOFF_S = 0.5
MAX_RETRY_DELAY_S = 10.0


def is_retryable(exc: BaseException) -> bool:
    """Connection failures, 5xx and 429 are worth another try; timeouts are not (they would blow the budget)."""
    import openai

    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException | TimeoutError):
        return False
    if isinstance(exc, openai.APIConnectionError | httpx.ConnectError | ConnectionError):
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code == 429 or exc.status_code >= 500)


def retry_delay(exc: BaseException, attempt: int) -> float:
    """Exponential backoff, or the server's ``Retry-After`` (bounded) for a 429."""
    import openai

    if isinstance(exc, openai.RateLimitError):
        try:
            return min(float(exc.response.headers.get("retry-after", "")), MAX_RETRY_DELAY_S)
        except ValueError:
            pass
    return min(RETRY_BACKOFF_S * 2 ** (attempt - 1), MAX_RETRY_DELAY_S)


def map_model_error(
    exc: BaseException, handle: ChatModelHandle, options: GenerationOptions, attempt: int, *, mid_stream: bool
) -> CoachError:
    """Turn any failure into a ``CoachError`` that says what happened and how to fix it (never echoing a key)."""
    if isinstance(exc, CoachError):
        if isinstance(exc, ModelError):
            exc.attempts = attempt
        return exc
    error = _map_transport(exc, handle, mid_stream) or _map_status(exc, handle)
    if error is None:
        error = ModelError(f"The model failed unexpectedly ({type(exc).__name__}).",
                           hint="Run `coach doctor` to check the model.")
    error.attempts = attempt
    return error


def _fix_hint(handle: ChatModelHandle) -> str:
    backend = handle.profile.backend
    if backend == "local":
        return "The embedded model server stopped; restart the coach, then run `coach doctor`."
    if backend == "openai":
        return "Check your network connection, then run `coach doctor`."
    return "Check that the server is running and that COACH_BASE_URL is right, then run `coach doctor`."


def _map_transport(exc: BaseException, handle: ChatModelHandle, mid_stream: bool) -> ModelError | None:
    """Timeouts, refused connections, DNS failures and dropped streams."""
    import openai

    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException | TimeoutError):
        return ModelUnavailable(
            f"The model at {handle.host} did not answer within {handle.timeout_s:g} s.",
            hint="Try again, raise COACH_TIMEOUT, or use a faster model.",
        )
    if mid_stream and isinstance(exc, openai.APIError | httpx.HTTPError | ConnectionError):
        return ModelUnavailable(f"The connection to {handle.host} dropped in the middle of the answer.",
                                hint="Try again. " + _fix_hint(handle))
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError | ConnectionError):
        return ModelUnavailable(f"Cannot reach the model server at {handle.host}.", hint=_fix_hint(handle))
    return None


def _map_status(exc: BaseException, handle: ChatModelHandle) -> ModelError | None:
    """HTTP errors by status; the server's own message is never shown for auth errors (it may echo the key)."""
    import openai

    if not isinstance(exc, openai.APIStatusError):
        return None
    code = exc.status_code
    if code == 429:
        quota = isinstance(exc.body, dict) and "insufficient_quota" in json.dumps(exc.body)
        return RateLimited(
            f"The model server at {handle.host} is rate limiting requests (HTTP 429: too many requests).",
            hint="Add credit to your account." if quota else "Wait a minute and try again.",
        )
    if code in (401, 403):
        return AuthRejected(f"The API key was rejected by {handle.host} (HTTP {code}).",
                            hint="Check the key you configured (OPENAI_API_KEY or secrets.toml).")
    if code == 404:
        return ModelError(f"The model server at {handle.host} does not serve the model {handle.profile.name!r} "
                          "(HTTP 404).", hint="Set COACH_MODEL to a model that server has.")
    if code >= 500:
        return ModelUnavailable(f"The model server at {handle.host} failed (HTTP {code}).", hint=_fix_hint(handle))
    detail = _redacted(str(getattr(exc, "message", "")), handle)[:200]
    return ModelError(f"The model server at {handle.host} refused the request (HTTP {code}): {detail}",
                      hint="Shorten the input or check the model settings.")


_KEY_LIKE = re.compile(r"(?i)\b(?:sk-|bearer\s+)[^\s\"',.]{6,}")


def _redacted(text: str, handle: ChatModelHandle) -> str:
    """A server's error text without the key in use or anything shaped like a key (servers echo keys)."""
    key = getattr(handle.model, "openai_api_key", None)
    secret = key.get_secret_value() if isinstance(key, SecretStr) else ""
    if len(secret) >= 8:
        text = text.replace(secret, "[key]")
    return _KEY_LIKE.sub("[key]", text)


__all__ = [
    "ALLOW_MODEL_REQUESTS", "ChatModelHandle", "Generation", "GenerationOptions", "ModelError", "ModelProfile",
    "generate", "open_chat_model", "request_kwargs",
]

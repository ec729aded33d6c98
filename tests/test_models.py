"""The chat-model seam: factory, request shape, streaming, and every fault mapped to a message for users."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from openai_stub import OpenAIStub, cut, ok, stall, status, trickle
from pydantic import SecretStr, ValidationError

from coach import models
from coach.config import load_settings
from coach.errors import AuthRejected, ConfigError, ModelError, ModelOutputError, ModelUnavailable, RateLimited
from coach.models import (
    ChatModelHandle,
    GenerationOptions,
    ModelProfile,
    generate,
    open_chat_model,
    request_kwargs,
)
from coach.testing import FakeChatModel

SENTINEL_KEY = "sk-SENTINEL-0123456789abcdef"
MESSAGES = [SystemMessage("You are terse."), HumanMessage("Say hello.")]
SCHEMA = {
    "type": "object",
    "properties": {"rewrite": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["rewrite", "score"],
    "additionalProperties": False,
}


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries wait milliseconds in tests, not seconds."""
    monkeypatch.setattr(models, "RETRY_BACKOFF_S", 0.01)


def stub_handle(stub: OpenAIStub, *, retries: int = 2, timeout: float = 5.0) -> ChatModelHandle:
    """The real compatible backend pointed at the stub."""
    settings = load_settings(base_url=stub.url, model="stub-model", max_retries=retries, request_timeout_s=timeout)
    return open_chat_model(settings)


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- factory -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("explicit", [{"backend": "local"}, {"openai_api_key": SENTINEL_KEY},
                                      {"base_url": "http://127.0.0.1:9/v1", "model": "m"}])
def test_real_backends_refuse_when_requests_are_blocked(explicit: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match="ALLOW_MODEL_REQUESTS"):
        open_chat_model(load_settings(**explicit))


def test_fake_backend_is_allowed_and_profiled() -> None:
    handle = open_chat_model(load_settings(backend="fake"))
    assert isinstance(handle.model, FakeChatModel)
    assert handle.profile.backend == "fake" and handle.profile.supports_json_schema


@pytest.mark.usefixtures("allow_stub_requests")
def test_compatible_backend_needs_a_model_name() -> None:
    with pytest.raises(ConfigError, match="COACH_MODEL"):
        open_chat_model(load_settings(base_url="http://127.0.0.1:9/v1"))


@pytest.mark.usefixtures("allow_stub_requests")
def test_openai_backend_is_pinned_to_openai_with_explicit_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://attacker.example/v1")
    handle = open_chat_model(load_settings(openai_api_key=SENTINEL_KEY, request_timeout_s=7, max_retries=1))
    client = handle.model.root_client  # type: ignore[attr-defined]
    assert str(client.base_url).startswith("https://api.openai.com/v1")
    assert client.max_retries == 0 and client.timeout == 7
    assert handle.profile.name == "gpt-4o-mini" and handle.max_retries == 1
    assert SENTINEL_KEY not in repr(handle)


# --- request shape -------------------------------------------------------------------------------------------


def profile(backend: str) -> ModelProfile:
    return ModelProfile(backend=backend, name="m", supports_json_schema=True, small=backend == "local")  # type: ignore[arg-type]


def test_local_extras_go_only_to_the_embedded_backend() -> None:
    options = GenerationOptions(local_extra={"top_k": 20, "dry_multiplier": 0.5})
    local = request_kwargs(profile("local"), options)
    assert local["extra_body"]["top_k"] == 20 and local["extra_body"]["dry_multiplier"] == 0.5
    assert local["extra_body"]["min_p"] == models.DEFAULT_LOCAL_SAMPLING["min_p"]
    for backend in ("openai", "compatible", "fake"):
        extra = request_kwargs(profile(backend), options).get("extra_body", {})
        assert "top_k" not in extra and "dry_multiplier" not in extra


def test_sampling_and_schema_are_explicit() -> None:
    options = GenerationOptions(max_tokens=64, temperature=0.0, top_p=1.0, seed=7, stop=["END"], json_schema=SCHEMA)
    kwargs = request_kwargs(profile("openai"), options)
    assert (kwargs["max_tokens"], kwargs["temperature"], kwargs["top_p"], kwargs["seed"]) == (64, 0.0, 1.0, 7)
    assert kwargs["stop"] == ["END"]
    response_format = kwargs["extra_body"]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True and response_format["json_schema"]["schema"] == SCHEMA


def test_unknown_llama_option_is_rejected() -> None:
    with pytest.raises(ValidationError, match="top_q"):
        GenerationOptions(local_extra={"top_q": 3})


def test_schema_on_a_model_without_support_is_an_explicit_error() -> None:
    plain = ModelProfile(backend="compatible", name="tiny", supports_json_schema=False, small=True)
    with pytest.raises(ConfigError, match="tiny"):
        request_kwargs(plain, GenerationOptions(json_schema=SCHEMA))


# --- generate with the fake model ----------------------------------------------------------------------------


def fake_handle(fake: FakeChatModel, retries: int = 2) -> ChatModelHandle:
    return ChatModelHandle(fake, profile("fake"), None, 5.0, retries)


def test_generate_streams_tokens_and_records_the_call() -> None:
    fake = FakeChatModel().enqueue("Uptime improved by 4 hours this quarter.")
    tokens: list[str] = []
    result = generate(fake_handle(fake), MESSAGES, GenerationOptions(seed=3), on_token=tokens.append)
    assert result.text == "Uptime improved by 4 hours this quarter."
    assert len(tokens) > 3 and "".join(tokens) == result.text
    assert result.finish_reason == "stop" and result.model == "m"
    assert result.first_token_ms is not None and result.total_ms >= result.first_token_ms
    assert result.completion_tokens == 7
    sent_messages, kwargs = fake.calls[0]
    assert sent_messages == MESSAGES and kwargs["seed"] == 3


def test_fake_default_reply_keeps_placeholders() -> None:
    fake = FakeChatModel()
    messages = [HumanMessage("Downtime fell from [F1] to [F2], saving [F3]. Again [F1].")]
    text = generate(fake_handle(fake), messages, GenerationOptions()).text
    assert all(token in text for token in ("[F1]", "[F2]", "[F3]")) and text.count("[F1]") == 1


def test_fake_default_reply_satisfies_a_nested_schema() -> None:
    schema = {
        "type": "object",
        "$defs": {"item": {"type": "object", "properties": {"principle_id": {"enum": ["P01", "P02"]},
                                                              "why": {"type": "string", "maxLength": 20}},
                           "required": ["principle_id", "why"]}},
        "properties": {"rewrite": {"type": "string"}, "feedback": {"type": "array", "items": {"$ref": "#/$defs/item"}},
                       "ok": {"type": "boolean"}, "optional": {"type": "string"}},
        "required": ["rewrite", "feedback", "ok"],
    }
    user = HumanMessage("<draft>\nOur uptime was [F1] last month.\n</draft>")
    result = generate(fake_handle(FakeChatModel()), [user], GenerationOptions(json_schema=schema))
    answer = json.loads(result.text)
    assert set(answer) == {"rewrite", "feedback", "ok"}
    assert "uptime" in answer["rewrite"] and "[F1]" in answer["rewrite"]
    assert answer["feedback"] == [{"principle_id": "P01", "why": answer["feedback"][0]["why"]}]
    assert len(answer["feedback"][0]["why"]) <= 20 and answer["ok"] is False


def test_fake_can_run_a_callable_and_retries_a_connection_error() -> None:
    fake = FakeChatModel().enqueue(ConnectionError("refused"), lambda msgs: f"{len(msgs)} messages")
    result = generate(fake_handle(fake), MESSAGES, GenerationOptions())
    assert result.text == "2 messages" and len(fake.calls) == 2


def test_fake_garbage_with_a_schema_is_an_output_error() -> None:
    fake = FakeChatModel(garbage=True)
    with pytest.raises(ModelOutputError, match="not valid JSON") as caught:
        generate(fake_handle(fake), MESSAGES, GenerationOptions(json_schema=SCHEMA))
    assert caught.value.attempts == 1 and len(fake.calls) == 1


def test_fake_scripted_model_error_keeps_its_message_and_gets_attempts() -> None:
    fake = FakeChatModel().enqueue(RateLimited("slow down"))
    with pytest.raises(RateLimited, match="slow down") as caught:
        generate(fake_handle(fake), MESSAGES, GenerationOptions())
    assert caught.value.attempts == 1


def test_empty_answer_is_an_output_error() -> None:
    with pytest.raises(ModelOutputError, match="empty"):
        generate(fake_handle(FakeChatModel().enqueue("   ")), MESSAGES, GenerationOptions())


def test_length_cut_structured_answer_is_an_output_error() -> None:
    fake = FakeChatModel(finish_reason="length").enqueue('{"rewrite": "half')
    with pytest.raises(ModelOutputError, match="max_tokens=32"):
        generate(fake_handle(fake), MESSAGES, GenerationOptions(max_tokens=32, json_schema=SCHEMA))


def test_fake_stall_is_observable() -> None:
    fake = FakeChatModel(stall_s=0.2)
    started = time.perf_counter()
    result = generate(fake_handle(fake), MESSAGES, GenerationOptions())
    assert time.perf_counter() - started >= 0.2 and result.first_token_ms is not None
    assert result.first_token_ms >= 200


# --- faults against a real HTTP stub -------------------------------------------------------------------------

pytestmark_stub = pytest.mark.usefixtures("allow_stub_requests")


@pytestmark_stub
def test_stub_happy_path_streams_and_sends_explicit_sampling(openai_stub: OpenAIStub) -> None:
    openai_stub.enqueue(ok("Revenue grew by [F1] this quarter."))
    tokens: list[str] = []
    result = generate(stub_handle(openai_stub), MESSAGES, GenerationOptions(seed=5, max_tokens=40), tokens.append)
    assert result.text == "Revenue grew by [F1] this quarter." and len(tokens) >= 5
    assert result.prompt_tokens == 7 and result.finish_reason == "stop"
    body = openai_stub.requests[0].body
    assert body["stream"] is True and body["model"] == "stub-model"
    assert (body["temperature"], body["top_p"], body["seed"], body["max_tokens"]) == (0.2, 0.9, 5, 40)
    assert "top_k" not in body and "cache_prompt" not in body  # llama.cpp extras are for the embedded model only


@pytestmark_stub
def test_stub_receives_the_json_schema_as_response_format(openai_stub: OpenAIStub) -> None:
    openai_stub.enqueue(ok('{"rewrite": "x", "score": 1}'))
    result = generate(stub_handle(openai_stub), MESSAGES, GenerationOptions(json_schema=SCHEMA, schema_name="rw"))
    assert json.loads(result.text) == {"rewrite": "x", "score": 1}
    sent = openai_stub.requests[0].body["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "rw", "strict": True, "schema": SCHEMA}}


@pytestmark_stub
def test_openai_key_is_never_sent_to_a_custom_base_url(openai_stub: OpenAIStub) -> None:
    settings = load_settings(openai_api_key=SENTINEL_KEY, base_url=openai_stub.url, model="stub-model")
    generate(open_chat_model(settings), MESSAGES, GenerationOptions())
    request = openai_stub.requests[0]
    assert request.headers["authorization"] == f"Bearer {models.PLACEHOLDER_KEY}"
    assert SENTINEL_KEY not in json.dumps(request.headers) + json.dumps(request.body)


@pytestmark_stub
def test_connection_refused_names_the_host_and_counts_attempts() -> None:
    port = closed_port()
    settings = load_settings(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=2)
    with pytest.raises(ModelUnavailable, match=f"127.0.0.1:{port}") as caught:
        generate(open_chat_model(settings), MESSAGES, GenerationOptions())
    assert caught.value.attempts == 3 and "COACH_BASE_URL" in str(caught.value)


@pytestmark_stub
def test_a_user_and_password_in_the_server_url_never_reach_an_error() -> None:
    port = closed_port()
    settings = load_settings(base_url=f"http://vllm-user:PA55-model@127.0.0.1:{port}/v1", model="m", max_retries=0)
    with pytest.raises(ModelUnavailable, match=f"127.0.0.1:{port}") as caught:
        generate(open_chat_model(settings), MESSAGES, GenerationOptions())
    assert "PA55" not in str(caught.value) and "vllm-user" not in str(caught.value)


@pytestmark_stub
def test_dns_failure_is_unavailable() -> None:
    settings = load_settings(base_url="http://no-such-host.invalid/v1", model="m", max_retries=0, request_timeout_s=5)
    with pytest.raises(ModelUnavailable, match=r"no-such-host\.invalid"):
        generate(open_chat_model(settings), MESSAGES, GenerationOptions())


@pytestmark_stub
def test_500_then_200_succeeds_on_retry(openai_stub: OpenAIStub) -> None:
    openai_stub.enqueue(status(500), ok("Recovered."))
    result = generate(stub_handle(openai_stub), MESSAGES, GenerationOptions())
    assert result.text == "Recovered." and len(openai_stub.requests) == 2


@pytestmark_stub
def test_persistent_500_fails_after_the_configured_attempts(openai_stub: OpenAIStub) -> None:
    openai_stub.enqueue(*[status(500)] * 5)
    with pytest.raises(ModelUnavailable, match="HTTP 500") as caught:
        generate(stub_handle(openai_stub, retries=1), MESSAGES, GenerationOptions())
    assert caught.value.attempts == 2 and len(openai_stub.requests) == 2


@pytestmark_stub
def test_429_is_rate_limited_with_its_own_message(openai_stub: OpenAIStub) -> None:
    openai_stub.enqueue(*[status(429, headers={"Retry-After": "0"})] * 3)
    with pytest.raises(RateLimited, match="rate limiting") as caught:
        generate(stub_handle(openai_stub), MESSAGES, GenerationOptions())
    assert caught.value.attempts == 3 and not isinstance(caught.value, ModelUnavailable)


@pytestmark_stub
@pytest.mark.parametrize("code", [401, 403])
def test_rejected_key_says_so_without_echoing_it(openai_stub: OpenAIStub, code: int) -> None:
    echo = {"error": {"message": f"Incorrect API key provided: {SENTINEL_KEY}", "code": "invalid_api_key"}}
    openai_stub.enqueue(status(code, body=echo))
    settings = load_settings(backend="fake", request_timeout_s=5)
    chat = models._chat_openai(settings, "gpt-4o-mini", openai_stub.url, SENTINEL_KEY)
    handle = ChatModelHandle(chat, profile("openai"), openai_stub.url, 5.0, 2)
    with pytest.raises(AuthRejected, match="API key was rejected") as caught:
        generate(handle, MESSAGES, GenerationOptions())
    assert SENTINEL_KEY not in str(caught.value) and SENTINEL_KEY not in repr(caught.value)
    assert caught.value.attempts == 1 and len(openai_stub.requests) == 1  # a rejected key is not retried


@pytestmark_stub
def test_unknown_model_names_the_model(openai_stub: OpenAIStub) -> None:
    openai_stub.enqueue(status(404))
    with pytest.raises(ModelError, match="stub-model"):
        generate(stub_handle(openai_stub), MESSAGES, GenerationOptions())


@pytestmark_stub
def test_timeout_arrives_within_the_budget_and_is_not_retried(openai_stub: OpenAIStub) -> None:
    openai_stub.enqueue(stall(5.0))
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable, match=r"did not answer within 0\.5 s") as caught:
        generate(stub_handle(openai_stub, timeout=0.5), MESSAGES, GenerationOptions())
    assert time.perf_counter() - started < 2.0
    assert caught.value.attempts == 1 and len(openai_stub.requests) == 1


@pytestmark_stub
def test_a_trickling_server_times_out_within_the_budget(openai_stub: OpenAIStub) -> None:
    # Every read is quick (0.1 s), so only a deadline on the whole request can stop 200 words at 0.1 s each.
    openai_stub.enqueue(trickle(0.1))
    tokens: list[str] = []
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable, match=r"did not answer within 1 s") as caught:
        generate(stub_handle(openai_stub, timeout=1.0), MESSAGES, GenerationOptions(), tokens.append)
    assert 1.0 <= time.perf_counter() - started < 2.0 and tokens  # the words shown so far, then the error
    assert caught.value.attempts == 1 and len(openai_stub.requests) == 1  # a timeout is not retried


@pytestmark_stub
def test_the_deadline_covers_the_retries_and_keeps_the_attempt_count(openai_stub: OpenAIStub) -> None:
    openai_stub.enqueue(status(500), trickle(0.1), ok("never reached"))
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable, match="did not answer within") as caught:
        generate(stub_handle(openai_stub, retries=2, timeout=1.0), MESSAGES, GenerationOptions())
    assert time.perf_counter() - started < 2.0
    assert caught.value.attempts == 2 and len(openai_stub.requests) == 2  # 500 retried once, then the timeout


@pytestmark_stub
def test_a_slow_answer_inside_the_budget_is_not_cut(openai_stub: OpenAIStub) -> None:
    openai_stub.enqueue(trickle(0.05, "Ten words arrive slowly but well within the time budget."))
    result = generate(stub_handle(openai_stub, timeout=5.0), MESSAGES, GenerationOptions())
    assert result.text == "Ten words arrive slowly but well within the time budget." and result.total_ms >= 450


def test_the_embedded_model_gets_a_longer_deadline_unless_coach_timeout_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert models.local_timeout_s(load_settings(backend="local")) == models.LOCAL_TIMEOUT_S == 300
    monkeypatch.setenv("COACH_TIMEOUT", "45")
    assert models.local_timeout_s(load_settings(backend="local")) == 45
    assert load_settings(base_url="http://127.0.0.1:9/v1").request_timeout_s == 45  # other backends: as set


@pytestmark_stub
def test_stream_cut_halfway_is_reported_and_not_replayed(openai_stub: OpenAIStub) -> None:
    openai_stub.enqueue(cut("This answer is cut in the mid"), ok("never reached"))
    tokens: list[str] = []
    with pytest.raises(ModelUnavailable, match="dropped in the middle") as caught:
        generate(stub_handle(openai_stub), MESSAGES, GenerationOptions(), tokens.append)
    assert "".join(tokens).startswith("This answer") and caught.value.attempts == 1
    assert len(openai_stub.requests) == 1


@pytestmark_stub
@pytest.mark.parametrize(("behaviour", "message"), [
    (ok("not json {", "stop"), "not valid JSON"),
    (ok('{"rewrite": "cut', "length"), "ran out of room"),
    (ok("", "stop"), "empty"),
])
def test_unusable_structured_answers(openai_stub: OpenAIStub, behaviour: Any, message: str) -> None:
    openai_stub.enqueue(behaviour)
    with pytest.raises(ModelOutputError, match=message):
        generate(stub_handle(openai_stub), MESSAGES, GenerationOptions(json_schema=SCHEMA))


@pytestmark_stub
def test_stream_without_finish_reason_is_incomplete(openai_stub: OpenAIStub) -> None:
    openai_stub.enqueue(ok("Half an answer", finish_reason=None))
    with pytest.raises(ModelUnavailable, match="before it was complete"):
        generate(stub_handle(openai_stub), MESSAGES, GenerationOptions())


def test_transport_errors_map_without_a_server() -> None:
    fake = FakeChatModel().enqueue(httpx.ReadTimeout("slow"))
    with pytest.raises(ModelUnavailable, match="did not answer"):
        generate(fake_handle(fake, retries=3), MESSAGES, GenerationOptions())
    assert len(fake.calls) == 1


def test_settings_key_is_secret() -> None:
    settings = load_settings(openai_api_key=SENTINEL_KEY)
    assert isinstance(settings.openai_api_key, SecretStr) and SENTINEL_KEY not in repr(settings)

"""A tiny OpenAI-compatible chat server on 127.0.0.1 that misbehaves on cue, for fault tests.

Each request to ``/v1/chat/completions`` consumes the next scripted behaviour (``ok``, ``status``, ``stall``,
``cut``, ``trickle``); with an empty script it answers ``ok()``. Every request is recorded (path, headers, JSON body) so
tests can check what was sent, e.g. that no OpenAI key reached a custom ``base_url``.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    """What the stub does for one request."""

    kind: str
    text: str = "Hello from the stub."
    finish_reason: str | None = "stop"
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def ok(text: str = "Hello from the stub.", finish_reason: str | None = "stop") -> Behaviour:
    """A normal answer (streamed when the request asks for it)."""
    return Behaviour("ok", text=text, finish_reason=finish_reason)


def status(code: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Behaviour:
    """An HTTP error with an OpenAI-style error body."""
    default = {"error": {"message": f"stub error {code}", "type": "stub", "code": code}}
    return Behaviour("status", status=code, body=body or default, headers=headers or {})


def stall(seconds: float, text: str = "Too late.") -> Behaviour:
    """Say nothing for ``seconds``, then answer."""
    return Behaviour("stall", text=text, seconds=seconds)


def trickle(seconds_per_token: float, text: str = " ".join(["word"] * 200)) -> Behaviour:
    """Stream an answer slowly, one word every ``seconds_per_token`` (each read is quick, the whole is not)."""
    return Behaviour("trickle", text=text, seconds=seconds_per_token)


def cut(text: str = "This answer is cut in the mid") -> Behaviour:
    """Stream part of an answer, then drop the connection in the middle of the chunked body."""
    return Behaviour("cut", text=text)


@dataclass
class RecordedRequest:
    """One request as the stub received it."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]


class _QuietServer(ThreadingHTTPServer):
    """A client hanging up mid-request is normal here (timeouts, cut streams): no traceback.

    The default prints one to stderr from a handler thread, which can land in a later test's
    captured output and fail it.
    """

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class OpenAIStub:
    """The server: ``start()``, ``enqueue(...)``, ``requests``, ``url``, ``stop()``."""

    def __init__(self) -> None:
        self.script: list[Behaviour] = []
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        """The OpenAI-style base URL (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def start(self) -> OpenAIStub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def enqueue(self, *behaviours: Behaviour) -> None:
        with self.lock:
            self.script.extend(behaviours)

    def next_behaviour(self) -> Behaviour:
        with self.lock:
            return self.script.pop(0) if self.script else ok()


def _chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"id": "stub-1", "object": "chat.completion.chunk", "created": 0, "model": "stub-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


def _completion(text: str, finish_reason: str | None) -> dict[str, Any]:
    return {"id": "stub-1", "object": "chat.completion", "created": 0, "model": "stub-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 7, "completion_tokens": len(text.split()), "total_tokens": 7}}


def _handler_for(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            body = json.loads(raw or b"{}")
            with stub.lock:
                stub.requests.append(RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            behaviour = stub.next_behaviour()
            if behaviour.kind == "stall" and stub.stopping.wait(behaviour.seconds):
                return
            if behaviour.kind == "status":
                self._send_json(behaviour.status, behaviour.body or {}, behaviour.headers)
            elif body.get("stream"):
                self._stream(behaviour)
            else:
                self._send_json(200, _completion(behaviour.text, behaviour.finish_reason), {})

        def _send_json(self, code: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _event(self, payload: dict[str, Any] | str) -> None:
            line = f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()

        def _stream(self, behaviour: Behaviour) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            words = behaviour.text.split(" ")
            self._event(_chunk({"role": "assistant", "content": ""}))
            for index, word in enumerate(words):
                if behaviour.kind == "trickle" and stub.stopping.wait(behaviour.seconds):
                    return
                self._event(_chunk({"content": word if index == 0 else " " + word}))
            if behaviour.kind == "cut":
                self.wfile.write(b"ff\r\ndata: {\"trunc")  # half a chunk, then the connection drops
                self.wfile.flush()
                self.close_connection = True
                return
            self._event(_chunk({}, behaviour.finish_reason))
            usage = {"prompt_tokens": 7, "completion_tokens": len(words), "total_tokens": 7 + len(words)}
            self._event({**_chunk({}), "choices": [], "usage": usage})
            self._event("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler

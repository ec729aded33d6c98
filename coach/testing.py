"""Test support that is real code: a scripted chat model behind the same LangChain seam as the real ones.

``FakeChatModel`` answers from a queue of replies (a string, an exception to raise, or a function of the
messages), records every call with its options, can stall or return garbage, and streams chunk by chunk so
``on_token`` callers see tokens arrive. With an empty queue it answers like a cooperative model: a minimal
valid JSON instance when a JSON schema was requested, otherwise a short sentence that keeps every ``[F1]``-style
placeholder of the last user message (so a fact lock built on placeholders passes).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

Reply = str | BaseException | Callable[[list[BaseMessage]], str]

PLACEHOLDER = re.compile(r"\[[A-Z]{1,10}\d{1,4}\]")
GARBAGE = "}{ ```json {\"rewrite\": [[ <|im_end|> \ufffd\ufffd null,, ]]"


class FakeChatModel(BaseChatModel):
    """A scripted chat model: canned replies, recorded calls, can raise, stall or return garbage."""

    replies: list[Any] = Field(default_factory=list)
    calls: list[tuple[list[BaseMessage], dict[str, Any]]] = Field(default_factory=list)
    stall_s: float = 0.0
    garbage: bool = False
    finish_reason: str = "stop"
    model_name: str = "fake"
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "coach-fake"

    def enqueue(self, *replies: Reply) -> FakeChatModel:
        """Add replies to answer the next calls with, in order."""
        with self._lock:
            self.replies.extend(replies)
        return self

    def _next_text(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
        """Record the call and produce the text of the answer (or raise the scripted exception)."""
        with self._lock:
            self.calls.append((list(messages), dict(kwargs)))
            reply = self.replies.pop(0) if self.replies else None
        if self.stall_s:
            time.sleep(self.stall_s)
        if isinstance(reply, BaseException):
            raise reply
        if self.garbage:
            return GARBAGE
        if callable(reply):
            return str(reply(messages))
        if reply is not None:
            return str(reply)
        return default_reply(messages, kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(str(chunk.message.content) for chunk in self._stream(messages, stop, None, **kwargs))
        message = AIMessage(content=text, response_metadata=self._metadata())
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if stop is not None:
            kwargs["stop"] = stop
        text = self._next_text(messages, kwargs)
        for piece in re.split(r"(?<=\s)", text):
            if not piece:
                continue
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        usage = {"input_tokens": _word_count(messages), "output_tokens": len(text.split()),
                 "total_tokens": _word_count(messages) + len(text.split())}
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", response_metadata=self._metadata(), usage_metadata=usage)  # type: ignore[arg-type]
        )

    def _metadata(self) -> dict[str, Any]:
        return {"finish_reason": self.finish_reason, "model_name": self.model_name}


def _word_count(messages: list[BaseMessage]) -> int:
    return sum(len(str(message.content).split()) for message in messages)


def requested_schema(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a call asked for, via ``response_format`` directly or inside ``extra_body``."""
    response_format = kwargs.get("response_format") or (kwargs.get("extra_body") or {}).get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema")
        return schema if isinstance(schema, dict) else None
    return None


def last_user_text(messages: list[BaseMessage]) -> str:
    """The content of the last human message ('' if none)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return str(message.content)
    return ""


def default_reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
    """What the fake says when nothing is scripted: schema-valid JSON, or a sentence keeping placeholders."""
    user_text = last_user_text(messages)
    schema = requested_schema(kwargs)
    if schema is not None:
        return json.dumps(SchemaInstance(schema, user_text).build(schema))
    placeholders = list(dict.fromkeys(PLACEHOLDER.findall(user_text)))
    if not placeholders:
        return "Here is a clearer version of your message for a business audience."
    return f"Here is a clearer version that keeps {', '.join(placeholders)} exactly where the reader needs them."


class SchemaInstance:
    """Builds a minimal instance of a JSON schema: required keys, one array item, strings from the user text."""

    def __init__(self, root: dict[str, Any], user_text: str) -> None:
        self.root = root
        lines = [line.strip() for line in user_text.splitlines()
                 if line.strip() and not line.strip().startswith(("<", "#", "---"))]  # skip delimiters
        placeholders = " ".join(dict.fromkeys(PLACEHOLDER.findall(user_text)))
        self.text = " ".join(filter(None, [lines[0][:160] if lines else "", placeholders])) or "example"

    def build(self, schema: dict[str, Any]) -> Any:
        """An instance of ``schema`` (local ``$ref``s resolved; first option of anyOf/oneOf)."""
        if "$ref" in schema:
            return self.build(self._resolve(schema["$ref"]))
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        for combinator in ("anyOf", "oneOf", "allOf"):
            if schema.get(combinator):
                return self.build(schema[combinator][0])
        kind = schema.get("type", "object" if "properties" in schema else "string")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        return self._by_type(kind, schema)

    def _by_type(self, kind: str, schema: dict[str, Any]) -> Any:
        if kind == "object":
            properties = schema.get("properties", {})
            return {name: self.build(properties.get(name, {})) for name in schema.get("required", [])}
        if kind == "array":
            count = max(1, int(schema.get("minItems", 1)))
            return [self.build(schema.get("items", {})) for _ in range(count)]
        if kind in ("integer", "number"):
            return schema.get("minimum", 0)
        if kind == "boolean":
            return False
        if kind == "null":
            return None
        text = self.text[: schema["maxLength"]] if "maxLength" in schema else self.text
        return text.ljust(int(schema.get("minLength", 0)), ".")

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.root
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

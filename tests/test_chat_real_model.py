"""The embedded model end to end: a 3-turn chat and a 3-turn role-play with debrief, offline (slow)."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from coach.chat import ChatService, Conversation
from coach.config import load_settings
from coach.corpus import load_documents, load_principles
from coach.roleplay import start_roleplay

# The same scripts `bench/chat_bench.py` times.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from chat_bench import CHAT, ROLEPLAY

pytestmark = [pytest.mark.real_model, pytest.mark.real_embeddings]


def timed_turn(service: ChatService, conversation: Conversation, message: str) -> tuple[float, float, str]:
    """(time to first token, total time) in seconds, and the answer."""
    started = time.perf_counter()
    first: list[float] = []
    reply = service.turn(conversation, message, on_token=lambda _t: first or first.append(time.perf_counter()))
    total = time.perf_counter() - started
    print(f"turn: first token {first[0] - started:.1f} s, total {total:.1f} s, {len(reply.answer.split())} words")
    print(f"  > {message}\n  < {reply.answer}")
    print(f"  cited {[c.n for c in reply.citations]}, dropped {reply.dropped_citations}")
    return first[0] - started, total, reply.answer


def test_three_turn_chat_cites_real_passages() -> None:
    service = ChatService(load_settings(backend="local"))
    conversation = Conversation()
    cited = 0
    for message in CHAT:
        timed_turn(service, conversation, message)
        reply = conversation.messages[-1]
        assert reply.content.strip()
        numbers = {int(n) for n in re.findall(r"\[(\d+)\]", reply.content)}
        assert numbers == {c.n for c in reply.citations}  # every [n] left in the answer is a real passage
        texts = {" ".join(d.text.split()) for d in load_documents(service.settings)}
        for citation in reply.citations:
            assert any(" ".join(citation.text.split()) in text for text in texts)
        cited += len(reply.citations)
    assert cited > 0


def test_three_turn_roleplay_with_debrief() -> None:
    service = ChatService(load_settings(backend="local"))
    conversation = start_roleplay("cfo", "erp-budget")
    for message in ROLEPLAY:
        _, _, answer = timed_turn(service, conversation, message)
        assert answer.strip()
    started = time.perf_counter()
    report = service.debrief(conversation)
    print(f"debrief: {time.perf_counter() - started:.1f} s, {len(report.items)} items")
    principles = {p.id: p for p in load_principles(service.settings)}
    assert report.items
    for item in report.items:
        assert item.passage.text == principles[item.principle_id].quote

"""Saved conversations belong to their user: another user cannot load them."""

from __future__ import annotations

import pytest

from coach.chat import ChatMessage, Conversation, load_conversation, save_conversation
from coach.config import load_settings
from coach.errors import StorageError
from coach.sessions import SessionStore


def test_a_conversation_saved_for_alice_is_hers_alone() -> None:
    settings = load_settings()
    conversation = Conversation(messages=[ChatMessage(role="user", content="How do I pitch the ERP budget?")])
    session_id = save_conversation(settings, conversation, user_id="alice")
    assert load_conversation(settings, session_id, user_id="alice").messages[0].content.startswith("How do I")
    with pytest.raises(StorageError):
        load_conversation(settings, session_id, user_id="bob")
    assert [s.id for s in SessionStore(settings, user_id="bob").list()] == []

"""Chat page: talk a leadership situation through with the coach, or rehearse it with a simulated executive.

The conversation lives in ``st.session_state`` as a ``coach.chat.Conversation`` and is saved as a session
after every turn. Citations are shown under each answer, each passage openable in an expander.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from coach.chat import ChatMessage, ChatService, Conversation, save_conversation
from coach.config import Settings
from coach.errors import CoachError
from coach.roleplay import PERSONAS, SCENARIOS, Debrief, start_roleplay
from coach.ui.context import current_settings, draft_store, prepare_index, prepare_model, signed_in_user
from coach.ui.guard import attempt, guarded, show_error
from coach.ui.markdown import as_markdown, escape_markdown, one_line
from coach.ui.rewrite_page import TokenStream

CUSTOM = "custom"
DRAFT_KEY = "chat"  # the DraftStore key of a message not yet sent
DEBRIEF_ICONS = {"landed": ":material/check_circle:", "missed": ":material/cancel:", "try": ":material/lightbulb:"}
DEBRIEF_TITLES = {"landed": "What landed", "missed": "What missed", "try": "Try next time"}


def conversation() -> Conversation:
    """The conversation on screen (a fresh coaching chat the first time)."""
    if "conversation" not in st.session_state:
        st.session_state["conversation"] = Conversation()
    current: Conversation = st.session_state["conversation"]
    return current


def setup_panel() -> None:
    """Mode, persona and scenario pickers; starting over replaces the conversation."""
    mode = st.segmented_control("Mode", ["chat", "roleplay"], default="chat", key="chat_mode",
                                format_func=lambda m: "Coaching chat" if m == "chat" else "Role-play")
    if mode != "roleplay":
        if conversation().mode != "chat":
            st.session_state["conversation"] = Conversation()
            forget_debrief()
        return
    left, right = st.columns(2)
    persona = left.selectbox("Executive", list(PERSONAS), format_func=lambda p: PERSONAS[p].title.capitalize(),
                             key="persona")
    scenario = right.selectbox("Scenario", [*SCENARIOS, CUSTOM], key="scenario",
                               format_func=lambda s: "My own situation…" if s == CUSTOM else SCENARIOS[s].title)
    own = st.text_input("Describe the situation", key="own_scenario") if scenario == CUSTOM else ""
    chosen = own if scenario == CUSTOM else scenario
    current = conversation()
    if current.mode != "roleplay" or current.persona != persona or (current.scenario or "") != (chosen or ""):
        started = attempt(start_roleplay, persona, chosen or None)
        if started is not None:
            st.session_state["conversation"] = started
            forget_debrief()


def forget_debrief() -> None:
    """A new conversation: no debrief shown, none offered."""
    st.session_state.pop("debrief", None)
    st.session_state.pop("debrief_due", None)


def show_message(message: ChatMessage) -> None:
    """One turn, with its citations openable under it."""
    with st.chat_message(message.role):
        st.markdown(as_markdown(message.content))
        for citation in message.citations:
            title = one_line(citation.title or citation.source, 70)
            label = f"[{citation.n}] {title} · {one_line(citation.source, 50)}"
            with st.expander(label, icon=":material/format_quote:"):
                st.markdown(as_markdown(citation.text))


def send(settings: Settings, text: str) -> None:
    """One turn: the leader's message autosaved and shown at once, the answer streamed, the session saved."""
    current = conversation()
    drafts = draft_store(settings)
    attempt(drafts.save_draft, DRAFT_KEY, text)  # until the turn is saved, a reload offers it again
    with st.chat_message("user"):
        st.markdown(as_markdown(text))
    prepare_model(settings)
    prepare_index(settings)
    with st.chat_message("assistant"):
        stream = TokenStream(st.empty())
        try:
            reply = ChatService(settings).turn(current, text, on_token=stream)
        except CoachError as error:
            show_error(error)
            st.caption("Your message was not sent. It is kept: send it again from here, or copy it:")
            st.code(text, language=None, wrap_lines=True)  # code block: shown as typed, with a copy button
            return
    for flag in reply.flags:
        st.session_state.setdefault("chat_flags", []).append(flag)
    st.session_state["debrief_due"] = reply.debrief_due
    if attempt(save_conversation, settings, current, signed_in_user(settings)) is not None:
        attempt(drafts.clear_draft, DRAFT_KEY)
    st.rerun()


def unsent_message(settings: Settings) -> None:
    """A message whose turn failed (this visit or before a reload), offered to send again or discard."""
    drafts = draft_store(settings)
    text = attempt(drafts.load_draft, DRAFT_KEY)
    if not text or not text.strip():
        return
    with st.container(border=True):
        st.caption("Your last message was not sent:")
        st.code(text, language=None, wrap_lines=True)
        again, discard = st.columns(2)
        if again.button("Send again", icon=":material/send:", key="chat_resend"):
            send(settings, text)
        elif discard.button("Discard", icon=":material/delete:", key="chat_discard"):
            attempt(drafts.clear_draft, DRAFT_KEY)
            st.rerun()


def debrief_panel(settings: Settings, current: Conversation) -> None:
    """The debrief button and the debrief itself."""
    if current.mode != "roleplay" or not current.user_turns():
        return
    due = bool(st.session_state.get("debrief_due")) and "debrief" not in st.session_state
    offer = st.empty()  # filled below, once we know this run did not just make the debrief
    if st.button("Debrief this rehearsal", icon=":material/assignment:", key="debrief_button",
                 type="primary" if due else "secondary"):
        with st.spinner("Debriefing…"):
            made = attempt(ChatService(settings).debrief, current)
        if made is not None:
            st.session_state["debrief"] = made
            attempt(save_conversation, settings, current, signed_in_user(settings), debrief=made)
    if due and "debrief" not in st.session_state:
        offer.info("That is enough of a rehearsal to debrief: see what landed, what did not and what to try. "
                   "You can keep going afterwards.", icon=":material/assignment:")
    result: Debrief | None = st.session_state.get("debrief")
    if result is None:
        return
    st.subheader("Debrief")
    for item in result.items:
        with st.container(border=True):
            heading = f"{DEBRIEF_ICONS[item.kind]} **{DEBRIEF_TITLES[item.kind]}**"
            st.markdown(f"{heading} · {escape_markdown(item.principle)}")
            st.markdown(as_markdown(item.point))
            with st.expander(f"Source: {one_line(item.passage.source, 80)}", icon=":material/menu_book:"):
                st.markdown(as_markdown(item.passage.text))


def intro(current: Conversation) -> None:
    """What to do, when nothing has been said yet."""
    if current.messages:
        return
    if current.mode == "roleplay":
        persona = PERSONAS[current.persona or "ceo"]
        st.info(f"You are talking to {persona.title}, who cares about {persona.cares_about}. Open the conversation "
                "as you would in the room; ask for a debrief when you are done.", icon=":material/theater_comedy:")
    else:
        st.info("Ask about a leadership situation, e.g. “How do I report a missed deadline to the COO?” Answers cite "
                "the essays and your organisation's documents.", icon=":material/forum:")


@guarded
def render() -> None:
    """The Chat page."""
    st.title("Chat and rehearse")
    settings = current_settings()
    top = st.columns([4, 1])
    with top[0]:
        setup_panel()
    if top[1].button("New conversation", icon=":material/restart_alt:", key="new_chat"):
        st.session_state.pop("conversation", None)
        forget_debrief()
        st.rerun()
    current = conversation()
    intro(current)
    for message in current.messages:
        show_message(message)
    for flag in st.session_state.pop("chat_flags", []):
        st.caption(f"Note: {one_line(flag, 200)}")
    unsent_message(settings)
    placeholder = "Your reply to the executive…" if current.mode == "roleplay" else "Ask the coach…"
    text: Any = st.chat_input(placeholder, key="chat_text")
    if text and str(text).strip():  # a blank submission is not a turn
        send(settings, str(text))
    debrief_panel(settings, current)

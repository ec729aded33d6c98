"""Sessions page: find a saved rewrite or conversation, look at it again, rate it, annotate it, export or
delete it, and see progress over the weeks."""

from __future__ import annotations

import streamlit as st
from pydantic import ValidationError

from coach.config import Settings
from coach.rewrite_models import AUDIENCES, RewriteResult
from coach.session_models import Session, SessionQuery, SessionStats
from coach.sessions import SessionStore
from coach.ui.context import current_settings, session_store
from coach.ui.guard import attempt, guarded
from coach.ui.markdown import as_markdown, one_line
from coach.ui.result_view import render_result

TYPE_LABELS = {"rewrite": "Rewrite", "chat": "Chat", "roleplay": "Role-play"}
ANY = "any"


def filters() -> SessionQuery:
    """Search box and filters."""
    search, kind, audience = st.columns([3, 1, 1], vertical_alignment="bottom")
    text = search.text_input("Search", key="session_search", placeholder="Words from the draft, rewrite or notes")
    chosen_type = kind.selectbox("Type", [ANY, *TYPE_LABELS], key="session_type",
                                 format_func=lambda t: "All types" if t == ANY else TYPE_LABELS[t])
    chosen_audience = audience.selectbox("Audience", [ANY, *AUDIENCES], key="session_audience",
                                         format_func=lambda a: "All audiences" if a == ANY else AUDIENCES[a].label)
    return SessionQuery.model_validate({"search": text.strip() or None,
                                        "type": None if chosen_type == ANY else chosen_type,
                                        "audience": None if chosen_audience == ANY else chosen_audience})


def session_table(sessions: list[Session]) -> Session:
    """The sessions as a table, and a picker for the one to open (the newest by default)."""
    rows = [{"when": s.created_at.strftime("%Y-%m-%d %H:%M"), "type": TYPE_LABELS.get(s.type, s.type),
             "title": s.title, "audience": s.audience or "", "rating": "★" * (s.rating or 0)} for s in sessions]
    st.dataframe(rows, hide_index=True, width="stretch", height=min(38 + 35 * len(rows), 250))
    by_id = {s.id: s for s in sessions}
    chosen = st.selectbox("Open a session", list(by_id), key="session_open",
                          format_func=lambda i: f"{by_id[i].created_at:%Y-%m-%d %H:%M} · "
                                                f"{TYPE_LABELS.get(by_id[i].type, '')} · {by_id[i].title}")
    return by_id.get(chosen or "", sessions[0])


def export_buttons(store: SessionStore, ids: list[str], key: str, label: str) -> None:
    """Markdown and JSON downloads of the given sessions."""
    md_col, json_col = st.columns(2)
    markdown = attempt(store.export, ids, "md")
    data = attempt(store.export, ids, "json")
    if markdown is not None:
        md_col.download_button(f"{label} (Markdown)", markdown, file_name="coach-sessions.md",
                               mime="text/markdown", key=f"md-{key}", icon=":material/download:")
    if data is not None:
        json_col.download_button(f"{label} (JSON)", data, file_name="coach-sessions.json",
                                 mime="application/json", key=f"json-{key}", icon=":material/download:")


def detail(settings: Settings, store: SessionStore, session: Session) -> None:
    """One session: its content, rating, notes, export and delete."""
    with st.container(border=True):
        st.subheader(one_line(session.title, 80))
        st.caption(f"{TYPE_LABELS.get(session.type, session.type)} · {session.created_at:%Y-%m-%d %H:%M} UTC")
        content(session)
        st.divider()
        manage(store, session)


def content(session: Session) -> None:
    """The saved rewrite (same views as the Rewrite page) or the conversation."""
    if session.result is not None:
        try:
            result = RewriteResult.model_validate(session.result)
        except ValidationError:  # saved by another version: show what is certainly there
            st.markdown(as_markdown(str(session.result.get("rewrite", ""))))
        else:
            render_result(result, session.draft, key=session.id)
    for message in session.messages:
        with st.chat_message(message.role):
            st.markdown(as_markdown(message.content))
            for citation in message.citations or []:
                with st.expander(f"Source: {one_line(citation.source, 80)}", icon=":material/format_quote:"):
                    st.markdown(as_markdown(citation.text))


def manage(store: SessionStore, session: Session) -> None:
    """Rating, notes, export, delete with confirmation."""
    stars_key = f"session-stars-{session.id}"
    if stars_key not in st.session_state and session.rating:
        st.session_state[stars_key] = session.rating - 1
    st.feedback("stars", key=stars_key, on_change=_save_rating, args=(store, session.id, stars_key))
    notes = st.text_area("Notes", value=session.notes, key=f"notes-{session.id}", height=80)
    if st.button("Save notes", key=f"save-notes-{session.id}", icon=":material/save:") and \
            attempt(store.set_notes, session.id, notes) is not None:
        st.toast("Notes saved.")
    export_buttons(store, [session.id], key=session.id, label="Export this session")
    with st.popover("Delete this session", icon=":material/delete:"):
        st.write("This removes the session for good.")
        if st.button("Yes, delete it", type="primary", key=f"delete-{session.id}") and \
                attempt(store.delete, session.id):
            st.session_state.pop("session_open", None)
            st.toast("Session deleted.")
            st.rerun()


def _save_rating(store: SessionStore, session_id: str, key: str) -> None:
    value = st.session_state.get(key)
    attempt(store.set_rating, session_id, None if value is None else int(value) + 1)


def progress_charts(stats: SessionStats) -> None:
    """Scores before/after per week and the principles most often flagged."""
    weeks = [w for w in stats.weeks if w.rewrites]
    if not weeks:
        st.caption("Progress charts appear after your first rewrite.")
        return
    grade, principles = st.columns(2)
    with grade:
        st.markdown("**Reading grade per week** (lower reads easier)")
        st.bar_chart({"week": [f"{w.week_start:%d %b}" for w in weeks],
                      "draft": [w.fk_grade_before for w in weeks], "rewrite": [w.fk_grade_after for w in weeks]},
                     x="week", y=["draft", "rewrite"], stack=False, height=220, color=["#9aa5b1", "#2e7d32"])
    with principles:
        st.markdown("**Principles most often flagged**")
        if stats.top_principles:
            st.bar_chart({"principle": [p.principle for p in stats.top_principles],
                          "sessions": [p.sessions for p in stats.top_principles]},
                         x="principle", y="sessions", horizontal=True, height=220)


@guarded
def render() -> None:
    """The Sessions page."""
    st.title("Sessions")
    settings = current_settings()
    store = session_store(settings)
    stats = attempt(store.stats)
    if stats is not None:
        with st.expander(f"Your progress · {stats.sessions} session(s)", expanded=bool(stats.sessions),
                         icon=":material/trending_up:"):
            progress_charts(stats)
    query = filters()
    sessions = attempt(store.list, query) or []
    if not sessions:
        st.info("No sessions yet. Rewrites and conversations are saved here automatically."
                if query == SessionQuery() else "No session matches these filters.", icon=":material/inbox:")
        return
    st.caption(f"{len(sessions)} session(s), newest first.")
    chosen = session_table(sessions)
    export_buttons(store, [s.id for s in sessions], key="all", label="Export these")
    detail(settings, store, chosen)

"""Sessions page: find a saved rewrite or conversation, look at it again, rate it, annotate it, export or
delete it, and see progress over the weeks.

Built to stay quick at 10,000 sessions: the list is read a page at a time (``SessionQuery`` limit/offset,
one extra row tells whether older sessions follow), and the export of every matching session, which reads
them all, is built only when the user asks for it, not on every rerun.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import streamlit as st
from pydantic import ValidationError

from coach.config import Settings
from coach.corpus import load_principles
from coach.rewrite_models import AUDIENCES, KINDS, RewriteResult
from coach.roleplay import PERSONAS, SCENARIOS
from coach.session_models import Session, SessionQuery, SessionStats
from coach.sessions import SessionStore
from coach.ui.context import current_settings, session_store
from coach.ui.guard import attempt, guarded
from coach.ui.markdown import as_markdown, one_line
from coach.ui.result_view import rating_label, render_result, thumbs

TYPE_LABELS = {"rewrite": "Rewrite", "chat": "Chat", "roleplay": "Role-play"}
ANY = "any"
PAGE_SIZE = 50  # sessions listed at once: the list, its table and its picker stay fast at 10,000 sessions


def audience_labels() -> dict[str, str]:
    """Rewrite audiences, then the role-play personas that are not also an audience."""
    labels = {a: audience.label for a, audience in AUDIENCES.items()}
    labels.update({p: f"{persona.title} (role-play)" for p, persona in PERSONAS.items() if p not in labels})
    return labels


def kind_labels() -> dict[str, str]:
    """Kinds of rewritten message, then the role-play scenarios (a role-play stores its scenario as its kind)."""
    return {**KINDS, **{s: f"{scenario.title} (role-play)" for s, scenario in SCENARIOS.items()}}


def principle_names(settings: Settings) -> dict[str, str]:
    """Principle id -> name, from the catalogue (empty when it cannot be read: ids are shown instead)."""
    return {p.id: p.name for p in attempt(load_principles, settings) or []}


def filters(principles: dict[str, str]) -> SessionQuery:
    """Search box and filters (type, audience, kind, principle, dates); the query without paging."""
    search, kind, audience = st.columns([3, 1, 1], vertical_alignment="bottom")
    text = search.text_input("Search", key="session_search", placeholder="Words from the draft, rewrite or notes")
    chosen_type = kind.selectbox("Type", [ANY, *TYPE_LABELS], key="session_type",
                                 format_func=lambda t: "All types" if t == ANY else TYPE_LABELS[t])
    audiences = audience_labels()
    chosen_audience = audience.selectbox("Audience", [ANY, *audiences], key="session_audience",
                                         format_func=lambda a: "All audiences" if a == ANY else audiences[a])
    kind_col, principle_col, dates_col = st.columns([1, 2, 1.3], vertical_alignment="bottom")
    kinds = kind_labels()
    chosen_kind = kind_col.selectbox("Kind", [ANY, *kinds], key="session_kind",
                                     format_func=lambda k: "All kinds" if k == ANY else kinds[k])
    chosen_principle = principle_col.selectbox(
        "Principle flagged", [ANY, *principles], key="session_principle",
        format_func=lambda p: "Any principle" if p == ANY else principles[p])
    dates = dates_col.date_input("Dates (UTC)", value=[], key="session_dates", format="YYYY-MM-DD")
    since, until = date_bounds(dates)
    return SessionQuery.model_validate({
        "search": text.strip() or None, "type": _chosen(chosen_type), "audience": _chosen(chosen_audience),
        "kind": _chosen(chosen_kind), "principle": _chosen(chosen_principle), "since": since, "until": until})


def _chosen(value: str | None) -> str | None:
    return None if value in (ANY, None) else value


def date_bounds(dates: Any) -> tuple[datetime | None, datetime | None]:
    """A picked date range as [start of the first day, start of the day after the last), in UTC."""
    picked = [d for d in (dates if isinstance(dates, list | tuple) else [dates]) if isinstance(d, date)]
    if not picked:
        return None, None
    since = datetime.combine(picked[0], time.min, tzinfo=UTC)
    until = datetime.combine(picked[-1] + timedelta(days=1), time.min, tzinfo=UTC) if len(picked) > 1 else None
    return since, until


def current_page(query: SessionQuery) -> int:
    """The page of the list being shown (0 = newest); back to the first page when the filters change."""
    signature = query.model_dump_json()
    if st.session_state.get("session_query") != signature:
        st.session_state["session_query"] = signature
        st.session_state["session_page"] = 0
    return int(st.session_state.get("session_page", 0))


def page_of(store: SessionStore, query: SessionQuery, page: int) -> tuple[list[Session], bool] | None:
    """One page of matching sessions and whether older ones follow (None after an error, already shown)."""
    paged = query.model_copy(update={"limit": PAGE_SIZE + 1, "offset": page * PAGE_SIZE})
    sessions = attempt(store.list, paged)
    if sessions is None:
        return None
    return sessions[:PAGE_SIZE], len(sessions) > PAGE_SIZE


def pager(page: int, count: int, more: bool) -> None:
    """Which sessions are listed, and buttons to the newer and older ones."""
    first = page * PAGE_SIZE + 1
    label, newer, older = st.columns([4, 1, 1], vertical_alignment="center")
    label.caption(f"Sessions {first}–{first + count - 1}, newest first." if page or more
                  else f"{count} session(s), newest first.")
    if page or more:
        newer.button("Newer", key="session_newer", disabled=not page, on_click=_turn, args=(-1,),
                     icon=":material/chevron_left:", width="stretch")
        older.button("Older", key="session_older", disabled=not more, on_click=_turn, args=(1,),
                     icon=":material/chevron_right:", width="stretch")


def _turn(step: int) -> None:
    st.session_state["session_page"] = max(0, int(st.session_state.get("session_page", 0)) + step)
    st.session_state.pop("session_open", None)  # open the newest session of the new page


def session_table(sessions: list[Session]) -> Session:
    """The sessions as a table, and a picker for the one to open (the newest by default)."""
    audiences = audience_labels()
    rows = [{"when": s.created_at.strftime("%Y-%m-%d %H:%M"), "type": TYPE_LABELS.get(s.type, s.type),
             "title": s.title, "audience": audiences.get(s.audience or "", s.audience or ""),
             "rating": rating_label(s.rating)} for s in sessions]
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


def bulk_export(store: SessionStore, query: SessionQuery) -> None:
    """Every session matching the filters as Markdown and JSON, built only when asked (it reads them all)."""
    signature = query.model_dump_json()
    prepared = st.session_state.get("session_export")
    if prepared is None or prepared[0] != signature:
        if not st.button("Prepare an export of all matching sessions", key="prepare_export",
                         icon=":material/package_2:"):
            return
        markdown = attempt(store.export, query, "md")
        data = attempt(store.export, query, "json") if markdown is not None else None
        if markdown is None or data is None:
            return
        st.session_state["session_export"] = prepared = (signature, markdown, data)
    _, markdown, data = prepared
    md_col, json_col = st.columns(2)
    md_col.download_button("Export all matching (Markdown)", markdown, file_name="coach-sessions.md",
                           mime="text/markdown", key="md-all", icon=":material/download:")
    json_col.download_button("Export all matching (JSON)", data, file_name="coach-sessions.json",
                             mime="application/json", key="json-all", icon=":material/download:")


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
    thumbs(f"session-thumbs-{session.id}", session.rating,
           lambda value: attempt(store.set_rating, session.id, value))
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


def progress_charts(stats: SessionStats, principles: dict[str, str]) -> None:
    """Scores before/after per week (reading grade, jargon) and the principles most often flagged."""
    weeks = [w for w in stats.weeks if w.rewrites]
    if not weeks:
        st.caption("Progress charts appear after your first rewrite.")
        return
    labels = [f"{w.week_start:%d %b}" for w in weeks]
    scores, flagged = st.columns([1, 1.3], gap="large")
    with scores:
        grade, jargon = st.tabs(["Reading grade per week", "Jargon terms per week"])
        with grade:
            st.caption("Average reading grade of your drafts and their rewrites (lower reads easier).")
            weekly_chart(labels, [w.fk_grade_before for w in weeks], [w.fk_grade_after for w in weeks])
        with jargon:
            st.caption("Average jargon terms per draft and rewrite (fewer is better).")
            weekly_chart(labels, [w.jargon_before for w in weeks], [w.jargon_after for w in weeks])
    with flagged:
        st.markdown("**Principles most often flagged**")
        if stats.top_principles:
            top = max(p.sessions for p in stats.top_principles)
            # A table, not a chart: principle names are long, and a chart axis cuts them off.
            st.dataframe({"principle": [principles.get(p.principle, p.principle) for p in stats.top_principles],
                          "sessions": [p.sessions for p in stats.top_principles]},
                         hide_index=True, width="stretch", column_config={
                             "principle": st.column_config.TextColumn("Principle"),
                             "sessions": st.column_config.ProgressColumn("Sessions", format="%d", min_value=0,
                                                                         max_value=top, width="small")})
        else:
            st.caption("No principle flagged yet.")


def weekly_chart(weeks: list[str], before: list[float | None], after: list[float | None]) -> None:
    """Draft and rewrite averages side by side for each week."""
    st.bar_chart({"week": weeks, "draft": before, "rewrite": after}, x="week", y=["draft", "rewrite"],
                 stack=False, height=220, x_label="", y_label="", color=["#9aa5b1", "#2e7d32"])


@guarded
def render() -> None:
    """The Sessions page."""
    st.title("Sessions")
    settings = current_settings()
    store = session_store(settings)
    principles = principle_names(settings)
    progress = st.container()  # filled once the list has loaded, so a storage error is shown once
    query = filters(principles)
    page = current_page(query)
    listed = page_of(store, query, page)
    if listed is None:
        return
    sessions, more = listed
    stats = attempt(store.stats)
    if stats is not None:
        with progress.expander(f"Your progress · {stats.sessions} session(s)", expanded=bool(stats.sessions),
                               icon=":material/trending_up:"):
            progress_charts(stats, principles)
    if not sessions:
        st.info("No sessions yet. Rewrites and conversations are saved here automatically."
                if query == SessionQuery() else "No session matches these filters.", icon=":material/inbox:")
        return
    pager(page, len(sessions), more)
    chosen = session_table(sessions)
    bulk_export(store, query)
    detail(settings, store, chosen)

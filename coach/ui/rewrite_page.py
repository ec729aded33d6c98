"""Rewrite page: a draft in, a rewrite out, streamed, then explained change by change.

State kept in ``st.session_state`` so reruns (rating, tabs, answering questions) do not lose anything: the
draft (also autosaved through ``DraftStore``, so it survives a model failure and a page reload), the last
result and the draft it was made from. The rewrite service saves the session itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from coach.config import Settings
from coach.documents import MAX_UPLOAD_BYTES
from coach.errors import CoachError
from coach.rewrite_models import AUDIENCES, KINDS, RewriteRequest, RewriteResult
from coach.ui.context import current_settings, draft_store, prepare_index, prepare_model, session_store
from coach.ui.draft_files import DRAFT_SUFFIXES, draft_from_file
from coach.ui.guard import attempt, error_markdown, guarded, show_error
from coach.ui.markdown import as_markdown, one_line
from coach.ui.result_view import render_result, thumbs

DRAFT_KEY = "rewrite"  # the DraftStore key
STREAM_REFRESH_S = 0.15  # redraw the streamed text at most this often: each redraw is a websocket message


def rewrite_service() -> Callable[..., RewriteResult] | None:
    """``coach.rewrite.rewrite_draft``, or None while that module does not exist."""
    try:
        from coach.rewrite import rewrite_draft
    except ModuleNotFoundError as missing:
        if missing.name != "coach.rewrite":
            raise
        return None
    return rewrite_draft


def autosave(settings: Settings) -> None:
    """Save the draft being edited (called on every change of the text area)."""
    try:
        draft_store(settings).save_draft(DRAFT_KEY, st.session_state.get("draft_text", ""))
    except CoachError as error:  # autosave must never stop the user from working
        st.session_state["autosave_error"] = error_markdown(error)  # escaped: shown as Markdown


def restore_draft(settings: Settings) -> None:
    """Put the autosaved draft back in the editor on a fresh browser session."""
    if "draft_text" not in st.session_state:
        st.session_state["draft_text"] = attempt(draft_store(settings).load_draft, DRAFT_KEY) or ""


def take_upload(settings: Settings) -> None:
    """Load an uploaded file into the editor once (a new file replaces the text, the same file does not)."""
    upload = st.session_state.get("draft_upload")
    if upload is None or st.session_state.get("draft_upload_seen") == upload.file_id:
        return
    st.session_state["draft_upload_seen"] = upload.file_id
    text = attempt(draft_from_file, upload.name, upload.getvalue())
    if text is not None:
        st.session_state["draft_text"] = text
        autosave(settings)


class TokenStream:
    """Shows streamed text as it arrives, redrawn at most every ``STREAM_REFRESH_S`` seconds."""

    def __init__(self, slot: Any) -> None:
        self.slot = slot
        self.text = ""
        self.drawn_at = 0.0

    def __call__(self, piece: str) -> None:
        self.text += piece
        if time.monotonic() - self.drawn_at >= STREAM_REFRESH_S:
            self.flush()

    def flush(self) -> None:
        """Draw everything received so far."""
        self.drawn_at = time.monotonic()
        self.slot.markdown(as_markdown(self.text) or "…")


def run_rewrite(settings: Settings, request: RewriteRequest) -> None:
    """Call the service with a live view of the rewrite; keep the result, or show the error."""
    service = rewrite_service()
    if service is None:
        st.error("The rewrite is not available yet in this version of the coach.", icon=":material/construction:")
        return
    prepare_model(settings)
    prepare_index(settings)
    audience = AUDIENCES[request.audience].label
    with st.status(f"Rewriting for {audience}…", expanded=True) as box:
        stream = TokenStream(st.empty())

        def progress(*stage: Any) -> None:
            label = str(stage[0]) if stage else "working"
            if label.startswith("attempt"):  # a new sample replaces the streamed one: start the view afresh
                stream.text = ""
                label = f"checks found problems; trying again ({label} of 3)"
            box.update(label=f"{label.capitalize()}…")

        try:
            result = service(settings, request, on_token=stream, on_progress=progress, store=session_store(settings))
        except CoachError as error:
            box.update(label="The rewrite did not finish.", state="error", expanded=False)
            show_error(error)
            return
        stream.flush()
        box.update(label=f"Rewritten for {audience}.", state="complete", expanded=False)
    st.session_state["rewrite_result"] = result
    st.session_state["rewrite_source"] = request.draft


def draft_form(settings: Settings) -> RewriteRequest | None:
    """The draft editor and options; the request when the user asks for a rewrite."""
    editor, options = st.columns([2, 1], gap="large")
    with editor:
        st.text_area("Your draft", key="draft_text", height=236, on_change=autosave, args=(settings,),
                     placeholder="Paste an email, a status report, metrics, an incident summary or a change notice.")
    with options:
        audience = st.selectbox("Audience", list(AUDIENCES), format_func=lambda a: capitalised(AUDIENCES[a].label),
                                key="audience")
        kind = st.selectbox("Kind of message", ["auto", *KINDS],
                            format_func=lambda k: "Detect it for me" if k == "auto" else capitalised(KINDS[k]),
                            key="kind")
        st.text_area("Business figures (optional, one per line)", key="figures", height=90,
                     placeholder="One hour of downtime costs $20,000")
        st.file_uploader("Or upload a draft", type=list(DRAFT_SUFFIXES), key="draft_upload",
                         max_upload_size=MAX_UPLOAD_BYTES // 2**20,
                         on_change=take_upload, args=(settings,))
    if not st.button("Rewrite", type="primary", icon=":material/auto_fix_high:", key="rewrite_button"):
        return None
    return build_request(audience, kind, figures_of(st.session_state.get("figures", "")))


def capitalised(label: str) -> str:
    """``label`` with only its first letter raised ('the CFO' -> 'The CFO', not 'The cfo')."""
    return label[:1].upper() + label[1:]


def figures_of(text: str) -> list[str]:
    """One supplied figure per non-empty line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def build_request(audience: str, kind: str, supplied: list[str]) -> RewriteRequest | None:
    """The request for the current draft, or an error message when the draft is empty."""
    draft = st.session_state.get("draft_text", "")
    if not draft.strip():
        st.error("The draft is empty. Paste a draft or upload a file, then press Rewrite.", icon=":material/edit:")
        return None
    return RewriteRequest(draft=draft, audience=audience, kind=kind, supplied_facts=supplied)  # type: ignore[arg-type]


def questions_form(settings: Settings, result: RewriteResult) -> None:
    """The coach's questions, each with a field; answering re-runs the rewrite with those figures."""
    if not result.questions:
        return
    st.subheader("The coach asks")
    with st.form("questions"):
        answers = [st.text_input(one_line(q, 300), key=f"answer-{i}") for i, q in enumerate(result.questions)]
        rerun = st.form_submit_button("Rewrite again with these answers", icon=":material/refresh:")
    if rerun:
        supplied = [f"{q.rstrip('?').strip()}: {a.strip()}" for q, a in zip(result.questions, answers, strict=True)
                    if a.strip()]
        base = figures_of(st.session_state.get("figures", ""))
        st.session_state["pending_request"] = RewriteRequest(
            draft=st.session_state["rewrite_source"], audience=result.audience, kind=result.kind,
            supplied_facts=base + supplied)
        st.rerun()  # the next run rewrites above the old result's place, with its progress shown


def rating(settings: Settings, result: RewriteResult) -> None:
    """Thumbs up or down for this rewrite, saved to its session."""
    session_id = result.session_id
    if not session_id:
        return
    st.caption("Was this rewrite useful? Your answer is saved with the session.")
    thumbs(f"thumbs-{session_id}", None,
           lambda value: attempt(session_store(settings).set_rating, session_id, value))


@guarded
def render() -> None:
    """The Rewrite page."""
    st.title("Rewrite a draft")
    st.caption("The coach rewrites your draft for a business audience, keeps every figure, and explains each "
               "change with the leadership principle behind it. Your draft is saved as you type.")
    settings = current_settings()
    restore_draft(settings)
    request = draft_form(settings) or st.session_state.pop("pending_request", None)
    if st.session_state.get("autosave_error"):
        st.warning(f"Autosave failed: {st.session_state.pop('autosave_error')}", icon=":material/save:")
    if request is not None:
        autosave(settings)
        st.session_state.pop("rewrite_result", None)
        run_rewrite(settings, request)
    result: RewriteResult | None = st.session_state.get("rewrite_result")
    if result is None:
        return
    st.divider()
    render_result(result, st.session_state.get("rewrite_source", ""), key="current")
    questions_form(settings, result)
    rating(settings, result)

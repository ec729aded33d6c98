"""What a page needs from the browser session: its settings, the stores, and a warmed-up model.

Settings chosen on the Settings page (backend, model, server URL, API key) live in ``st.session_state``
only, so a key typed in the browser is used for this session and never written to disk; they are passed to
``load_settings`` as explicit values, which beat secrets and the environment. The first request on the
embedded backend joins, checks and loads a 1.1 GB model: ``prepare_model`` does that under a progress bar
so the page shows what is happening instead of freezing.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from coach.config import Settings, load_settings
from coach.identity import SignInRequired, current_user, oidc_configured
from coach.sessions import DraftStore, SessionStore
from coach.ui.markdown import escape_markdown

OVERRIDES_KEY = "coach_settings"


def overrides() -> dict[str, Any]:
    """The settings this browser session chose (may hold a key: never log or store this dict)."""
    return dict(st.session_state.get(OVERRIDES_KEY, {}))


def set_overrides(values: dict[str, Any]) -> None:
    """Replace this browser session's choices (empty values mean: use the configured default)."""
    st.session_state[OVERRIDES_KEY] = {k: v for k, v in values.items() if v not in (None, "")}


def current_settings() -> Settings:
    """Settings for this browser session (raises ``ConfigError`` when they are contradictory)."""
    return load_settings(**overrides())


def signed_in_user(settings: Settings) -> str | None:
    """This request's user (None in single-user mode); otherwise a sign-in prompt and the page stops here."""
    try:
        return current_user(settings)
    except SignInRequired as error:
        # The message can quote a header name or a claim: escaped, as any text that is not the coach's own.
        hint = f" {error.hint}" if error.hint else ""
        st.warning(escape_markdown(error.message) + hint)
        if oidc_configured(st.user.to_dict()):
            st.button("Sign in", on_click=st.login)
        st.stop()
        raise  # st.stop() raises; this line only tells type checkers the function ends here


def session_store(settings: Settings) -> SessionStore:
    """The saved sessions of this request's user (everyone's in single-user mode)."""
    return SessionStore(settings, user_id=signed_in_user(settings))


def draft_store(settings: Settings) -> DraftStore:
    """This request's user's autosaved drafts and chat inputs."""
    return DraftStore(settings, user_id=signed_in_user(settings))


def prepare_model(settings: Settings) -> None:
    """Make sure the chat model is ready, with visible progress the first time (embedded backend only)."""
    if settings.backend != "local":
        return
    from coach.local_model import ensure_model_file, model_status
    from coach.models import open_chat_model
    from coach.rewrite_strategies import warm_up

    if model_status().state == "ready":
        return
    with st.status("Warming up the embedded model (first start only)…", expanded=True) as box:
        bar = st.progress(0.0, text="Checking the model file…")

        def progress(stage: str, done: int, total: int) -> None:
            share = min(done / total, 1.0) if total else 0.0
            bar.progress(share, text=f"{stage.capitalize()}: {share:.0%}")

        ensure_model_file(settings, progress)
        bar.progress(1.0, text="Loading the model into memory…")
        handle = open_chat_model(settings)
        bar.progress(1.0, text="Reading the rewrite instructions once, so rewrites start fast…")
        warm_up(handle)
        box.update(label="The embedded model is ready.", state="complete", expanded=False)


def prepare_index(settings: Settings) -> None:
    """Build the corpus index on first use, with a progress bar (later builds happen in the Library)."""
    from coach.index import open_index

    index = open_index(settings)
    if index.stats()["chunks"]:
        return
    with st.status("Indexing the essays (first start only)…", expanded=True) as box:
        bar = st.progress(0.0)

        def progress(done: int, total: int) -> None:
            bar.progress(min(done / max(total, 1), 1.0))

        index.build(progress=progress)
        box.update(label="The essays are indexed.", state="complete", expanded=False)

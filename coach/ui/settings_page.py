"""Settings page: which chat model the coach uses in this browser session, a connection test, and the
embedded model's status.

Choices are kept in ``st.session_state`` only (see ``coach.ui.context``): an API key typed here is used by
this browser tab and forgotten when it closes; it is never written to disk, logged or shown again.
"""

from __future__ import annotations

import streamlit as st

from coach.config import Settings
from coach.errors import CoachError
from coach.ui.context import current_settings, overrides, prepare_model, set_overrides
from coach.ui.guard import attempt, guarded, show_error
from coach.ui.markdown import one_line

BACKENDS = {"local": "Embedded model (offline, on this computer)", "openai": "OpenAI",
            "compatible": "OpenAI-compatible server (Ollama, vLLM, LM Studio…)"}
TEST_PROMPT = "Reply with the single word: ready"


def backend_form(current: Settings) -> None:
    """Backend, model, server URL and key; applied to this browser session on submit."""
    chosen = overrides()
    options = list(BACKENDS) + (["fake"] if current.backend == "fake" else [])
    with st.form("backend"):
        backend = st.radio("Chat model", options, index=options.index(current.backend),
                           format_func=lambda b: BACKENDS.get(b, "Scripted test model"))
        model = st.text_input("Model name (OpenAI or server)", value=chosen.get("model", current.model or ""),
                              placeholder="gpt-4o-mini, qwen2.5:7b…")
        base_url = st.text_input("Server URL (OpenAI-compatible only)", value=chosen.get("base_url", ""),
                                 placeholder="http://localhost:11434/v1")
        key = st.text_input("OpenAI API key (kept for this browser session only)", type="password",
                            placeholder="set" if chosen.get("openai_api_key") else "sk-…")
        submitted = st.form_submit_button("Use these settings", type="primary", icon=":material/check:")
    if submitted:
        apply(backend, model, base_url, key or chosen.get("openai_api_key", ""))


def apply(backend: str, model: str, base_url: str, key: str) -> None:
    """Store the choices for this session, after checking they make a valid configuration."""
    values = {"backend": backend, "model": model.strip(), "openai_api_key": key.strip(),
              "base_url": base_url.strip() if backend == "compatible" else ""}
    previous = overrides()
    set_overrides(values)
    try:
        current_settings()
    except CoachError as error:
        set_overrides(previous)
        show_error(error)
        return
    st.success("Settings applied to this browser session.", icon=":material/check_circle:")


def connection_test(settings: Settings) -> None:
    """Ask the configured model for one word and report how long it took."""
    from coach.models import GenerationOptions, generate, open_chat_model

    prepare_model(settings)
    with st.spinner(f"Asking {one_line(settings.model_label, 60)}…"):
        handle = attempt(open_chat_model, settings)
        if handle is None:
            return
        from langchain_core.messages import HumanMessage

        generation = attempt(generate, handle, [HumanMessage(content=TEST_PROMPT)],
                             GenerationOptions(max_tokens=8, temperature=0.0))
    if generation is not None:
        st.success(f"{one_line(settings.model_label, 60)} answered in {(generation.total_ms or 0) / 1000:.1f} s.",
                   icon=":material/wifi:")


def embedded_status(settings: Settings) -> None:
    """The embedded model's state, and a button to prepare it ahead of the first rewrite."""
    from coach.local_model import model_status

    status = model_status()
    st.metric("Embedded model", status.state.capitalize(), help=f"Model: {one_line(settings.local_model, 120)}")
    if status.message:
        st.caption(one_line(status.message, 300))
    if status.state != "ready" and settings.backend == "local" and st.button(
            "Prepare the embedded model now", icon=":material/download_for_offline:", key="prepare_model"):
        prepare_model(settings)


@guarded
def render() -> None:
    """The Settings page."""
    st.title("Settings")
    settings = current_settings()
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader("Chat model")
        backend_form(settings)
        settings = current_settings()
    with right:
        st.subheader("Status")
        st.markdown(f"In use: **{one_line(settings.model_label, 60)}**")
        if st.button("Test connection", icon=":material/network_check:", key="test_connection"):
            connection_test(settings)
        embedded_status(settings)
        st.caption(f"Data folder: {one_line(str(settings.data_dir), 200)}")

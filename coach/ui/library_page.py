"""Library page: the essays and the principles they teach, and the organisation's own documents.

Adding a document validates it (``coach.corpus.add_user_document``: size, type, extractable text, hidden
text stripped and reported) and then re-indexes with a progress bar; removing one re-indexes too, so the
coach never cites a document that is no longer in the library.
"""

from __future__ import annotations

import streamlit as st

from coach.config import Settings
from coach.corpus import Document, add_user_document, load_documents, load_principles, remove_user_document
from coach.documents import MAX_UPLOAD_BYTES, SUPPORTED_SUFFIXES
from coach.ui.context import current_settings
from coach.ui.guard import attempt, guarded, succeeded
from coach.ui.markdown import as_markdown, escape_markdown, one_line


def reindex(settings: Settings, label: str) -> None:
    """Bring the index in line with the library, showing progress."""
    from coach.index import open_index

    bar = st.progress(0.0, text=label)

    def progress(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{label} {done}/{total}")

    report = attempt(open_index(settings).build, progress=progress)
    bar.empty()
    if report is not None:
        st.toast(f"Index up to date: {report.documents} documents, {report.chunks} passages.")


def essays(documents: list[Document]) -> None:
    """The shipped essays, readable in full."""
    for document in (d for d in documents if d.origin == "essay"):
        author = f" — {escape_markdown(document.author)}" if document.author else ""
        with st.expander(f"**{one_line(document.title, 90)}**{author}", icon=":material/article:"):
            st.caption(f"Source: {one_line(document.source, 120)}")
            st.markdown(as_markdown(document.text))


def principles(settings: Settings) -> None:
    """The principle catalogue: name, statement, what to look for, and the essay quote it rests on."""
    catalogue = attempt(load_principles, settings) or []
    query = st.text_input("Filter principles", key="principle_filter", placeholder="e.g. metrics, trust").lower()
    for principle in catalogue:
        if query and query not in f"{principle.name} {principle.statement} {principle.id}".lower():
            continue
        with st.container(border=True):
            st.markdown(f"**{escape_markdown(principle.name)}** · `{principle.id}`")
            st.markdown(as_markdown(principle.statement))
            st.markdown("Look for: " + "; ".join(one_line(item, 120) for item in principle.look_for))
            with st.expander(f"Quote from {one_line(principle.source, 60)}", icon=":material/format_quote:"):
                st.markdown(as_markdown(principle.quote))


def add_document(settings: Settings) -> None:
    """Upload, validate, store and index one organisation document."""
    st.markdown("Add your organisation's vision, strategy, goals or style guide: the coach will align its "
                "advice with them and cite them.")
    upload = st.file_uploader(f"Document ({', '.join(SUPPORTED_SUFFIXES)}; up to {MAX_UPLOAD_BYTES // 2**20} MB)",
                              type=[s.lstrip(".") for s in SUPPORTED_SUFFIXES], key="library_upload",
                              max_upload_size=MAX_UPLOAD_BYTES // 2**20)
    if upload is None or not st.button("Add to the library", type="primary", icon=":material/library_add:",
                                       key="library_add"):
        return
    document = attempt(add_user_document, settings, upload.name, upload.getvalue())
    if document is None:
        return
    for warning in document.warnings:
        st.warning(f"{one_line(document.source, 80)}: {one_line(warning, 300)}", icon=":material/visibility_off:")
    reindex(settings, f"Indexing {one_line(document.source, 80)}…")
    st.success(f"Added {one_line(document.title, 80)}.", icon=":material/check_circle:")


def organisation(settings: Settings, documents: list[Document]) -> None:
    """The organisation's documents, each removable after a confirmation."""
    own = [d for d in documents if d.origin == "organisation"]
    if not own:
        st.caption("No organisation documents yet.")
    for document in own:
        with st.container(border=True):
            text_col, action = st.columns([5, 1])
            text_col.markdown(f"**{one_line(document.title, 80)}** · {one_line(document.source, 60)} · "
                              f"{len(document.text.split())} words")
            for warning in document.warnings:
                text_col.caption(f"⚠ {one_line(warning, 200)}")
            with action.popover("Remove", icon=":material/delete:"):
                st.write("Remove this document from the library?")
                # On failure the error stays on screen: no reindex, no rerun that would wipe it.
                if st.button("Yes, remove it", type="primary", key=f"remove-{document.id}") and \
                        succeeded(remove_user_document, settings, document.id):
                    reindex(settings, "Updating the index…")
                    st.rerun()


@guarded
def render() -> None:
    """The Library page."""
    st.title("Library")
    st.caption("The essays the coach's principles come from, the principles themselves, and your organisation's "
               "own documents.")
    settings = current_settings()
    own_tab, principles_tab, essays_tab = st.tabs(["Your organisation", "Principles", "Essays"])
    with own_tab:
        add_document(settings)
        st.subheader("Your documents")
        organisation(settings, attempt(load_documents, settings) or [])
    documents = attempt(load_documents, settings) or []
    with principles_tab:
        principles(settings)
    with essays_tab:
        essays(documents)

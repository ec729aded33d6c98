"""A rewrite result on screen: notices first, then draft and rewrite side by side, then the explanations.

Shared by the Rewrite page (fresh result) and the Sessions page (saved result). The order is deliberate:
anything the leader must check before sending (a fact the rewrite lost, a figure it added, a rewrite that
needs review) comes before the rewrite itself, in red or amber, so it cannot be overlooked.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from coach.rewrite_models import AUDIENCES, KINDS, FeedbackItem, RewriteResult, Scores
from coach.session_models import RATING_MAX, RATING_MIN
from coach.ui.markdown import as_markdown, escape_markdown, highlighted, one_line, word_diff

SCORE_LABELS = {
    "fk_grade": ("Reading grade", "inverse"),
    "reading_ease": ("Reading ease", "normal"),
    "jargon": ("Jargon terms", "inverse"),
    "undefined_acronyms": ("Undefined acronyms", "inverse"),
    "accountability": ("Owners & dates", "normal"),
}
CHART_LABELS = {"fk_grade": "Grade", "jargon": "Jargon", "undefined_acronyms": "Acronyms",
                "accountability": "Owners & dates"}  # short: chart axes have little room

# A rating is stored as 1-5 (``Session.rating``); the app asks thumbs up or down, stored as 5 or 1, so the
# ratings given with stars by earlier versions stay valid and show as the thumb they lean to (3: neither).
THUMB_RATINGS = (RATING_MIN, RATING_MAX)  # st.feedback("thumbs") gives 0 for down, 1 for up


def thumb_of(rating: int | None) -> int | None:
    """The thumb a stored rating shows as: 4-5 up (1), 1-2 down (0), 3 or unrated neither."""
    if rating is None or rating * 2 == RATING_MIN + RATING_MAX:
        return None
    return 1 if rating * 2 > RATING_MIN + RATING_MAX else 0


def rating_of(thumb: int | None) -> int | None:
    """The stored rating for a thumb (None clears it)."""
    return None if thumb is None else THUMB_RATINGS[thumb]


def rating_label(rating: int | None) -> str:
    """A stored rating in words, for lists."""
    thumb = thumb_of(rating)
    if thumb is None:
        return "" if rating is None else f"{rating}/{RATING_MAX}"
    return "helpful" if thumb else "not helpful"


def thumbs(key: str, rating: int | None, save: Callable[[int | None], object]) -> None:
    """Thumbs up/down showing ``rating``; a click saves the matching stored rating through ``save``."""

    def changed() -> None:
        save(rating_of(st.session_state.get(key)))

    st.feedback("thumbs", key=key, default=thumb_of(rating), on_change=changed)


def render_result(result: RewriteResult, draft: str, key: str) -> None:
    """The whole result: notices, fact lock, side by side, copy/download, then feedback, scores and facts."""
    render_notices(result)
    render_side_by_side(draft, result.rewrite)
    render_copy(result, key)
    feedback_tab, facts_tab, scores_tab = st.tabs(
        [f"Feedback ({len(result.feedback)})", f"Fact lock ({len(result.facts.draft)})", "Scores"]
    )
    with feedback_tab:
        render_feedback(result.feedback)
    with facts_tab:
        render_facts(result)
    with scores_tab:
        render_scores(result)


def render_notices(result: RewriteResult) -> None:
    """What must be checked before sending: review needed, missing facts, added figures, other flags."""
    if result.review_required:
        st.warning("**Draft to review.** The coach could not verify everything in this rewrite: check the "
                   "points below against your draft before sending it.", icon=":material/rate_review:")
    if result.facts.missing:
        items = "\n".join(f"- {one_line(f)}" for f in result.facts.missing)
        st.error(f"**{len(result.facts.missing)} fact(s) from your draft are missing from the rewrite:**\n{items}",
                 icon=":material/report:")
    if result.facts.added:
        items = "\n".join(f"- {one_line(f)}" for f in result.facts.added)
        st.warning(f"**Figures in the rewrite that your draft did not have:**\n{items}", icon=":material/warning:")
    for flag in result.flags:
        if flag.kind in ("missing_fact", "added_figure"):
            continue  # already listed above, from the fact report
        excerpt = f" — “{one_line(flag.excerpt, 120)}”" if flag.excerpt else ""
        st.warning(f"{one_line(flag.message, 300)}{excerpt}", icon=":material/flag:")
    if result.kept_sentences:
        items = "\n".join(f"- {one_line(k, 160)}" for k in result.kept_sentences[:8])
        more = f"\n- … and {len(result.kept_sentences) - 8} more" if len(result.kept_sentences) > 8 else ""
        st.info(f"**{len(result.kept_sentences)} of {result.sentences} sentences are as you wrote them** (only "
                "jargon swapped for plain words): the model's versions did not pass the coach's checks.\n"
                f"{items}{more}", icon=":material/edit_note:")
    if not (result.facts.missing or result.facts.added or result.review_required):
        st.success(f"Fact lock: all {len(result.facts.draft)} facts of your draft are in the rewrite, "
                   "and it adds no figures of its own.", icon=":material/verified:")


def render_side_by_side(draft: str, rewrite: str) -> None:
    """Draft and rewrite in two columns, removed words marked red, added words green."""
    runs = word_diff(draft, rewrite)
    left, right = st.columns(2)
    with left:
        st.markdown("##### Your draft")
        with st.container(border=True):
            st.markdown(highlighted(runs, "removed") or "—")
    with right:
        st.markdown("##### Rewrite")
        with st.container(border=True):
            st.markdown(highlighted(runs, "added") or "—")


def render_copy(result: RewriteResult, key: str) -> None:
    """The rewrite as plain text with a copy button, and a download."""
    with st.expander("Copy or download the rewrite", expanded=False, icon=":material/content_copy:"):
        st.code(result.rewrite, language=None, wrap_lines=True)
        st.download_button("Download as text", data=result.rewrite, file_name="rewrite.txt", mime="text/plain",
                           key=f"download-{key}", icon=":material/download:")


def render_feedback(items: list[FeedbackItem]) -> None:
    """One card per change: principle, the draft's words, what changed and why, the cited passage."""
    if not items:
        st.info("No change-by-change feedback for this rewrite.")
    for item in items:
        with st.container(border=True):
            st.markdown(f"**{escape_markdown(item.principle)}**")
            if item.draft_excerpt:
                st.markdown(f"> {one_line(item.draft_excerpt, 400)}")
            st.markdown(f"**What changed:** {one_line(item.change, 600)}")
            st.markdown(f"**Why:** {one_line(item.why, 600)}")
            with st.expander(f"Source: {one_line(item.passage.source, 80)}", icon=":material/menu_book:"):
                st.markdown(as_markdown(item.passage.text))


def render_facts(result: RewriteResult) -> None:
    """Every fact of the draft and where it went; figures the user supplied; code-made metric translations."""
    facts = result.facts
    rows = [{"fact": f, "in the rewrite": "kept" if f in facts.kept else "MISSING"} for f in facts.draft]
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
    else:
        st.caption("The draft has no figures, dates or names to lock.")
    if facts.supplied:
        st.markdown("**Figures you supplied:** " + ", ".join(one_line(f, 80) for f in facts.supplied))
    for translation in result.metric_translations:
        needs = f" (needs: {one_line(translation.needs, 120)})" if translation.needs else ""
        st.markdown(f"- {one_line(translation.metric, 120)} → {one_line(translation.business, 300)}{needs}")


def render_scores(result: RewriteResult) -> None:
    """Before/after scores as metrics with deltas, then two small charts: reading ease apart, on its 0-100
    scale, so the grade and the counts (a few units each) are not squashed flat next to it."""
    before, after = result.scores.before, result.scores.after
    columns = st.columns(len(SCORE_LABELS))
    for column, (name, (label, colour)) in zip(columns, SCORE_LABELS.items(), strict=True):
        new, old = float(getattr(after, name)), float(getattr(before, name))
        column.metric(label, _number(new), delta=_number(new - old), delta_color=colour)  # type: ignore[arg-type]
    ease, counts = st.columns([2, 3], gap="large")
    with ease:
        st.markdown("**Reading ease**")
        st.caption("0 to 100: higher reads easier.")
        _score_chart(before, after, {"reading_ease": "Reading ease"})
    with counts:
        st.markdown("**Reading grade and counts**")
        st.caption("Lower is better, except owners & dates.")
        _score_chart(before, after, CHART_LABELS)
    st.caption(f"Audience: {escape_markdown(AUDIENCES[result.audience].label)} · kind: {KINDS[result.kind]} · "
               f"model: {one_line(result.model, 60)} · {result.timings.total_ms / 1000:.1f} s")


def _score_chart(before: Scores, after: Scores, labels: dict[str, str]) -> None:
    """Draft and rewrite bars side by side for each score in ``labels``."""
    names = list(labels)
    table = {"score": [labels[n] for n in names], "draft": [float(getattr(before, n)) for n in names],
             "rewrite": [float(getattr(after, n)) for n in names]}
    st.bar_chart(table, x="score", y=["draft", "rewrite"], stack=False, horizontal=True, sort=False,
                 height=90 + 40 * len(names), x_label="", y_label="", color=["#9aa5b1", "#2e7d32"])


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"

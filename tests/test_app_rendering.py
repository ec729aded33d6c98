"""Untrusted text is shown as text: no HTML, no links, no images (issue 7, section 3), in every page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_app_support import StubRewrite, errors, markdown_text, open_page, stub_result, use_fakes

from coach import testing
from coach.errors import StorageError
from coach.rewrite_models import FeedbackItem, Passage
from coach.ui.markdown import as_markdown, escape_markdown, highlighted, one_line, word_diff

REPO = Path(__file__).resolve().parent.parent
HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    "![pixel](https://tracker.example.com/p.png)",
    "[click](javascript:alert(3))",
    "https://evil.example.com/x.png",
    "&lt;b&gt; &amp; :red[bold] $x^2$ :smile: # Heading\n    indented code\n> quote",
]
# Markdown that would turn into an image, a link or raw HTML if a character were left unescaped.
UNSAFE = [re.compile(r"(?<!\\)!(?<!\\)\[|(?<!\\)\]\((?<!\\)"), re.compile(r"(?<!\\)<[a-zA-Z/]"),
          re.compile(r"(?<![\\/])https?(?<!\\):")]


def unsafe_markup(markdown: str) -> list[str]:
    return [p.pattern for p in UNSAFE if p.search(markdown)]


def test_no_page_can_render_html() -> None:
    sources = [REPO / "app.py", *sorted((REPO / "coach" / "ui").glob("*.py"))]
    assert len(sources) >= 8
    for path in sources:
        code = path.read_text(encoding="utf-8")
        assert "unsafe_allow_html" not in code, path
        assert not re.search(r"\bst\.html\b|\.html\(", code), path
        assert not re.search(r"^\s*(import|from)\s+(openai|chromadb|xllamacpp)\b", code, re.MULTILINE), path


@pytest.mark.parametrize("text", HOSTILE)
def test_escaping_leaves_no_markup(text: str) -> None:
    for rendered in (escape_markdown(text), as_markdown(text), one_line(text)):
        assert not unsafe_markup(rendered), rendered
    runs = word_diff("A plain draft.", text)
    assert not unsafe_markup(highlighted(runs, "added"))


def test_escaped_text_reads_the_same() -> None:
    text = "Cost: $200K (-20%) <b>*now*</b> [1]"
    assert re.sub(r"\\(.)", r"\1", escape_markdown(text)) == text


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    use_fakes(monkeypatch)


def rendered_markdown(at: AppTest) -> list[str]:
    """Every text Streamlit renders as Markdown: body text, captions, alerts, toasts and labels."""
    for element in [*at.markdown, *at.caption]:
        assert not element.proto.allow_html, element.value
    texts = [str(e.value) for kind in (at.markdown, at.caption, at.error, at.warning, at.info, at.success, at.toast)
             for e in kind]
    labels = [str(e.label) for kind in (at.expander, at.status, at.text_input, at.text_area, at.button) for e in kind]
    return texts + labels


def no_html_anywhere(at: AppTest) -> None:
    for text in rendered_markdown(at):
        assert not unsafe_markup(text), text


def test_hostile_draft_and_model_output_on_the_rewrite_page(fakes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = "\n".join(HOSTILE)
    feedback = [FeedbackItem(principle_id="x", principle=HOSTILE[0], draft_excerpt=HOSTILE[1], change=HOSTILE[2],
                             why=HOSTILE[3], passage=Passage(text=hostile, source=HOSTILE[2]))]
    StubRewrite(lambda r: stub_result(r.draft, rewrite=hostile + " rewritten", feedback=feedback,
                                      questions=[HOSTILE[2]])).install(monkeypatch)
    at = open_page("rewrite_page").run()
    at.text_area(key="draft_text").input("Draft " + hostile)
    at.button(key="rewrite_button").click().run()
    assert not at.exception
    assert "\\<script\\>" in markdown_text(at)  # shown, as text
    no_html_anywhere(at)


class HostileModel(testing.FakeChatModel):
    """A fake chat model that answers with markup."""

    def _next_text(self, messages, kwargs):  # type: ignore[no-untyped-def]
        super()._next_text(messages, kwargs)
        return " ".join(HOSTILE)


def test_hostile_chat_answer(fakes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testing, "FakeChatModel", HostileModel)
    at = open_page("chat_page").run()
    at.chat_input(key="chat_text").set_value("<img src=x onerror=alert(1)> how do I talk to the CFO?").run()
    assert not at.exception
    assert len(at.chat_message) == 2
    no_html_anywhere(at)


def test_hostile_organisation_document_in_the_library(fakes: None) -> None:
    at = open_page("library_page").run()
    body = "\n\n".join(HOSTILE).encode()
    at.file_uploader(key="library_upload").set_value(("evil <b>doc</b>.md", body, "text/markdown")).run()
    at.button(key="library_add").click().run()
    assert not at.exception
    no_html_anywhere(at)


IMAGE_NAME = "![x](https://tracker.example/p.png).pdf"


def test_a_file_name_in_an_error_is_shown_as_text_on_the_library_page(fakes: None) -> None:
    at = open_page("library_page").run()
    at.file_uploader(key="library_upload").set_value((IMAGE_NAME, b"not a pdf at all", "application/pdf")).run()
    at.button(key="library_add").click().run()
    assert any(IMAGE_NAME in e for e in errors(at)), errors(at)  # named, as the user typed it
    no_html_anywhere(at)


def test_a_file_name_in_an_error_is_shown_as_text_on_the_rewrite_page(fakes: None) -> None:
    name = IMAGE_NAME.removesuffix(".pdf") + ".docx"  # the Rewrite uploader itself refuses a .pdf
    at = open_page("rewrite_page").run()
    at.file_uploader(key="draft_upload").set_value((name, b"not a Word file", "application/msword")).run()
    assert any(name in e for e in errors(at)), errors(at)
    no_html_anywhere(at)


def test_an_autosave_failure_is_shown_as_text(fakes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(self: object, key: str, text: str) -> None:
        raise StorageError(f"Cannot save {HOSTILE[2]} to disk.", hint="Free some space.")

    monkeypatch.setattr("coach.sessions.DraftStore.save_draft", full_disk)
    at = open_page("rewrite_page").run()
    at.text_area(key="draft_text").input("Patch window moved to Friday.").run()
    assert any("Autosave failed" in str(w.value) for w in at.warning)
    assert at.text_area(key="draft_text").value == "Patch window moved to Friday."  # nothing typed is lost
    no_html_anywhere(at)


def test_a_sign_in_message_is_shown_as_text(fakes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_header(settings: object) -> str:
        from coach.identity import SignInRequired

        raise SignInRequired(f"This request has no {HOSTILE[2]} header.", hint="Open the coach through the proxy.")

    monkeypatch.setattr("coach.ui.context.current_user", no_header)
    at = open_page("library_page").run()
    assert any("has no" in str(w.value) for w in at.warning)
    no_html_anywhere(at)

"""Errors as short messages: a ``CoachError`` says what went wrong and how to fix it; nothing else leaks.

Pages call services through ``attempt`` (error shown, ``None`` returned, the page carries on) and are
wrapped by ``guarded`` (anything unexpected becomes one generic line, with the traceback in the server log
only). Streamlit's own control flow (``st.stop``, ``st.rerun``) raises ``BaseException`` subclasses, which
pass through untouched.

``guarded`` is also the sign-in gate: every page is wrapped by it, so with identity configured an anonymous
visitor gets the sign-in prompt and nothing of the page (no documents, no settings, no chat), rather than each
page remembering to check before its first service call.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import streamlit as st

from coach.errors import CoachError
from coach.ui.context import current_settings, signed_in_user
from coach.ui.markdown import escape_markdown

log = logging.getLogger("coach.ui")
P = ParamSpec("P")
T = TypeVar("T")


def error_markdown(error: CoachError) -> str:
    """A service error as Markdown: the message escaped (it can quote a file name, a model name or a server's
    words), then the hint, which is the coach's own fixed text and may format a command as code."""
    message = escape_markdown(error.message)
    return f"{message} {error.hint}" if error.hint else message


def show_error(error: CoachError) -> None:
    """Show a service error as one short message."""
    st.error(error_markdown(error), icon=":material/error:")


def attempt(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
    """Run a service call; on a ``CoachError`` show it and return ``None``."""
    try:
        return call(*args, **kwargs)
    except CoachError as error:
        show_error(error)
        return None


def succeeded(call: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> bool:
    """Run a service call that returns nothing useful; on a ``CoachError`` show it and return False."""
    try:
        call(*args, **kwargs)
    except CoachError as error:
        show_error(error)
        return False
    return True


def guarded(render: Callable[[], None]) -> Callable[[], None]:
    """A page that shows service errors as messages and never a traceback."""

    @functools.wraps(render)
    def page() -> None:
        try:
            signed_in_user(current_settings())  # stops the page with a sign-in prompt when nobody is signed in
            render()
        except CoachError as error:
            show_error(error)
        except Exception as error:  # a bug: the user gets one line, the log gets the traceback
            log.exception("page %s failed", render.__module__)
            st.error(f"Something went wrong ({type(error).__name__}). Reload the page; if it happens again, "
                     "the details are in the terminal running the app.", icon=":material/error:")

    return page

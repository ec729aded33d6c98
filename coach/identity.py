"""Who is using the app: an OIDC sign-in, a header from a trusted reverse proxy, or nobody (single-user mode).

Design decisions:
- Identity is configuration, in this order:
  1. An ``[auth]`` section in ``.streamlit/secrets.toml``: Streamlit's ``st.login`` signs users in with an
     OIDC provider and ``st.user`` holds their claims. The user id is the ``email`` claim (readable, so an
     administrator can run ``coach sessions list --user alice@example.com``), else the ``sub`` claim.
  2. ``COACH_TRUSTED_USER_HEADER`` (e.g. ``X-Forwarded-User``): the value of that request header is the user.
     Anyone who can reach the app directly can send any header, so enable it ONLY when the app is reachable
     solely through a reverse proxy (oauth2-proxy, an identity-aware proxy, ...) that authenticates every
     request and sets that header itself, replacing whatever the client sent. A header that arrives twice is
     refused: it means a proxy appended to a client's value instead of replacing it.
  3. Neither: single-user mode, ``None``; the session store sees every session, as on one laptop.
- When identity is configured but a request carries none, that is ``SignInRequired``, never single-user mode:
  falling back would show that request everybody's sessions.
- The pure functions take claims and header values as arguments so they are tested without a browser;
  ``current_user`` is the only part that reads Streamlit, and imports it lazily (the CLI does not need it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from coach.config import Settings
from coach.errors import CoachError

MAX_USER_ID_CHARS = 256
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class SignInRequired(CoachError):
    """Identity is configured, but this request has no (usable) user."""

    exit_code = 2


def clean_user_id(value: str, origin: str) -> str:
    """A user id as stored: trimmed, non-empty, printable and bounded; ``origin`` names where it came from."""
    user = value.strip()
    if not user or len(user) > MAX_USER_ID_CHARS or _UNSAFE.search(user):
        raise SignInRequired(f"The user name from {origin} is empty, too long or not printable.",
                             hint="Check what your identity provider or proxy sends.")
    return user


def oidc_configured(claims: Mapping[str, Any]) -> bool:
    """True when Streamlit has an ``[auth]`` section (it then always reports ``is_logged_in``)."""
    return "is_logged_in" in claims


def user_from_claims(claims: Mapping[str, Any]) -> str:
    """The signed-in user's id from ``st.user``: the email claim, else the subject."""
    if not claims.get("is_logged_in"):
        raise SignInRequired("Sign in to use the coach.", hint="Use the Sign in button.")
    for claim in ("email", "sub"):
        value = claims.get(claim)
        if isinstance(value, str) and value.strip():
            return clean_user_id(value, f"the identity provider's {claim!r} claim")
    raise SignInRequired("Your sign-in carries neither an email nor a subject.",
                         hint="Ask the administrator to request the `openid email` scopes.")


def user_from_header(values: Sequence[str], header: str) -> str:
    """The user named by the trusted proxy header (every value the request carried for it)."""
    if not values:
        raise SignInRequired(f"This request has no {header} header.",
                             hint="Open the coach through the company's sign-in proxy, not directly.")
    if len(values) > 1:
        raise SignInRequired(f"This request carries {header} more than once.",
                             hint="The proxy must replace the header a client sends, not append to it.")
    return clean_user_id(values[0], f"the {header} header")


def resolve_user(settings: Settings, claims: Mapping[str, Any], header_values: Sequence[str]) -> str | None:
    """The current user's id, or None in single-user mode; raises ``SignInRequired`` when it is missing."""
    if oidc_configured(claims):
        return user_from_claims(claims)
    if settings.trusted_user_header:
        return user_from_header(header_values, settings.trusted_user_header)
    return None


def current_user(settings: Settings) -> str | None:
    """The user of the current Streamlit request (see ``resolve_user``)."""
    import streamlit as st

    claims = st.user.to_dict()
    values: list[str] = []
    if settings.trusted_user_header:
        values = list(st.context.headers.get_all(settings.trusted_user_header))
    return resolve_user(settings, claims, values)

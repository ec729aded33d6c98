"""A draft from an uploaded file: .txt/.md/.docx through ``coach.documents``, .eml through the email parser.

The e-mail reading is here rather than in ``coach.documents`` because only the Rewrite page takes e-mails;
it follows the same rules: size checked before parsing, text only (the plain-text part, or the HTML part
reduced to its text — never rendered), a clear ``InputError`` when there is nothing to rewrite.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
from email.message import EmailMessage
from pathlib import PurePath

from coach.documents import MAX_UPLOAD_BYTES, extract_text
from coach.errors import InputError, InputTooLarge

DRAFT_SUFFIXES = ("txt", "md", "docx", "eml")
_TAGS = re.compile(r"<[^>]*>")


def draft_from_file(filename: str, data: bytes) -> str:
    """The text of an uploaded draft."""
    suffix = PurePath(filename).suffix.lower().lstrip(".")
    if suffix not in DRAFT_SUFFIXES:
        raise InputError(f"{filename}: a draft must be one of .{', .'.join(DRAFT_SUFFIXES)}.",
                         hint="Save it as plain text, or paste it.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputTooLarge(f"{filename} is {len(data) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB.",
                            hint="Paste only the part you want rewritten.")
    if suffix == "eml":
        return _email_text(filename, data)
    return extract_text(filename, data).text.strip()


def _email_text(filename: str, data: bytes) -> str:
    """Subject line and body of an e-mail."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(message, EmailMessage):
        raise InputError(f"{filename} is not an e-mail.", hint="Save the message as .eml, or paste it.")
    part = message.get_body(preferencelist=("plain", "html"))
    body = part.get_content() if part is not None else ""
    if part is not None and part.get_content_subtype() == "html":
        body = html.unescape(_TAGS.sub(" ", body))
    subject = str(message.get("subject", "") or "").strip()
    text = (f"Subject: {subject}\n\n" if subject else "") + str(body).strip()
    if not text.strip():
        raise InputError(f"{filename} has no text to rewrite.", hint="Paste the message instead.")
    return text

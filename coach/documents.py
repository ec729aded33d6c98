"""Text extraction for documents users add to the corpus (.md, .txt, .pdf, .docx).

Uploads are untrusted: the size is checked before any parser runs, the bytes must be what the extension
says, and characters a reader cannot see (zero-width, bidi controls, soft hyphens, Unicode tags, text a
Word document hides) are stripped and reported, because hidden text in a corpus document would reach the
model as if it were guidance. A Word run is hidden when its formatting (direct, or inherited from its
character or paragraph style) says hidden or web-hidden, or makes it white or 1 pt or smaller. A PDF's
invisible text (text render mode 3, drawn without ink) is stripped the same way. PDFs are bounded like
archives: a page count, an inflated-stream size (a Flate bomb) and an extracted-text size.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel

from coach.errors import InputError, InputTooLarge

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# A .docx is a zip: 5 MB of it can inflate to gigabytes (a zip bomb). The sizes the archive declares bound what
# zipfile will inflate, so they are checked before python-docx reads anything. Real Word XML compresses ~5-20x.
MAX_DOCX_UNPACKED_BYTES = 20 * 1024 * 1024
MAX_DOCX_RATIO = 100
MAX_DOCX_MEMBERS = 2000
MAX_PDF_PAGES = 500
MAX_PDF_STREAM_BYTES = 20 * 1024 * 1024  # one inflated content stream (pypdf's own default is 75 MB)
MAX_EXTRACTED_CHARS = 2_000_000
TINY_TEXT_PT = 1.0
SUPPORTED_SUFFIXES = (".md", ".txt", ".pdf", ".docx")
# Invisible or direction-changing characters: zero-width, bidi embeddings/isolates, word joiners, BOM, tags.
_HIDDEN = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ExtractedText(BaseModel):
    """Plain text taken from an uploaded file, with warnings about anything removed."""

    text: str
    warnings: list[str] = []


def extract_text(filename: str, data: bytes) -> ExtractedText:
    """Plain text of an uploaded .md/.txt/.pdf/.docx file; raises ``InputError`` when it has none."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(f"{filename}: unsupported file type {suffix or '(none)'}.",
                         hint=f"Upload one of {', '.join(SUPPORTED_SUFFIXES)}.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputTooLarge(f"{filename} is {len(data) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB.",
                            hint="Upload a shorter document or split it.")
    warnings: list[str] = []
    if suffix == ".pdf":
        raw = _pdf_text(filename, data, warnings)
    elif suffix == ".docx":
        raw = _docx_text(filename, data, warnings)
    else:
        raw = _plain_text(filename, data)
    text = _clean(raw, warnings)
    if not text.strip():
        raise InputError(f"{filename} contains no text that can be extracted.",
                         hint="A scanned PDF has only images: export it with text (OCR) or paste the text.")
    return ExtractedText(text=text, warnings=warnings)


def _plain_text(filename: str, data: bytes) -> str:
    """UTF-8 text; binary data or another encoding is refused."""
    if b"\x00" in data[:8192]:
        raise InputError(f"{filename} is not a text file (it contains binary data).",
                         hint="Upload the document as .md, .txt, .pdf or .docx.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{filename} is not UTF-8 text.",
                         hint="Save it with UTF-8 encoding and upload it again.") from None


def _pdf_text(filename: str, data: bytes, warnings: list[str]) -> str:
    """Text of every page of a PDF, invisible text left out; bounded in pages, inflated bytes and text."""
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError, PdfReadError

    if not data.lstrip()[:5] == b"%PDF-":
        raise InputError(f"{filename} is not a PDF file.", hint="Check the file, or rename it with its real extension.")
    try:
        with apply_configuration(zlib_maximum_output_length=MAX_PDF_STREAM_BYTES):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                raise InputError(f"{filename} is password-protected.", hint="Upload an unprotected copy.")
            return _pdf_pages(filename, reader, warnings)
    except LimitReachedError:
        raise _too_large(filename, f"a stream inflates past {MAX_PDF_STREAM_BYTES // 2**20} MB") from None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{filename} could not be read as a PDF ({exc}).", hint="Re-save or re-export it.") from None


def _too_large(filename: str, what: str) -> InputTooLarge:
    return InputTooLarge(f"{filename} is larger than a corpus document should be: {what}.",
                         hint="Upload a shorter document or split it.")


def _pdf_pages(filename: str, reader: Any, warnings: list[str]) -> str:
    """The pages' visible text, stopping as soon as a limit is passed."""
    if len(reader.pages) > MAX_PDF_PAGES:
        raise _too_large(filename, f"{len(reader.pages)} pages (limit {MAX_PDF_PAGES})")
    pages: list[str] = []
    total = invisible = 0
    for page in reader.pages:
        text, hidden = _visible_page_text(page)
        invisible += hidden
        total += len(text)
        if total > MAX_EXTRACTED_CHARS:
            raise _too_large(filename, f"over {MAX_EXTRACTED_CHARS:,} characters of text")
        pages.append(text)
    if invisible:
        warnings.append(f"Removed {invisible} piece(s) of invisible text (PDF text render mode 3).")
    return "\n\n".join(pages)


def _visible_page_text(page: Any) -> tuple[str, int]:
    """A page's text without what is drawn in render mode 3 (invisible), and how many pieces that was."""
    mode = [0]
    saved: list[int] = []
    invisible: list[str] = []

    def before(operator: bytes, operands: list[Any], *_: Any) -> None:
        if operator == b"Tr" and operands:
            mode[0] = int(operands[0])
        elif operator == b"q":
            saved.append(mode[0])
        elif operator == b"Q" and saved:
            mode[0] = saved.pop()

    def shown(text: str, *_: Any) -> None:
        if mode[0] == 3 and text.strip():
            invisible.append(text.strip())

    text = page.extract_text(visitor_operand_before=before, visitor_text=shown) or ""
    for piece in invisible:
        text = text.replace(piece, "", 1)
    return text, len(invisible)


def _docx_text(filename: str, data: bytes, warnings: list[str]) -> str:
    """Paragraph and table text of a Word document; runs marked hidden are left out and reported."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise InputError(f"{filename} is not a Word (.docx) file.",
                         hint="Save it as .docx, or upload it as .pdf or .txt.")
    _check_unpacked_size(filename, data)
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{filename} could not be read as a Word document ({exc}).",
                         hint="Re-save it as .docx.") from None
    paragraphs = list(document.paragraphs)
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:
                paragraphs.extend(cell.paragraphs)
    hidden = 0
    lines = []
    for paragraph in paragraphs:
        kept = [run for run in paragraph.runs if not _run_is_hidden(run, paragraph)]
        hidden += len(paragraph.runs) - len(kept)
        lines.append("".join(run.text for run in kept))
    if hidden:
        warnings.append(f"Removed {hidden} run(s) of text hidden in the Word document "
                        "(marked hidden, white or 1 pt or smaller).")
    return "\n\n".join(lines)


def _run_is_hidden(run: Any, paragraph: Any) -> bool:
    """Hidden, web-hidden, white or tiny, directly or through the run's character or paragraph style."""
    from docx.oxml.ns import qn
    from docx.shared import Pt, RGBColor

    web_hidden = run._r.rPr is not None and run._r.rPr.find(qn("w:webHidden")) is not None
    if web_hidden or _resolved(run, paragraph, lambda font: font.hidden):
        return True
    size = _resolved(run, paragraph, lambda font: font.size)
    color = _resolved(run, paragraph, lambda font: font.color.rgb if font.color.type is not None else None)
    return (size is not None and size <= Pt(TINY_TEXT_PT)) or color == RGBColor(0xFF, 0xFF, 0xFF)


def _resolved(run: Any, paragraph: Any, read: Any) -> Any:
    """The first value set: on the run, then up its character style's chain, then up the paragraph style's."""
    value = read(run.font)
    if value is not None:
        return value
    for style in (run.style, paragraph.style):
        while style is not None:
            value = read(style.font)
            if value is not None:
                return value
            style = style.base_style
    return None


def _check_unpacked_size(filename: str, data: bytes) -> None:
    """Refuse a .docx whose parts would inflate past the limits (checked from the zip directory, before parsing)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
    unpacked = sum(member.file_size for member in members)
    inflated = any(m.file_size > 2**20 and m.file_size > MAX_DOCX_RATIO * max(m.compress_size, 1) for m in members)
    if len(members) > MAX_DOCX_MEMBERS or unpacked > MAX_DOCX_UNPACKED_BYTES or inflated:
        raise InputTooLarge(f"{filename} unpacks to {unpacked / 1e6:,.0f} MB in {len(members)} parts, more than a "
                            f"Word document should (limit {MAX_DOCX_UNPACKED_BYTES // 2**20} MB).",
                            hint="Re-save it in Word, or upload it as .pdf or .txt.")


def _clean(text: str, warnings: list[str]) -> str:
    """Normalised newlines, hidden and control characters removed (and reported), blank-line runs collapsed."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    hidden = len(_HIDDEN.findall(text))
    if hidden:
        warnings.append(f"Removed {hidden} invisible character(s) (zero-width, direction or tag characters).")
    control = len(_CONTROL.findall(text))
    if control:
        warnings.append(f"Removed {control} control character(s).")
    text = _CONTROL.sub("", _HIDDEN.sub("", text))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"

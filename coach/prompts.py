"""Prompt templates are files in ``prompts/``; user text is only ever a value.

A template is ``string.Template`` text (``$name`` placeholders) validated when loaded: every placeholder it
uses must be declared by the caller, and filling it with a missing variable raises. Values are substituted
once and never re-parsed, so a draft containing ``${x}``, ``{{7*7}}`` or ``{braces}`` passes through as is.
Untrusted text goes in with :func:`data_block`, inside delimiters it cannot close.
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

from coach.config import PROJECT_ROOT
from coach.errors import ConfigError

PROMPTS_DIR = PROJECT_ROOT / "prompts"


class PromptTemplate:
    """A validated prompt template loaded from a file."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self._template = string.Template(text)
        if not self._template.is_valid():
            raise ConfigError(f"Prompt template {name} has an invalid placeholder.")
        self.variables = frozenset(self._template.get_identifiers())

    def fill(self, **values: str) -> str:
        """Substitute every placeholder; a missing or unexpected variable is an error."""
        missing = self.variables - values.keys()
        extra = values.keys() - self.variables
        if missing or extra:
            raise ConfigError(f"Prompt {self.name}: missing {sorted(missing)}, unexpected {sorted(extra)}.")
        return self._template.substitute(values)


@lru_cache(maxsize=64)
def load_prompt(name: str, directory: Path = PROMPTS_DIR) -> PromptTemplate:
    """Load ``prompts/<name>.md``."""
    path = directory / f"{name}.md"
    try:
        return PromptTemplate(name, path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Prompt template {path} cannot be read: {exc.strerror}.") from None


def data_block(label: str, text: str) -> str:
    """Wrap untrusted text in delimiters it cannot forge (any delimiter look-alike inside is defused)."""
    tag = label.upper()
    cleaned = text.replace(f"<<<{tag}", f"<< <{tag}").replace(f"{tag}>>>", f"{tag}> >>")
    return f"<<<{tag}\n{cleaned}\n{tag}>>>"

"""Errors that speak to users.

Every failure a user can meet is a ``CoachError`` whose message says what went wrong and how to fix it.
The UI and the CLI show ``str(error)``; tracebacks never reach a user.
"""

from __future__ import annotations


class CoachError(Exception):
    """Base of every error the coach shows to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class ConfigError(CoachError):
    """The configuration is missing, contradictory or invalid."""

    exit_code = 2


class InputError(CoachError):
    """The user's input cannot be used (empty, too large, binary, not UTF-8)."""

    exit_code = 2


class InputTooLarge(InputError):
    """The input exceeds a size or token limit."""


class CorpusError(CoachError):
    """A corpus document or the principle catalogue is unreadable or invalid."""


class IndexBusy(CoachError):
    """Another process is writing the index."""


class StorageError(CoachError):
    """Saving or reading coaching sessions failed."""


class ModelError(CoachError):
    """The chat model failed; carries how many attempts were made."""

    def __init__(self, message: str, *, hint: str | None = None, attempts: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.attempts = attempts


class ModelUnavailable(ModelError):
    """The model server cannot be reached, or timed out."""


class RateLimited(ModelError):
    """The model server said: too many requests."""


class AuthRejected(ModelError):
    """The model server rejected the API key (never echoed)."""


class ModelOutputError(ModelError):
    """The model answered, but with nothing usable (empty, truncated, invalid JSON)."""


class ModelFileError(CoachError):
    """The embedded model's weights are missing or corrupt."""

"""One error taxonomy for the whole daemon.

`CancelledError` is never one of these: cancellation is not a failure and is
always re-raised untouched.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in one config file, pointing at a line and a key."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class ConfigError(ValueError):
    """A config file (or a set of them) is invalid. Carries every issue found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class CollectError(RuntimeError):
    """A source failed: refused, timed out, bad query, or returned garbage.

    The message is one line, names no credentials, and is shown as the
    metric's last error.
    """


class TransientError(RuntimeError):
    """Something that may succeed when retried (a receiver answering 5xx, ...)."""


class PermanentError(RuntimeError):
    """Something that will fail the same way on every retry (a 4xx, a bad payload)."""


class StorageError(RuntimeError):
    """The store could not read or write."""


def error_line(exc: BaseException) -> str:
    """One redacted line (at most 500 characters) for logs, the API and alerts."""
    from detectkd.redact import redact_text

    text = str(exc) if isinstance(exc, CollectError | StorageError) else f"{type(exc).__name__}: {exc}"
    return redact_text(" ".join(text.split()))[:500]

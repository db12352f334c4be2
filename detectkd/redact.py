"""Keep secrets out of logs, errors, `/api` output and `validate` output."""

from __future__ import annotations

import re
from typing import Any

SECRET_KEYS = re.compile(r"(password|passwd|secret|token|api_key|apikey|webhook_url|authorization)", re.I)
_URL_CREDS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@", re.I)


def redact_text(text: str) -> str:
    """Hide the password part of any `scheme://user:password@host` in `text`."""
    return _URL_CREDS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def redact(value: Any, key: str = "") -> Any:
    if key and SECRET_KEYS.search(key) and value not in (None, ""):
        return "***"
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value

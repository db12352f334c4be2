"""Keep secrets out of logs, errors, `/api` output and `validate` output."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

SECRET_KEYS = re.compile(r"(password|passwd|secret|token|api_key|apikey|webhook_url|authorization)", re.I)
_URL_CREDS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@", re.I)


_PARAM = re.compile(
    r"(?P<k>\b(?:access_token|token|api_key|apikey|secret|password|passwd|signature)\b[\"']?"
    r"\s*[=:]\s*[\"']?)(?P<v>[^\s&\"',;}]+)",
    re.I,
)
_BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}", re.I)
_BOT = re.compile(r"\bbot\d+:[A-Za-z0-9_-]{20,}")  # a Telegram bot token


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Hide credentials in `text`: the password of any `scheme://user:password@host`,
    `token=...`-style parameters, bearer tokens, Telegram bot tokens, and every string of
    `secrets` (e.g. the URL and headers a request was sent with)."""
    for secret in sorted((s for s in secrets if s and len(s) >= 6), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_CREDS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _PARAM.sub(lambda m: f"{m['k']}***", text)
    text = _BEARER.sub(lambda m: f"{m[1]} ***", text)
    return _BOT.sub("bot***", text)


def receiver_answer(body: bytes, secrets: Iterable[str] = (), limit: int = 200) -> str:
    """What a receiver answered, fit for `last_error` and logs: one line, at most `limit`
    characters, credentials hidden."""
    text = " ".join(body.decode("utf-8", "replace").split())
    text = redact_text(text, secrets)
    return text[:limit] + ("..." if len(text) > limit else "")


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

"""Keep secrets out of logs, errors, `/api` output, the UI and `validate` output.

By key name (`password`, `token`, ...); by place: every value under a `headers:` mapping,
whatever its name (`X-Api-Key`, `Cookie`), and the query `params:` beside a `url:`; and by
shape: a URL shows only `scheme://host:port`, without userinfo, and the path and query of
a web URL become `/***` (tokens live there: `/hooks/T0/B0/XXXX`, `/bot123:ABC/`,
`?api_key=`). A database URL keeps its path (the database name), not its query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

SECRET_KEYS = re.compile(r"(password|passwd|secret|token|api_key|apikey|webhook_url|authorization)", re.I)
_URL_CREDS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@", re.I)


_PARAM = re.compile(
    r"(?P<k>\b(?:access_token|token|api_key|apikey|secret|password|passwd|signature)\b[\"']?"
    r"\s*[=:]\s*[\"']?)(?P<v>[^\s&\"',;}]+)",
    re.I,
)
_BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}", re.I)
_BOT = re.compile(r"\bbot\d+:[A-Za-z0-9_-]{20,}")  # a Telegram bot token
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>`]*", re.I)
# Schemes whose path is a database (or a file) name, shown; any other URL's path is hidden.
DB_SCHEMES = {"postgres", "postgresql", "mysql", "mariadb", "clickhouse", "clickhouses", "sqlite"}
MARK = "***"


def redact_url(url: str) -> str:
    """`url` fit to show: scheme://host:port without userinfo; the path and query of a web
    URL replaced by `/***`; a database URL's path (the database) kept, its query hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not parseable (an unbalanced IPv6 bracket): show nothing of it
        return url.split("://", 1)[0] + "://" + MARK
    scheme = parts.scheme.lower()
    host = parts.netloc.rpartition("@")[2]  # userinfo dropped
    out = f"{parts.scheme}://{host}"
    if scheme.split("+", 1)[0] in DB_SCHEMES:
        out += parts.path
        return out + (f"?{MARK}" if parts.query else "")
    return out + (f"/{MARK}" if parts.path.strip("/") or parts.query or parts.fragment else "")


def redact_text(text: str, secrets: Iterable[str] = (), urls: bool = True) -> str:
    """Hide credentials in `text`: every URL's userinfo, path and query (`redact_url`),
    `token=...`-style parameters, bearer tokens, Telegram bot tokens, and every string of
    `secrets` (e.g. the URL and headers a request was sent with). `urls=False`: URLs keep
    their path (only their password is hidden), for text an operator wrote to be read with
    its links (the `log` alerter's message)."""
    for secret in sorted((s for s in secrets if s and len(s) >= 6), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_CREDS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    if urls:
        text = _URL.sub(lambda m: redact_url(m[0]), text)
    text = _PARAM.sub(lambda m: f"{m['k']}***", text)
    text = _BEARER.sub(lambda m: f"{m[1]} ***", text)
    return _BOT.sub("bot***", text)


def receiver_answer(body: bytes, secrets: Iterable[str] = (), limit: int = 200) -> str:
    """What a receiver answered, fit for `last_error` and logs: one line, at most `limit`
    characters, credentials hidden."""
    text = " ".join(body.decode("utf-8", "replace").split())
    text = redact_text(text, secrets)
    return text[:limit] + ("..." if len(text) > limit else "")


def _hidden(mapping: dict[Any, Any]) -> dict[Any, Any]:
    """Every value hidden, the keys shown (which header, which parameter)."""
    return {k: v if v in (None, "") else MARK for k, v in mapping.items()}


def redact(value: Any, key: str = "") -> Any:
    """A config (or any JSON-like value) fit to show: secret-named keys, every header
    value, the query parameters beside a `url` (the http collector's `params`), and the
    secret parts of URLs and text hidden."""
    if key and SECRET_KEYS.search(key) and value not in (None, ""):
        return "***"
    if isinstance(value, dict):
        if key.lower() == "headers":  # X-Api-Key, Cookie, X-Auth: any header may be a credential
            return _hidden(value)
        out = {k: redact(v, str(k)) for k, v in value.items()}
        if "url" in value and isinstance(value.get("params"), dict):  # an HTTP request's query
            out["params"] = _hidden(value["params"])
        return out
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value

"""The channel contract.

`send(alert)` delivers one alert or raises:
- `TransientError` when a retry may succeed (timeouts, refused, 429, 5xx);
- `PermanentError` when it never will (400, 413, 422: the payload is wrong).
It must finish within its own timeout. It never swallows CancelledError.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import aiohttp

from detectkd.alerting.alert import Alert
from detectkd.errors import PermanentError, TransientError
from detectkd.redact import receiver_answer


class Channel(Protocol):
    kind: str

    async def send(self, alert: Alert) -> None: ...


_PERMANENT = {400, 413, 422}


def encode(payload: Any) -> bytes:
    """The exact bytes sent (signatures are computed over them)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    payload: Any,
    timeout_s: float,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> None:
    """POST JSON (or `body`, already encoded) and classify the outcome.

    Never puts the URL (it may carry a token) in errors, only its host.
    """
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or "receiver"
    data = body if body is not None else encode(payload)
    try:
        async with session.post(
            url,
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            if resp.status < 300:
                return
            # At most 4 KiB read; what is kept is one redacted line (it goes to logs and the API).
            parts = urlsplit(url)
            secrets = [url, parts.path, parts.query, *(headers or {}).values()]
            answer = receiver_answer(await resp.content.read(4096), secrets)
            message = f"{host} answered HTTP {resp.status}: {answer}"
            if resp.status in _PERMANENT:
                raise PermanentError(message)
            raise TransientError(message)
    except TimeoutError:
        raise TransientError(f"{host} did not answer within {timeout_s:g}s") from None
    except aiohttp.ClientError as exc:
        raise TransientError(f"cannot reach {host}: {type(exc).__name__}") from None

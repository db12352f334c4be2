"""The channel contract.

`send(alert)` delivers one alert or raises:
- `TransientError` when a retry may succeed (timeouts, refused, 429, 5xx);
- `PermanentError` when it never will (400, 413, 422: the payload is wrong).
It must finish within its own timeout. It never swallows CancelledError.
"""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp

from detectkd.alerting.alert import Alert
from detectkd.errors import PermanentError, TransientError


class Channel(Protocol):
    kind: str

    async def send(self, alert: Alert) -> None: ...


_PERMANENT = {400, 413, 422}


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    payload: Any,
    timeout_s: float,
    headers: dict[str, str] | None = None,
) -> None:
    """POST JSON and classify the outcome. Never puts the URL (a secret) in errors."""
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or "receiver"
    try:
        async with session.post(
            url,
            json=payload,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            if resp.status < 300:
                return
            body = (await resp.text())[:200].replace("\n", " ")
            message = f"{host} answered HTTP {resp.status}: {body}"
            if resp.status in _PERMANENT:
                raise PermanentError(message)
            raise TransientError(message)
    except TimeoutError:
        raise TransientError(f"{host} did not answer within {timeout_s:g}s") from None
    except aiohttp.ClientError as exc:
        raise TransientError(f"cannot reach {host}: {type(exc).__name__}") from None

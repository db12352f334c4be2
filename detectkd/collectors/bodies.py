"""What the HTTP-based collectors (`http`, `prometheus`) share about an answer: its body
read under a byte cap, and the host an error may name."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp

from detectkd.errors import CollectError

CHUNK = 1 << 16


async def read_capped(resp: aiohttp.ClientResponse, cap: int, too_big: str) -> bytes:
    """The body, refused (not truncated) above `cap` bytes: on a Content-Length at once,
    else as soon as more than `cap` arrived. The error says `too_big` and the size, and
    keeps no part of the body alive (no reference from its traceback)."""
    if resp.content_length is not None and resp.content_length > cap:
        raise CollectError(f"{too_big}: Content-Length {resp.content_length:,}")
    body = bytearray()
    async for chunk in resp.content.iter_chunked(CHUNK):
        body += chunk
        if len(body) > cap:
            size = len(body)
            body.clear()
            raise CollectError(f"{too_big}: refused after {size:,} bytes")
    return bytes(body)


def host_of(url: str) -> str:
    """Host and port only: the path or query of a URL may carry a tenant or a token."""
    parts = urlsplit(url)
    host = parts.hostname or "the server"
    return f"{host}:{parts.port}" if parts.port else host

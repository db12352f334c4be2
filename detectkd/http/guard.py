"""What a browser and a caller may do, for the daemon and a `workers:` supervisor alike.

- **The write rule.** Every request that changes something (any method but GET, HEAD and
  OPTIONS: reload, silences, feedback, backtests) needs `lifecycle_api: true` *and*
  authentication (`basic_auth_users`); otherwise 403. It is one middleware, so a new
  write endpoint cannot forget it, and the supervisor applies exactly the daemon's rule
  before it forwards anything to a worker.
- **Cross-site request forgery.** A write from a browser must come from a page of this
  server: a `Sec-Fetch-Site` other than `same-origin`/`none`, or (from a browser that does
  not send it) an `Origin` whose host and port are not the request's `Host`, is refused
  with 403. A write
  with a body must say `Content-Type: application/json` (415 otherwise): an HTML form or a
  `text/plain` fetch from another origin cannot send that without a CORS preflight, which
  this server never answers. Command-line clients send neither header and are not affected.
- **Framing and content.** Every answer carries `X-Frame-Options: DENY` and a
  Content-Security-Policy with `frame-ancestors 'none'` (no clickjacking of the buttons),
  scripts only from this server, `nosniff` and a same-origin referrer policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def write_refused(lifecycle_api: bool, authenticated: bool) -> web.Response | None:
    """Why a write is refused (403), or None: it needs the lifecycle API and users."""
    if not lifecycle_api:
        return web.json_response(
            {"error": "the lifecycle API is not enabled (lifecycle_api: true)"}, status=403
        )
    if not authenticated:
        message = "write endpoints need authentication: set basic_auth_users in web_config_file"
        return web.json_response({"error": message}, status=403)
    return None


def cross_site(request: web.Request) -> str | None:
    """Why this write looks like it comes from another site's page, or None. A browser's
    `Sec-Fetch-Site` decides (pages cannot forge it, and it holds behind a proxy that
    rewrites Host); without it, an `Origin` must name this server's host and port."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return None if site in ("same-origin", "none") else f"Sec-Fetch-Site: {site}"
    origin = request.headers.get("Origin")
    if origin is None:
        return None  # not a browser (curl, Prometheus, a script): nothing to forge
    parts = urlsplit(origin)
    default = {"http": ":80", "https": ":443"}.get(parts.scheme, "")
    theirs, own = parts.netloc.lower().removesuffix(default), request.host.lower().removesuffix(default)
    return None if theirs and theirs == own else f"Origin {origin} is not this server"


def make_guard(lifecycle_api: bool, authenticated: bool) -> Middleware:
    """The middleware: place it after authentication (it trusts that the request got
    through it)."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in SAFE_METHODS:
            return await handler(request)
        if (why := cross_site(request)) is not None:
            return web.json_response({"error": f"cross-site request refused ({why})"}, status=403)
        if (refused := write_refused(lifecycle_api, authenticated)) is not None:
            return refused
        has_body = request.body_exists or request.content_length not in (None, 0)
        if has_body and request.content_type != "application/json":
            got = request.headers.get("Content-Type", "none")
            return web.json_response(
                {"error": f"a write's body must be application/json (got {got})"}, status=415
            )
        return await handler(request)

    return guard


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every answer, static files and errors included."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)


def install(app: web.Application) -> None:
    app.on_response_prepare.append(secure_headers)

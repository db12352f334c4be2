"""Who is asking: HTTP Basic authentication against the web config's bcrypt users.

Built to be attacked without credentials:

- **No user enumeration by timing.** An unknown user is checked against a dummy hash of the
  same cost as the configured ones, so it takes as long as a wrong password.
- **bcrypt never starves the daemon.** Checks run on this guard's own two threads, not the
  default executor that also runs detection and `/metrics`; at most `MAX_WAITING` checks
  wait for them, beyond that the answer is 429 at once.
- **Failures are throttled** per client address: after `FAILURES` wrong passwords within
  `FAILURE_WINDOW_S`, that address gets 429 (with Retry-After) until the window passes;
  credentials that already passed are not throttled (a scraper on the attacker's host
  keeps working).
- **A password over 72 bytes** (bcrypt's limit) is a 401, not a 500.
- A successful check is cached by a digest of the credentials (as exporter-toolkit does),
  so a scrape every second costs one lookup and never waits for a bcrypt thread.

The middleware records the authenticated user on the request (`user_of`); a `workers:`
supervisor's own user may name the person it forwards (`FORWARDED_USER`), and only that
user, only after its password was checked here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import bcrypt
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A `workers:` supervisor talks to its workers as this user (a password made per start), and
# names the user it serves in FORWARDED_USER (feedback and silences record who gave them).
SUPERVISOR_USER = "detectkd-supervisor"
FORWARDED_USER = "X-Detectkd-User"
ANONYMOUS = "api"  # who wrote, when nobody authenticated (no users configured)
USER = web.RequestKey("detectkd_user", str)

MAX_PASSWORD_BYTES = 72  # bcrypt's limit: longer ones are refused, not truncated
MAX_WAITING = 16  # bcrypt checks queued for the guard's threads before 429
FAILURES = 10  # wrong passwords per client address ...
FAILURE_WINDOW_S = 60.0  # ... within this window, then 429 until it passes
_CACHE = 1024  # successful credential digests kept


def decode_basic(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic ...` header, or None (the one decoder)."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        user, sep, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def user_of(request: web.Request) -> str:
    """Who made the request, as the middleware authenticated it: the Basic user, or the
    person a `workers:` supervisor forwards (honoured only from the supervisor's checked
    user); `ANONYMOUS` when no users are configured."""
    user = request.get(USER)
    if user is None:
        return ANONYMOUS
    if user == SUPERVISOR_USER:
        return request.headers.get(FORWARDED_USER) or user
    return str(user)


def _cost(hashed: bytes) -> int:
    try:
        return max(4, min(31, int(hashed.split(b"$")[2])))
    except (IndexError, ValueError):
        return 10


class BasicAuth:
    """A middleware: every request needs a configured user's password."""

    def __init__(self, users: dict[str, str], clock: Callable[[], float] = time.monotonic) -> None:
        self.users = {u: h.encode() for u, h in users.items()}
        cost = max((_cost(h) for h in self.users.values()), default=10)
        # The hash an unknown user is checked against: as slow as a known one.
        self._dummy = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=cost))
        self._ok: set[bytes] = set()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="detectkd-bcrypt")
        self._waiting = 0
        self._failed: dict[str, deque[float]] = {}
        self._clock = clock

    def throttled(self, client: str) -> float:
        """Seconds until `client` may try again (0: it may)."""
        now = self._clock()
        recent = self._failed.get(client)
        while recent and recent[0] <= now - FAILURE_WINDOW_S:
            recent.popleft()
        if not recent:
            self._failed.pop(client, None)
            return 0.0
        return recent[0] + FAILURE_WINDOW_S - now if len(recent) >= FAILURES else 0.0

    def _failure(self, client: str) -> None:
        if len(self._failed) > 10_000:  # an address sweep: forget the oldest, stay bounded
            self._failed.pop(next(iter(self._failed)))
        self._failed.setdefault(client, deque(maxlen=FAILURES)).append(self._clock())

    async def check(self, header: str | None, client: str = "?") -> str | None:
        """The user these credentials authenticate, or None. Credentials that passed before
        answer at once; others raise `Throttled` when `client` failed too often lately or
        too many checks wait for the bcrypt threads."""
        creds = decode_basic(header)
        if creds is None:
            return None
        user, password = creds
        secret = password.encode()
        if len(secret) > MAX_PASSWORD_BYTES:
            self._failure(client)
            return None
        hashed = self.users.get(user)
        key = hashlib.sha256(b"\0".join((user.encode(), secret, hashed or b""))).digest()
        if hashed is not None and key in self._ok:  # a digest of the credentials, never the password
            return user
        wait = self.throttled(client)
        if wait > 0:
            raise Throttled(wait, "too many failed logins from this address")
        if self._waiting >= MAX_WAITING:
            raise Throttled(1.0, "too many logins in progress")
        self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(self._pool, bcrypt.checkpw, secret, hashed or self._dummy)
        finally:
            self._waiting -= 1
        if not ok or hashed is None:
            self._failure(client)
            return None
        if len(self._ok) < _CACHE:
            self._ok.add(key)
        return user

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        client = request.remote or "?"
        try:
            user = await self.check(request.headers.get("Authorization"), client)
        except Throttled as exc:
            return web.json_response(
                {"error": exc.why}, status=429, headers={"Retry-After": str(max(1, round(exc.seconds)))}
            )
        if user is None:
            return web.json_response(
                {"error": "authentication required"},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="detectkd"'},
            )
        request[USER] = user
        return await handler(request)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Throttled(Exception):
    """Not checked now: the client failed too often, or too many checks wait (429)."""

    def __init__(self, seconds: float, why: str) -> None:
        super().__init__(why)
        self.seconds, self.why = seconds, why

"""The workers of `workers: N` as the supervisor's HTTP side sees them: the processes'
addresses, the one client that talks to them (as `SUPERVISOR_USER`, a password made per
start), who owns a metric (the shard hash), and the fan-out of a GET to every worker."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from detectkd.http.paging import API_PAGE_MAX
from detectkd.shard import name_hash

DOWN = (aiohttp.ClientError, TimeoutError, OSError)  # a worker that did not answer


def reserve_port() -> socket.socket:
    """A port on 127.0.0.1 for one worker, held by the supervisor as long as it runs: bound
    and never listening, so connections are refused while the worker is down, yet the kernel
    gives a bound port to no outgoing connection (a port picked, released and bound again
    at a restart could be in use by then) and lets no other socket bind it but one with
    SO_REUSEPORT of the same user: each start's `Worker.listener`."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", 0))
    return s


@dataclass
class Worker:
    index: int
    reserved: socket.socket = field(default_factory=reserve_port, repr=False)
    proc: asyncio.subprocess.Process | None = None
    backoff: float = 1.0
    started: float = 0.0

    @property
    def port(self) -> int:
        return int(self.reserved.getsockname()[1])

    def listener(self) -> socket.socket:
        """A socket bound to the worker's port for one start of it: the worker inherits it and
        listens on it, and it is gone with the worker (the supervisor closes its own copy)."""
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the last start's TIME_WAITs
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            s.bind(("127.0.0.1", self.port))
        except OSError:
            s.close()
            raise
        return s

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


class WorkerPool:
    def __init__(self, count: int) -> None:
        self.count = count
        self.workers = [Worker(i) for i in range(count)]
        self._session: aiohttp.ClientSession | None = None

    def connect(self, user: str, password: str) -> None:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": aiohttp.BasicAuth(user, password).encode()}
        )

    async def close(self) -> None:
        """Once the workers have exited: the client, and the workers' ports."""
        if self._session is not None:
            await self._session.close()
        for w in self.workers:
            w.reserved.close()

    def owner(self, name: str) -> Worker:
        """The worker that runs metric `name` (the shard hash, as `--shard i/N` decides)."""
        return self.workers[name_hash(name) % self.count]

    @property
    def session(self) -> aiohttp.ClientSession:
        """The client that talks to the workers (as `SUPERVISOR_USER`)."""
        assert self._session is not None, "the pool is not connected"
        return self._session

    async def get(self, w: Worker, path: str) -> tuple[int, str]:
        async with self.session.get(w.base + path, timeout=aiohttp.ClientTimeout(total=10)) as r:
            return r.status, await r.text()

    async def all_workers(self, path: str) -> list[tuple[int, str]]:
        async def one(w: Worker) -> tuple[int, str]:
            try:
                return await self.get(w, path)
            except DOWN as exc:
                return 503, f"worker {w.index}: {exc}"

        return list(await asyncio.gather(*(one(w) for w in self.workers)))

    async def ready(self) -> bool:
        return all(status == 200 for status, _ in await self.all_workers("/readyz"))

    async def first_entries(self, w: Worker, filters: dict[str, str], want: int) -> dict[str, Any] | None:
        """A worker's /api/v1/metrics answer holding its first `want` entries (None: down)."""
        out: dict[str, Any] | None = None
        offset: int | None = 0
        while offset is not None and (out is None or len(out["metrics"]) < want):
            query = urllib.parse.urlencode(filters | {"offset": offset, "limit": API_PAGE_MAX})
            try:
                status, body = await self.get(w, f"/api/v1/metrics?{query}")
            except DOWN:
                return None
            if status != 200:
                return None
            answer = json.loads(body)
            if out is None:
                out = answer
            else:
                out["metrics"] += answer["metrics"]
            offset = answer.get("next_offset")
        return out

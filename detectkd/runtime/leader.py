"""Leader election for replicas of one shard (`ha.enabled`): a lease row in PostgreSQL.

Every replica loads its metrics and stays ready; only the lease holder runs checks and
delivers. The leader renews every `ha.lease / 4`; a standby tries as often and takes the
lease once it has expired (the database's clock decides), so a dead leader is replaced
within one lease period and one try. A leader that cannot renew (database unreachable,
process stopped) stops acting on its own once `ha.lease` has passed since its last renewal
began, before the database lets anyone else in; and its commits and claims are fenced by
the token anyway (`storage.lease`), so a deposed leader cannot write or deliver. A standby
kept out by the lease row's lock once the lease has expired (a leader frozen half-way
through a statement) ends that leader's fenced sessions, so it leads within the lease and
two tries.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable

import structlog

from detectkd.config.settings import Settings
from detectkd.errors import StorageError, error_line
from detectkd.storage.base import Store
from detectkd.storage.lease import Fence
from detectkd.storage.postgres import PostgresStore

log = structlog.get_logger("detectkd.ha")


def leadership_for(
    settings: Settings, store: Store, on_change: Callable[[bool], Awaitable[None]]
) -> Leadership | None:
    """The election for `ha.enabled` (settings refuse it without a PostgreSQL store)."""
    if not settings.ha.enabled:
        return None
    assert isinstance(store, PostgresStore)
    return Leadership(store, settings.shard, settings.ha.lease.total_seconds(), on_change)


class Leadership:
    def __init__(
        self, store: PostgresStore, shard: str, lease_s: float, on_change: Callable[[bool], Awaitable[None]]
    ) -> None:
        self.store, self.shard, self.lease_s = store, shard, lease_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.token: int | None = None
        self._until = 0.0  # monotonic: acting as leader is safe until then
        self._on_change = on_change
        self._was = False
        # Until elected, a token no lease has (they start at 1): a standby writes nothing.
        store.fence = Fence(shard, self.holder, 0, lease_s)

    @property
    def leader(self) -> bool:
        return self.token is not None and time.monotonic() < self._until

    async def step(self) -> bool:
        """One try to take or renew the lease; True while this replica leads."""
        began = time.monotonic()
        try:
            token = await asyncio.wait_for(
                self.store.lease_acquire(self.shard, self.holder, self.lease_s), self.lease_s / 4
            )
        except (StorageError, TimeoutError) as exc:
            log.warning("lease not renewed", shard=self.shard, error=error_line(exc) or "timeout")
            if isinstance(exc, TimeoutError) and self.token is None:
                await self._evict()  # a standby kept out by a lock: the holder's, frozen?
        else:
            if token is None:
                self.token, self._until = None, 0.0
            else:
                self.token, self._until = token, began + self.lease_s * 0.9
                self.store.fence = Fence(self.shard, self.holder, token, self.lease_s)
        now = self.leader
        if now != self._was:
            self._was = now
            log.info("leader" if now else "standby", shard=self.shard, holder=self.holder, token=self.token)
            await self._on_change(now)
        return now

    async def _evict(self) -> None:
        """End the fenced sessions of an expired lease's holder that hold its row: a process
        frozen half-way through a statement, which no server timeout ends (`storage.lease`).
        A live leader's lease has not expired, so nothing of it is touched."""
        try:
            async with asyncio.timeout(self.lease_s / 4):
                ended = await self.store.lease_evict(self.shard)
        except (StorageError, TimeoutError) as exc:
            log.warning(
                "expired lease's sessions not ended", shard=self.shard, error=error_line(exc) or "timeout"
            )
            return
        if ended:
            log.warning("expired lease's sessions ended", shard=self.shard, sessions=ended)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.step()
            except Exception as exc:  # never let the election loop die
                log.error("leader election failed", error=error_line(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.lease_s / 4)

    async def release(self) -> None:
        """On shutdown: let a standby take over now instead of after the lease."""
        if self.token is None:
            return
        self.token, self._until = None, 0.0
        try:
            await self.store.lease_release(self.shard, self.holder)
        except StorageError as exc:
            log.warning("lease not released", error=error_line(exc))

"""Which host of a failover list to try first (PostgreSQL and ClickHouse, sources and stores).

The policy, documented in docs/configuration.md ("Failover"):

- hosts are tried in the listed order, each with its own connect timeout
  (CONNECT_TIMEOUT_S): a black-holed first host costs that timeout, then the
  next host is tried — the timeout is per host, not for the whole list;
- a host that failed to connect is tried *last* for RETRY_S, so a dead first
  host is not paid for on every connection or request;
- after RETRY_S it is tried first again: that is the way back. Pooled
  PostgreSQL connections sitting on a later host are then replaced (the pool
  is expired), so they return to the first host once it answers.

No round-robin: the first host is the primary, the others are standbys.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CONNECT_TIMEOUT_S = 10.0
RETRY_S = 60.0


class HostOrder:
    """The order to try `n` hosts in, given which failed recently. Not thread-safe (one loop)."""

    def __init__(
        self, n: int, retry_s: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._n = n
        self._retry_s = RETRY_S if retry_s is None else retry_s
        self._clock = clock
        self._failed_at: dict[int, float] = {}

    def order(self) -> list[int]:
        now = self._clock()
        held = {i for i, at in self._failed_at.items() if now - at < self._retry_s}
        return [i for i in range(self._n) if i not in held] + sorted(held)

    def failed(self, i: int) -> None:
        self._failed_at[i] = self._clock()

    def ok(self, i: int) -> None:
        self._failed_at.pop(i, None)

    def better_than(self, i: int) -> bool:
        """Would a new connection try a host listed before host `i` first?"""
        return self.order()[0] < i

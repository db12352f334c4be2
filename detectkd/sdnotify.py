"""systemd's notify protocol (sd_notify(3)), without libsystemd.

Under `Type=notify` systemd passes `NOTIFY_SOCKET` (a datagram socket path, or
`@name` for the abstract namespace) and, with `WatchdogSec=`, `WATCHDOG_USEC`.
detectkd sends:

- `READY=1` once the first config is loaded and alert state restored, with
  `STATUS=` (metrics scheduled, metrics failing, config errors);
- `RELOADING=1` + `MONOTONIC_USEC=` when a reload starts, `READY=1` after it;
- `WATCHDOG=1` every half `WATCHDOG_USEC` from a task on the event loop, so
  a loop that hangs stops the pings and systemd restarts the service;
- `STOPPING=1` on shutdown.

Without `NOTIFY_SOCKET` (not under systemd, or another `Type=`) every call
is a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger("detectkd.systemd")


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + raw[1:] if raw.startswith("@") else raw
        self._sock: socket.socket | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_seconds = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and mine else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> bool:
        """One datagram with `KEY=value` lines; False (and a log line) if it could not be sent."""
        if not self.address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            log.warning("systemd notification failed", error=str(exc), message=fields[0])
            return False
        return True

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def beat(self, status_line: Callable[[], str], stop: asyncio.Event) -> None:
        """WATCHDOG=1 at half systemd's WatchdogSec, from this loop: a hung loop stops the
        pings. STATUS= is refreshed on the same beat (or every 10 s without a watchdog)."""
        period = self.watchdog_seconds
        if not self.enabled:
            return
        beat = period / 2 if period else 10.0
        status = ""
        while not stop.is_set():
            if period:
                self.watchdog()
            line = status_line()
            if line != status:
                self.status(line)
                status = line
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=beat)

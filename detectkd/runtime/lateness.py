"""A live run of a metric with a `completeness:` block: re-judge what late rows changed
(`runtime.recheck`), hold the newest period back until it is complete
(`runtime.completeness`), run, and ask again when the gate says so. Without the block it is
the plain run. Used by the daemon's scheduled runs only: `detectkd check` and backtests read
periods that are long complete."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from detectkd.errors import error_line
from detectkd.resources import Resources
from detectkd.runtime.closing import all_or_nothing
from detectkd.runtime.completeness import Gate, Held
from detectkd.runtime.recheck import Recheck
from detectkd.runtime.runner import MetricRuntime


class Lateness:
    def __init__(self, rt: MetricRuntime, resources: Resources) -> None:
        self.rt = rt
        self._again: asyncio.TimerHandle | None = None
        with all_or_nothing(rt.name) as built:  # the gate's probe is closed if what follows fails
            self.gate = Gate(rt, resources)
            built.append(self.gate.close)
            self.recheck = Recheck(rt)

    async def run(self, finish: int, now: float, again: Callable[[], Coroutine[Any, Any, None]]) -> Held:
        """The run for `finish` at `now`; `again()` is the extra run started when the gate
        asks to be asked again (one pending at a time)."""
        started = time.monotonic()
        try:
            if self.recheck.span:
                await self.recheck.run(now)
            held = await self.gate.hold(finish, now)
        except Exception as exc:  # counted and shown like a failed run (which it is)
            self.rt.record_failure(f"{self.rt.name}: {error_line(exc)}", started)
            raise
        if held.finish is not None:
            report = await self.rt.run(held.finish)
            self.recheck.remember(report.points)
        if held.retry is not None:
            self.cancel()
            loop = asyncio.get_running_loop()
            self._again = loop.call_later(held.retry, lambda: loop.create_task(again()) and None)
        return held

    def cancel(self) -> None:
        if self._again is not None:
            self._again.cancel()
            self._again = None

    async def close(self) -> None:
        self.cancel()
        await self.gate.close()

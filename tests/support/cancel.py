"""A cancellation that arrives as the awaited thing completes: the moment Python 3.11's
`asyncio.wait_for` returns the result and loses the cancellation (cpython gh-86296)."""

from __future__ import annotations

import asyncio
from typing import Any


class Arrival:
    """Something the code under test awaits (`wait`), completed by the test in the same loop
    iteration as it cancels the task awaiting it (`complete_and_cancel`): deterministic, no
    timing involved."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self._done: asyncio.Future[Any] | None = None

    async def wait(self, result: Any = None) -> Any:
        self._done = asyncio.get_running_loop().create_future()
        self.reached.set()
        await self._done
        return result

    async def complete_and_cancel(self, task: asyncio.Task[Any]) -> None:
        """Once `wait` is awaited: complete it and cancel `task`, in one loop iteration. A
        task that ends before it awaits `wait` fails the test with its outcome."""
        reached = asyncio.ensure_future(self.reached.wait())
        await asyncio.wait([reached, task], return_when=asyncio.FIRST_COMPLETED)
        if not reached.done():
            reached.cancel()
            raise AssertionError(f"ended before it awaited the arrival: {task.result()!r}")
        assert self._done is not None
        self._done.set_result(None)
        task.cancel()

"""`offloop.in_thread`: a judge cancelled while it waits for a thread never runs; one
cancelled while it runs is waited for (the caller rolls back only what no thread changes)."""

from __future__ import annotations

import asyncio
import threading

from detectkd.runtime import offloop


async def test_a_cancelled_judge_never_runs_if_it_had_not_begun_and_is_waited_for_if_it_had() -> None:
    release = threading.Event()
    begun = [threading.Event() for _ in range(offloop.JUDGE_THREADS)]
    ran: list[str] = []

    def busy(k: int) -> str:
        begun[k].set()
        release.wait(timeout=30)
        ran.append(f"busy{k}")
        return "done"

    def queued() -> None:
        ran.append("queued")

    running = [asyncio.ensure_future(offloop.in_thread(busy, k)) for k in range(offloop.JUDGE_THREADS)]
    for b in begun:
        assert await asyncio.to_thread(b.wait, 30)  # every judge thread is taken
    waiting = asyncio.ensure_future(offloop.in_thread(queued))
    await asyncio.sleep(0)
    waiting.cancel()
    running[0].cancel()
    await asyncio.wait([waiting], timeout=30)
    assert waiting.cancelled() and not running[0].done()  # the begun one is waited for
    release.set()
    results = await asyncio.gather(*running, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError) and results[1:] == ["done"] * (len(results) - 1)
    assert sorted(ran) == [f"busy{k}" for k in range(offloop.JUDGE_THREADS)]  # `queued` never ran

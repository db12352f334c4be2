"""`offloop.in_thread`: a judge cancelled while it waits for a thread never runs; one
cancelled while it runs is waited for (the caller rolls back only what no thread changes)."""

from __future__ import annotations

import asyncio
import threading

import pytest

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


async def test_a_budget_is_paused_while_a_judge_waits_and_runs_and_still_bounds_the_rest() -> None:
    """`budget` (a run's timeout): a judge past it completes; an await past it is cancelled."""
    loop = asyncio.get_running_loop()
    release = threading.Event()
    loop.call_later(0.5, release.set)  # past the budget
    with pytest.raises(TimeoutError):
        async with offloop.budget(0.2):
            assert await offloop.sized(offloop.OFF_LOOP_POINTS + 1, release.wait, 30)
            assert await offloop.sized(1, lambda: "small") == "small"  # judged right here
            await asyncio.Event().wait()  # the source hangs: the rest of the budget ends it


async def test_nested_budgets_are_all_paused_while_a_judge_waits_and_runs() -> None:
    """A live run's timeout around a history batch's (periods judged again with a loaded
    history): a judge past both completes; an await past the inner one is cancelled by it."""
    loop = asyncio.get_running_loop()
    release = threading.Event()
    loop.call_later(0.5, release.set)  # past both budgets
    async with offloop.budget(0.3):
        with pytest.raises(TimeoutError):
            async with offloop.budget(0.2):
                assert await offloop.sized(offloop.OFF_LOOP_POINTS + 1, release.wait, 30)
                await asyncio.Event().wait()  # the source hangs: the inner budget's rest ends it


async def test_window_loads_of_many_series_metrics_take_turns_outside_the_budget() -> None:
    """`window_load`: at most `WINDOW_LOADS` many-series window loads at once; the wait for a
    turn past a run's budget does not end the run; a one-series metric's load never waits."""
    loop = asyncio.get_running_loop()
    inside, most = 0, 0
    release = asyncio.Event()

    async def load(many: bool) -> None:
        nonlocal inside, most
        async with offloop.window_load(many):
            inside += 1
            most = max(most, inside)
            await release.wait()
            inside -= 1

    held = [asyncio.ensure_future(load(True)) for _ in range(offloop.WINDOW_LOADS)]
    while inside < offloop.WINDOW_LOADS:
        await asyncio.sleep(0)
    async with offloop.window_load(False):  # one series: no turn to wait for
        pass
    loop.call_later(0.5, release.set)  # past the budget
    async with offloop.budget(0.2):
        await load(True)  # waited for its turn, then loaded
    await asyncio.gather(*held)
    assert most == offloop.WINDOW_LOADS and inside == 0


async def test_a_judge_cancelled_twice_while_it_runs_is_still_waited_for() -> None:
    """A run's timeout and then a reload (or shutdown) cancel the same run while its judge
    runs: the second cancel must not end the wait either, or the caller rolls back the
    memory while the thread still changes it."""
    begun, release = threading.Event(), threading.Event()
    finished: list[bool] = []

    def busy() -> None:
        begun.set()
        release.wait(timeout=30)
        finished.append(True)

    seen: list[bool] = []
    task = asyncio.ensure_future(offloop.in_thread(busy))
    task.add_done_callback(lambda _: seen.append(bool(finished)))
    assert await asyncio.to_thread(begun.wait, 30)
    try:
        for k in range(3):  # each cancel is delivered and absorbed while the judge runs
            task.cancel(f"cancel {k}")
            for _ in range(5):
                await asyncio.sleep(0)
            assert not task.done()
    finally:
        release.set()
    with pytest.raises(asyncio.CancelledError, match="cancel 0"):  # the first, once it returned
        await task
    assert seen == [True]  # the task ended only after the judge had returned

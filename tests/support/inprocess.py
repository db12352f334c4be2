"""The Daemon object in the test's own event loop, on a temp directory."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import aiohttp
import bcrypt

from detectkd.alerting.alert import Alert
from detectkd.config.settings import Settings, StorageSettings
from detectkd.http.app import make_app
from detectkd.http.edge import serve
from detectkd.http.webconfig import WebConfig
from detectkd.runtime.daemon import Daemon
from tests.support.files import write
from tests.support.http import basic_auth

T = TypeVar("T")


def make_settings(tmp: Path, **extra: object) -> Settings:
    """Settings on tmp's metrics.d and data/, listening on a free port."""
    return Settings(
        metrics_dir=tmp / "metrics.d",
        profiles_file=None,
        data_dir=tmp / "data",
        storage=StorageSettings(path=tmp / "data" / "dtk.db"),
        listen="127.0.0.1:0",
        **extra,  # type: ignore[arg-type]
    )


@asynccontextmanager
async def running(
    tmp_path: Path, clock: Callable[[], float] | None = None, **settings: object
) -> AsyncIterator[Daemon]:
    """A started daemon on tmp_path's metrics.d, stopped and closed afterwards. `clock`: the
    wall clock its history loader and its runs without a time see (a test's NOW must not
    cross an hour under it)."""
    d = Daemon(make_settings(tmp_path, **settings))
    if clock is not None:
        d.history.clock = d.runs.clock = clock
    await d.start()
    try:
        yield d
    finally:
        d.scheduler.shutdown(wait=False)
        await d.runs.drain(5)
        await within(d.close(), 30, "Daemon.close()")


def http_metric(tmp_path: Path, name: str, url: str) -> None:
    """A metric in tmp_path/metrics.d collecting `url` every second."""
    write(
        tmp_path / "metrics.d" / f"{name}.yaml",
        f"name: {name}\nschedule: {{interval: 1s}}\ncollector:\n  type: http\n  params: {{url: '{url}', timeout: 20s}}\n",
    )


async def firing_alerts(d: Daemon) -> list[Alert]:
    """The FIRING alerts waiting in the daemon's outbox."""
    return [
        a
        for a in (Alert.from_json(i.payload) for i in await d.store.outbox_pending())
        if a.status == "firing"
    ]


async def within(awaitable: Awaitable[T], seconds: float, what: str) -> T:
    """Await with a deadline; past it, fail naming `what` and showing where every task waits
    (a hang becomes a failure that says where it hangs)."""
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        stacks = []
        for task in asyncio.all_tasks():
            frames = "".join(traceback.format_list(traceback.extract_stack(task.get_stack()[-1])))
            stacks.append(f"{task.get_name()}:\n{frames}" if task.get_stack() else task.get_name())
        raise AssertionError(f"{what}: not done in {seconds:g} s; tasks:\n" + "\n".join(stacks)) from None


PASSWORD = "pw"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()  # cheap rounds: tests


@asynccontextmanager
async def listening(d: Daemon, users: dict[str, str]) -> AsyncIterator[str]:
    """The daemon's real HTTP app (the edge included) on a free port; yields its base URL."""
    config = WebConfig(basic_auth_users=users)
    runner = await serve(make_app(d, config), "127.0.0.1", 0, config, None)
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def served(d: Daemon, user: str = "ops") -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """`listening` with one user (password `PASSWORD`), and a client logged in as that user."""
    login = aiohttp.ClientSession(headers=basic_auth(user, PASSWORD))
    async with listening(d, {user: HASH}) as base, login as http:
        yield http, base

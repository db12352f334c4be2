"""The real `detectkd` process on a temp config dir, talked to over HTTP; a headless browser."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt

from tests.support.files import write
from tests.support.http import basic_auth
from tests.support.net import free_port

USER, PASSWORD = "ops", "e2e-password"
READY_TIMEOUT_S = 90.0
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()  # cheap rounds: tests


@dataclass
class DaemonProcess:
    """The real daemon. Its endpoints need basic auth (a web config file with one user),
    which also enables the write API (`lifecycle_api: true`)."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None
    log_path: Path = field(init=False)
    auth: dict[str, str] = field(default_factory=lambda: basic_auth(USER, PASSWORD))  # headers

    def __post_init__(self) -> None:
        self.log_path = self.root / "detectkd.log"
        write(self.root / "web.yml", f"basic_auth_users:\n  {USER}: '{HASH}'\n")
        write(
            self.root / "detectkd.yaml",
            f"metrics_dir: metrics.d\nprofiles_file: profiles.yaml\ndata_dir: data\n"
            f"listen: 127.0.0.1:{self.port}\nlog_format: json\nlifecycle_api: true\nshutdown_grace: 10s\n"
            "web_config_file: web.yml\n",
        )
        (self.root / "metrics.d").mkdir(exist_ok=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "detectkd",
            "run",
            "--config",
            str(self.root / "detectkd.yaml"),
            *args,
            stdout=log,
            stderr=log,
            env={**os.environ, **(env or {})},
        )
        # Generous: a `workers:` supervisor is ready once every worker is, and under CI's load
        # (12-15) starting three Python processes took over 30 s. Only a failure waits it out.
        try:
            await self.until(lambda: self.ready(), timeout=READY_TIMEOUT_S, what="/readyz 200")
        except BaseException:  # a start that failed leaves no daemon behind (its workers die with it)
            await self.kill()
            raise

    async def ready(self) -> bool:
        try:
            status, _ = await self.get("/readyz")
        except (aiohttp.ClientError, TimeoutError):  # a supervisor asks its workers: it may be slow
            return False
        return status == 200

    async def get(self, path: str) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession(headers=self.auth) as s,
            s.get(self.base + path, timeout=aiohttp.ClientTimeout(5)) as r,
        ):
            return r.status, await r.text()

    async def api(self) -> dict[str, Any]:
        status, body = await self.get("/api/v1/metrics")
        assert status == 200
        result: dict[str, Any] = json.loads(body)
        return result

    async def metric(self, name: str) -> dict[str, Any] | None:
        return next((m for m in (await self.api())["metrics"] if m["name"] == name), None)

    async def until(self, check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
        """Poll `check` (sync or async) until it returns truthy, or fail at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.returncode is not None:
                raise AssertionError(
                    f"detectkd exited ({self.proc.returncode}) waiting for {what}:\n{self.logs()[-3000:]}"
                )
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; log tail:\n{self.logs()[-3000:]}")
            await asyncio.sleep(0.1)

    async def kill(self) -> None:
        """Cleanup: SIGKILL if still running (SIGCONT first: a stopped process too)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            await self.proc.wait()

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        return code

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


def cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `detectkd ...` (or `dtk ...`) as a user would, with no DETECTK_CONFIG."""
    tool = "dtk" if args[0] == "dtk" else "detectkd"
    rest = args[1:] if args[0] == "dtk" else args
    module = "detectkd.commands.dtk" if tool == "dtk" else "detectkd"
    return subprocess.run(
        [sys.executable, "-m", module, *rest],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "DETECTK_CONFIG": "", **(env or {})},
    )


def chromium() -> Any:
    """A headless Chromium under Selenium (Debian's chromium and chromium-driver)."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    exe = shutil.which("chromium")
    driver_exe = shutil.which("chromedriver")
    assert exe and driver_exe, "scripts/test installs Debian's chromium and chromium-driver"
    opts = webdriver.ChromeOptions()
    opts.binary_location = exe
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(driver_exe), options=opts)

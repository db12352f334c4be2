"""systemd integration: the notify protocol from the real process, and the unit file."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.files import REPO
from tests.support.http import Receiver
from tests.support.metrics import Source, fill, metric_yaml
from tests.support.process import DaemonProcess


class NotifySocket:
    """What systemd listens on: a datagram socket; messages are `KEY=value` lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[dict[str, str]] = []

    async def wait_for(self, key: str, value: str | None = None, timeout: float = 30.0) -> dict[str, str]:
        """The first message not seen yet that carries `key` (=`value`); earlier ones are kept."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {key}={value or '*'} within {timeout}s; got {self.messages}"
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), left)
            msg = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append(msg)
            if key in msg and (value is None or msg[key] == value):
                return msg

    def close(self) -> None:
        self.sock.close()


async def test_ready_watchdog_reloading_and_stopping_from_the_real_process(
    daemon: DaemonProcess, receiver: Receiver
) -> None:
    src = Source(daemon.root / "src.db")
    now = int(time.time())
    fill(src, "orders", now - 400, now + 200, 2, {})
    (daemon.root / "metrics.d" / "orders.yaml").write_text(metric_yaml("orders", src.path, receiver.url))
    notify = NotifySocket(daemon.root / "notify.sock")
    try:
        await daemon.start(env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"})
        ready = await notify.wait_for("READY", "1")
        assert ready["STATUS"].startswith("1 metrics, 0 failing")
        # The watchdog pings come from the event loop, every half of WATCHDOG_USEC.
        first = await notify.wait_for("WATCHDOG", "1", timeout=5)
        await notify.wait_for("WATCHDOG", "1", timeout=5)
        assert first == {"WATCHDOG": "1"}
        # A reload is bracketed by RELOADING=1 (with the monotonic clock) and READY=1.
        (daemon.root / "metrics.d" / "refunds.yaml").write_text(
            metric_yaml("refunds", src.path, receiver.url)
        )
        daemon.send(signal.SIGHUP)
        reloading = await notify.wait_for("RELOADING", "1")
        assert int(reloading["MONOTONIC_USEC"]) > 0
        again = await notify.wait_for("READY", "1")
        assert again["STATUS"].startswith("2 metrics")
        assert await daemon.stop() == 0
        await notify.wait_for("STOPPING", "1", timeout=10)
    finally:
        notify.close()


def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze comes with Debian's systemd package (installed by scripts/test)"
    unit = (REPO / "systemd" / "detectkd.service").read_text()
    for key in (
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "User=detectk",
        "StateDirectory=detectk",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "EnvironmentFile=-/etc/detectk/detectkd.env",
        "WatchdogSec=",
    ):
        assert key in unit, key
    # verify checks that ExecStart exists: point it at this checkout's detectkd.
    exe = REPO / ".venv" / "bin" / "detectkd"
    copy = tmp_path / "detectkd.service"
    copy.write_text(unit.replace("/opt/detectkd/bin/detectkd", str(exe)))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if "detectkd.service" in line]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr


def test_the_shard_template_unit_verifies_and_runs_shard_i_of_n(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze
    unit = (REPO / "systemd" / "detectkd@.service").read_text()
    assert "--shard %i/${DETECTK_SHARDS}" in unit and "StateDirectory=detectk/shard-%i" in unit
    assert "EnvironmentFile=-/etc/detectk/shard-%i.env" in unit
    plain = (REPO / "systemd" / "detectkd.service").read_text()
    for key in ("NoNewPrivileges=yes", "ProtectSystem=strict", "Type=notify", "WatchdogSec=60s"):
        assert key in unit and key in plain, key  # the same hardening as the single unit
    exe = REPO / ".venv" / "bin" / "detectkd"
    template = tmp_path / "detectkd@.service"
    template.write_text(unit.replace("/opt/detectkd/bin/detectkd", str(exe)))
    instance = tmp_path / "detectkd@1.service"
    instance.symlink_to(template)
    done = subprocess.run([analyze, "verify", str(instance)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if "detectkd@" in line]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr


async def test_workers_are_ready_together_and_the_watchdog_stops_while_one_is_dead(tmp_path: Path) -> None:
    d = DaemonProcess(tmp_path)
    Source(d.root / "src.db")
    for name in ("a1", "b2", "c3"):
        (d.root / "metrics.d" / f"{name}.yaml").write_text(
            metric_yaml(name, d.root / "src.db", "http://127.0.0.1:9/")
        )
    notify = NotifySocket(d.root / "notify.sock")
    try:
        await d.start(
            env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000", "DETECTK_WORKERS": "2"}
        )
        ready = await notify.wait_for("READY", "1")
        assert ready["STATUS"] == "2 workers, 2 alive"
        assert (await d.api())["total"] == 3  # READY came after every worker was ready
        # Deadlines, not sleeps, and generous: with 5 s and 15 s this test timed out now and then
        # under the heaviest load of this 2-core machine (a worker's restart is a new process that
        # imports numpy and opens its store); they cost nothing when the daemon is quick.
        await notify.wait_for("WATCHDOG", "1", timeout=30)
        (pid,) = [
            int(e["pid"]) for e in d.log_events() if e.get("event") == "worker started" and e["worker"] == 0
        ]
        os.kill(pid, signal.SIGKILL)
        down = await notify.wait_for("STATUS", "2 workers, 1 alive", timeout=30)
        up = await notify.wait_for("STATUS", "2 workers, 2 alive", timeout=60)  # restarted
        at = [i for i, m in enumerate(notify.messages) if m is down or m is up]
        between = notify.messages[at[0] : at[1]]
        assert len(between) >= 1 and not [m for m in between if "WATCHDOG" in m]  # no ping while dead
        assert await d.stop() == 0
        await notify.wait_for("STOPPING", "1", timeout=10)
    finally:
        notify.close()
        await d.kill()

"""`workers: 2` (issue 15): one real supervisor process and its two workers, one :9100 behind
the same basic auth: one correct /metrics (promtool) and /api/v1/metrics over both shards,
a killed worker restarted and counted, SIGHUP forwarded, SIGTERM stopping everything."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
from pathlib import Path

import aiohttp

from tests.support.files import write
from tests.support.metrics import constant_metric
from tests.support.process import READY_TIMEOUT_S, DaemonProcess

NAMES = [f"orders_{i:02d}" for i in range(6)]


def worker_pids(d: DaemonProcess) -> dict[int, int]:
    out: dict[int, int] = {}
    for e in d.log_events():
        if e.get("event") == "worker started":
            out[int(e["worker"])] = int(e["pid"])
    return out


def worker_port(pid: int) -> int:
    """The private port worker `pid` listens on (its `DETECTK_LISTEN`)."""
    env = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)
    return int(env["DETECTK_LISTEN"].rpartition(":")[2])


def exited(pid: int) -> bool:
    """Gone, or a zombie (its files closed) that its supervisor has not reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in "ZX"
    except FileNotFoundError:
        return True


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_two_workers_serve_one_metrics_endpoint_and_restart_a_dead_worker(tmp_path: Path) -> None:
    d = DaemonProcess(tmp_path)
    sqlite3.connect(tmp_path / "src.db").close()
    for name in NAMES:
        write(
            d.root / "metrics.d" / f"{name}.yaml",
            constant_metric(name, tmp_path / "src.db").replace("1h", "1s"),
        )
    write(d.root / "profiles.yaml", "profiles: {}\n")
    await d.start(env={"DETECTK_WORKERS": "2"})
    try:

        async def every_metric_ran() -> bool:
            _, text = await d.get("/metrics")
            return set(re.findall(r'^detectk_checks_total\{metric="([^"]+)"', text, re.M)) >= set(NAMES)

        await d.until(every_metric_ran, what="both workers' metrics in one /metrics")
        status, text = await d.get("/metrics")
        assert status == 200 and "detectk_workers 2.0" in text
        assert len(re.findall(r"^# TYPE detectk_scheduler_lag_seconds ", text, re.M)) == 1
        promtool = shutil.which("promtool")
        assert promtool, "promtool comes with Debian's prometheus package (installed by scripts/test)"
        checked = await asyncio.to_thread(
            subprocess.run, [promtool, "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        api = await d.api()
        assert api["total"] == len(NAMES) and {m["name"] for m in api["metrics"]} == set(NAMES)
        assert {m["shard"] for m in api["metrics"]} == {"0/2", "1/2"}
        # Filters and pages apply to the merged list, as on one daemon.
        paged = [await d.get(f"/api/v1/metrics?limit=4&offset={o}") for o in (0, 4)]
        pages = [json.loads(body) for _, body in paged]
        assert [len(p["metrics"]) for p in pages] == [4, len(NAMES) - 4]
        assert [m["name"] for p in pages for m in p["metrics"]] == sorted(NAMES)
        assert (pages[0]["total"], pages[0]["next_offset"], pages[1]["next_offset"]) == (len(NAMES), 4, None)
        _, body = await d.get("/api/v1/metrics?name=_03")
        named = json.loads(body)
        wanted = [n for n in NAMES if "_03" in n]
        assert [m["name"] for m in named["metrics"]] == wanted == ["orders_03"] and named["total"] == 1
        assert (await d.get("/api/v1/metrics?limit=x"))[0] == 400

        pids = worker_pids(d)
        assert sorted(pids) == [0, 1] and all(alive(p) for p in pids.values())
        os.kill(pids[1], signal.SIGKILL)

        async def restarted() -> bool:
            _, text = await d.get("/metrics")
            return 'detectk_worker_restarts_total{worker="1"} 1.0' in text and worker_pids(d)[1] != pids[1]

        await d.until(restarted, what="worker 1 restarted and counted")
        await d.until(lambda: d.ready(), timeout=READY_TIMEOUT_S, what="ready again")

        write(d.root / "metrics.d" / "refunds.yaml", constant_metric("refunds", tmp_path / "src.db"))
        d.send(signal.SIGHUP)

        async def reloaded() -> bool:
            return bool((await d.api())["total"] == len(NAMES) + 1)

        await d.until(reloaded, what="SIGHUP forwarded to the workers")
        assert await d.stop() == 0
        assert not any(alive(p) for p in worker_pids(d).values())
    finally:
        await d.kill()
        for pid in worker_pids(d).values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    events = [e for e in d.log_events() if e.get("event") == "worker died"]
    assert events and json.dumps(events[0]).count('"worker": 1') == 1


async def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    d = DaemonProcess(tmp_path)
    sqlite3.connect(tmp_path / "src.db").close()
    write(d.root / "metrics.d" / "a.yaml", constant_metric("a", tmp_path / "src.db"))
    write(d.root / "profiles.yaml", "profiles: {}\n")
    await d.start(env={"DETECTK_WORKERS": "2"})
    pids = worker_pids(d)
    assert len(pids) == 2
    assert d.proc is not None
    d.proc.kill()  # kill -9 of the supervisor: no chance to stop its workers itself
    await d.proc.wait()
    deadline = asyncio.get_running_loop().time() + 30
    while any(alive(p) for p in pids.values()):
        assert asyncio.get_running_loop().time() < deadline, "workers outlived their supervisor"
        await asyncio.sleep(0.1)


def refused(port: int) -> bool:
    """Nothing listens on `port` (the dead worker's listening socket is gone)."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


async def test_a_restarted_worker_listens_on_its_port_though_something_else_tried_to_take_it(
    tmp_path: Path,
) -> None:
    """While a worker is down its port must stay the supervisor's: the kernel may give it to
    any outgoing connection (it is from the ephemeral range), and the restarted worker then
    failed to listen ("address already in use") and crash-looped. Here a listening socket tries
    to take the port while the worker is dead (with SO_REUSEADDR, as a server would, so the
    dead worker's connections in TIME_WAIT do not stop it); the supervisor is stopped meanwhile
    so that the restart cannot come first."""
    d = DaemonProcess(tmp_path)
    sqlite3.connect(tmp_path / "src.db").close()
    for name in NAMES:
        write(d.root / "metrics.d" / f"{name}.yaml", constant_metric(name, tmp_path / "src.db"))
    write(d.root / "profiles.yaml", "profiles: {}\n")
    await d.start(env={"DETECTK_WORKERS": "2"})
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        pids = worker_pids(d)
        port = worker_port(pids[1])
        d.send(signal.SIGSTOP)
        os.kill(pids[1], signal.SIGKILL)
        await d.until(lambda: exited(pids[1]) and refused(port), what="worker 1 and its listener gone")
        try:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            taken = True
        except OSError:
            taken = False  # the supervisor holds the port
        d.send(signal.SIGCONT)

        async def serving_again() -> bool:
            try:
                _, text = await d.get("/metrics")
                if 'detectk_worker_restarts_total{worker="1"} 1.0' not in text:
                    return False
                status, body = await d.get("/api/v1/metrics")  # 503 unless both workers answer
            except (aiohttp.ClientError, TimeoutError):
                return False  # (before: asked of the squatter, which never answers)
            return status == 200 and {m["name"] for m in json.loads(body)["metrics"]} == set(NAMES)

        await d.until(
            serving_again, timeout=READY_TIMEOUT_S, what="worker 1 restarted on its port and serving"
        )
        assert not taken, f"worker 1's port {port} was free for anyone while the worker was down"
        assert await d.stop() == 0
    finally:
        squatter.close()
        await d.kill()
        for pid in worker_pids(d).values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

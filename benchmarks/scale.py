"""Scale benchmark: the real daemon with N metrics (SQLite source, SQLite store).

    .venv/bin/python benchmarks/scale.py --metrics 1000 10000 --duration 180 [--detector mad|auto]
    .venv/bin/python benchmarks/scale.py --metrics 10000 --duration 120 --scrape-every 1

For each N: writes N metric files and a source database, pre-loads `--history`
points (120: 2 hours) per metric into the store, starts `detectkd run`, waits one interval
for the warm-up (first runs load their windows), then measures for
`--duration` seconds and prints p50/p99 scheduler lag, CPU milliseconds per
check, checks per second, and peak RSS of the daemon process. `--scrape-every S`
adds a scraper that fetches `/metrics` every S seconds during the measurement
(as a Prometheus with a 1 s scrape interval would) and reports its median and
worst scrape time: compare the lag with and without it. `--restart` measures a restart
instead of a first start: the daemon runs until every metric ran once, is stopped with
SIGTERM (`stop_s`, the restart snapshot's size), and the start after it is measured.
`--series N` gives each metric N series from its one query (a `series_columns` label, the
store pre-loaded per series, each worker's with `--workers N`) and adds
`cpu_us_per_series_check`. `rss_all_mib` is the sum of every process's peak RSS (the
supervisor and its workers).
`--fresh` measures a first start without stored state (issue 28): each metric a `mad`
detector with a 100-point window (min_samples 20), no `start_time`, a source holding
`--fresh-history` seconds (default 30 minutes) of 10-second rows before the start and nothing
in the store, so every metric warms up from the source. It reports `judging_s` (from
`/readyz` until `detectk_metric_judging` is 1 for every metric), the CPU per check while
warming (`warm_cpu_ms_per_check`, from `/readyz` to all judging) and, from one interval after
that, the usual figures for `--duration` seconds.
`--crash` measures a start after `kill -9` (issue 28): the daemon runs until every metric ran
once and a background memory snapshot was written after that (`snapshot_interval`, default
5m, `--snapshot-interval S` to shorten it while developing), then `--crash-after` seconds
more (runs the snapshot does not hold), is killed with SIGKILL, and the start after it is
measured as `--restart`'s, with `caught_up_points`/`rebuilt` and `resumed_s` from the
`restart snapshot resumed` log line, `snap_stall_ms`/`snap_write_s`/`snapshot_mib` from the
last `memory snapshot written` before the kill, and `cpu_to_schedule_s` (CPU seconds of the
restarted process until every metric ran once), `ran_at_cut` (metrics that had run once
when the `--warmup` seconds after `/readyz` ended: `on_schedule_s` is empty when that is not
every one, as with `--no-snapshot` at 10,000) and `ran_at_end` (after the measurement).
`--fresh --detector auto`: the default
detector with a DetectK-style query (an aggregate of the period, no GROUP BY: one query per
period) on a source of one-minute rows, 8 hours of them (`--fresh-history`). `--source-qps Q`
sets `history.source_qps`. `--stop-after S` (with `--fresh`) sends SIGTERM S seconds after
`/readyz`, in the middle of the warm-ups, and reports `stop_s` (SIGTERM to exit) and
`exit_code` (-9: not stopped within 300 s, killed) instead (issue 28).
`--rss-trace FILE` appends the measured start's RSS every 0.1 s (`unix_time MiB` lines) to
FILE, to be read beside the daemon's log (`--crash` keeps it in the temporary directory's
`dtk-scale-crash.log`): where in a start the peak happens (issue 28).
`--params 'k: v, ...'` (with `--detector auto`): every metric names `auto` with these params
(a measured option's CPU beside the defaults').
`--stop-wait S` (default 300): how long the SIGTERM after the measurement may take before
SIGKILL (`exit_code` -9); a short one for a build whose warm-ups hold its shutdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectkd.collectors.points import Point  # noqa: E402
from detectkd.shard import ALL, Shard  # noqa: E402
from detectkd.storage.base import RunRecord  # noqa: E402
from detectkd.storage.sqlite import SqliteStore  # noqa: E402
from tests.support.net import free_port  # noqa: E402

HISTORY_POINTS = 120
DETECTORS = {
    "mad": "detector:\n  type: mad\n  params: {window_size: 2h, n_sigma: 4, min_samples: 30}",
    "auto": "",  # no detector named: the default, `auto`
    # --fresh: a 100-point window at a 60 s interval, judged once 20 points are in it
    "fresh": "detector:\n  type: mad\n  params: {window_size: 100m, n_sigma: 4, min_samples: 20}",
    "fresh-auto": "",  # --fresh --detector auto: the default detector, a DetectK-style query
}
FRESH_ROW_S = 10  # --fresh: the source holds a row every 10 seconds

METRIC = """\
name: m{i}
schedule: {{interval: {interval}s}}
collector:
  profile: src
  params:
    query: >-
      SELECT period_time, value FROM src WHERE m = {i}
      AND period_time >= '{{{{ period_start }}}}' AND period_time < '{{{{ period_finish }}}}'
{detector}
alerter:
  type: log
"""
# --fresh --detector auto: DetectK's style, an aggregate over the period and no GROUP BY
# period, so it can only be asked one period at a time (a one-minute row per metric).
METRIC_PER_PERIOD = """\
name: m{i}
schedule: {{interval: {interval}s}}
collector:
  profile: src
  params:
    query: >-
      SELECT '{{{{ period_start }}}}' AS period_time, avg(value) AS value FROM src WHERE m = {i}
      AND period_time >= '{{{{ period_start }}}}' AND period_time < '{{{{ period_finish }}}}'
alerter:
  type: log
"""


# --series N: one query answers N series, told apart by the `s` column (a series_columns label)
METRIC_SERIES = """\
name: m{i}
schedule: {{interval: {interval}s}}
collector:
  profile: src
  series_columns: [s]
  max_series: {n}
  params:
    query: >-
      SELECT period_time, s, value FROM src WHERE m = {i}
      AND period_time >= '{{{{ period_start }}}}' AND period_time < '{{{{ period_finish }}}}'
{detector}
alerter:
  type: log
"""


def build_source(
    path: Path, n: int, interval: int, start: int, end: int, every: int = 0, series: int = 1
) -> None:
    """A row per metric (and per series: `s`, k0 k1 ...) every `every` seconds (default:
    `interval`) in [start, end)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE src (m INTEGER, s TEXT, period_time TEXT, value REAL)")
    for t in range(start - start % (every or interval), end, every or interval):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
        rows = (
            (i, f"k{j}", stamp, 100.0 + (i + j + t // interval) % 7) for i in range(n) for j in range(series)
        )
        conn.executemany("INSERT INTO src VALUES (?,?,?,?)", rows)
    conn.execute("CREATE INDEX src_m ON src (m, period_time)")
    conn.commit()
    conn.close()


async def preload_store(
    path: Path,
    n: int,
    interval: int,
    now: int,
    history: int = HISTORY_POINTS,
    shard: Shard = ALL,
    series: int = 1,
) -> None:
    """The store of a daemon that already ran: `history` points and a watermark per metric
    (of `shard`: with `workers: N` each worker has its own store, `data/worker-i`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(path)
    await store.open()
    last = now - now % interval - interval
    periods = [last - k * interval for k in range(history, 0, -1)]
    chunk = max(1, 200_000 // max(1, history))  # series a commit: a full history's points stay few
    for i in (i for i in range(n) if shard.owns(f"m{i}")):
        keys = [(f"s=k{j}" if series > 1 else "", j) for j in range(series)]
        for c in range(0, len(keys), chunk):
            pts = [
                Point(key, p, 100.0 + (i + j + p // interval) % 7)
                for key, j in keys[c : c + chunk]
                for p in periods
            ]
            await store.commit(RunRecord(f"m{i}", points=pts, watermark=periods[-1]))
    await store.close()


def scrape(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=120) as r:
        return str(r.read().decode())


def histogram(text: str, name: str) -> list[tuple[float, float]]:
    out = []
    for m in re.finditer(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M):
        out.append((float("inf") if m[1] == "+Inf" else float(m[1]), float(m[2])))
    return out


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """histogram_quantile: linear interpolation inside the bucket."""
    total = buckets[-1][1]
    if total == 0:
        return float("nan")
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / max(count - prev_count, 1e-9)
        prev_le, prev_count = le, count
    return prev_le


def delta(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(le, cb - ca) for (le, ca), (_, cb) in zip(a, b, strict=True)]


def total_checks(text: str) -> float:
    return sum(float(v) for v in re.findall(r"^detectk_checks_total\{[^}]*\} (\S+)$", text, re.M))


def judging(text: str) -> int:
    """Metrics whose newest period was judged (`detectk_metric_judging` 1)."""
    return len(re.findall(r"^detectk_metric_judging\{[^}]*\} 1(?:\.0)?$", text, re.M))


def metrics_run(text: str) -> int:
    """Metrics that have finished at least one run (any result)."""
    return len(set(re.findall(r'^detectk_checks_total\{metric="([^"]+)"[^}]*\} [1-9]', text, re.M)))


def cpu() -> float:
    """CPU seconds of this process (every thread), for the in-process benchmarks."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def cpu_tree(pid: int) -> float:
    """CPU seconds of a process and its children (the workers of `workers: N`)."""
    return cpu_seconds(pid) + sum(cpu_seconds(c) for c in children(pid))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_daemon(root: Path, metric_texts: Iterable[str], extra: str = "") -> int:
    """`metrics.d` (m0.yaml, m1.yaml, ...), the `src` profile on root/src.db and the
    daemon's config on a free port, which is returned."""
    (root / "metrics.d").mkdir()
    for i, text in enumerate(metric_texts):
        (root / "metrics.d" / f"m{i}.yaml").write_text(text)
    (root / "profiles.yaml").write_text(f"profiles:\n  src:\n    type: sqlite\n    database: {root}/src.db\n")
    port = free_port()
    (root / "detectkd.yaml").write_text(
        f"metrics_dir: metrics.d\nprofiles_file: profiles.yaml\ndata_dir: data\n"
        f"listen: 127.0.0.1:{port}\nlog_format: json\nlog_level: warning\n{extra}"
    )
    return port


def trace_rss(pid: int, path: str) -> None:
    """Append `wall_time rss_mib` lines for process `pid` every 0.1 s until it exits
    (`--rss-trace`: where in a start the peak happens, beside the daemon's log times)."""
    with open(path, "a") as out:
        out.write(f"# pid {pid}\n")
        while True:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                return
            rss = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")), "")
            if not rss:  # a zombie: exited, not yet waited for
                return
            out.write(f"{time.time():.2f} {int(rss) / 1024:.1f}\n")
            out.flush()
            time.sleep(0.1)


def start(root: Path, port: int, rss_trace: str = "") -> subprocess.Popen[bytes]:
    """`detectkd run` on the benchmark's config, once /readyz answers 200 (`rss_trace`: a
    file its RSS over time is appended to)."""
    log = (root / "daemon.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "detectkd", "run", "--config", str(root / "detectkd.yaml")],
        stdout=log,
        stderr=log,
    )
    if rss_trace:
        threading.Thread(target=trace_rss, args=(proc.pid, rss_trace), daemon=True).start()
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"daemon exited: {(root / 'daemon.log').read_text()[-2000:]}")
        time.sleep(0.5)


def run_one(
    n: int,
    interval: int,
    duration: int,
    detector: str = "mad",
    history: int = HISTORY_POINTS,
    warmup: int = 0,
    scrape_every: float = 0.0,
    workers: int = 1,
    restart: bool = False,
    fresh: int = 0,
    crash: float = -1.0,
    snapshot_interval: int = 0,
    snapshots: bool = True,
    series: int = 1,
    source_qps: float = 0.0,
    warmup_concurrency: int = 0,
    stop_after: float = -1.0,
    rss_trace: str = "",
    stop_wait: float = 300.0,
) -> dict[str, float]:
    """`fresh`: seconds of 10-second rows in the source before the start, no stored state
    (0: the store is pre-loaded with `history` points per metric). `crash` >= 0: killed that
    many seconds after a background snapshot taken once every metric ran."""
    with tempfile.TemporaryDirectory(prefix=f"dtk-scale-{n}-") as tmp:
        root = Path(tmp)
        now = int(time.time())
        t0 = time.monotonic()
        end = now + (warmup or (600 if fresh else 0)) + duration + 4 * interval
        if fresh:
            every = interval if detector == "fresh-auto" else FRESH_ROW_S
            build_source(root / "src.db", n, interval, now - fresh, end, every)
        else:
            build_source(root / "src.db", n, interval, now - 2 * interval, end, series=series)
        if fresh:
            pass  # nothing stored: every metric warms up from the source
        elif workers == 1:
            asyncio.run(
                preload_store(root / "data" / "detectkd.db", n, interval, now, history, series=series)
            )
        for w in range(workers if workers > 1 and not fresh else 0):
            db = root / "data" / f"worker-{w}" / "detectkd.db"
            asyncio.run(preload_store(db, n, interval, now, history, Shard(w, workers), series))
        if detector == "fresh-auto":
            template = METRIC_PER_PERIOD
        else:
            template = METRIC if series == 1 else METRIC_SERIES.replace("{n}", str(series))
        texts = (template.format(i=i, interval=interval, detector=DETECTORS[detector]) for i in range(n))
        extra = f"snapshot_interval: {snapshot_interval}s\n" if snapshot_interval else ""
        paced = "".join(
            [
                f"  source_qps: {source_qps:g}\n" if source_qps else "",  # 0: the default
                f"  warmup_concurrency: {warmup_concurrency}\n" if warmup_concurrency else "",
            ]
        )
        paced = f"history:\n{paced}" if paced else ""
        port = write_daemon(root, texts, f"workers: {workers}\n{extra}{paced}")
        if crash >= 0:  # the snapshot's figures and the resume are read from the info log
            conf = root / "detectkd.yaml"
            off = "" if snapshots else "restart_snapshot: false\n"  # the slow path: rebuilt from the store
            conf.write_text(conf.read_text().replace("log_level: warning", "log_level: info") + off)
        setup_s = time.monotonic() - t0
        stop_s = snapshot_mib = float("nan")
        written: dict[str, float] = {}
        if crash >= 0:  # a daemon that ran (every metric once, then a background snapshot), killed
            proc = start(root, port)
            while metrics_run(scrape(port)) < n:
                time.sleep(2.0)
            all_ran = time.time()
            file = root / "data" / "memory.snapshot"
            while snapshots and not (file.exists() and file.stat().st_mtime > all_ran):
                time.sleep(1.0)
            written = last_event(root, "memory snapshot written")
            time.sleep(crash)
            proc.kill()
            proc.wait(60)
            snapshot_mib = file.stat().st_size / 2**20 if snapshots else 0.0
        if restart:  # a daemon that ran (every metric once), stopped with SIGTERM
            proc = start(root, port)
            until = time.monotonic() + 3600
            while metrics_run(scrape(port)) < n and time.monotonic() < until:
                time.sleep(2.0)
            stopping = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(600)
            stop_s = time.monotonic() - stopping
            snap = root / "data" / "memory.snapshot"
            snapshot_mib = snap.stat().st_size / 2**20 if snap.exists() else 0.0
        started = time.monotonic()
        proc = start(root, port, rss_trace)
        try:
            ready_s = time.monotonic() - started
            at_ready = scrape(port)
            # Warm-up: every metric runs once and loads its window. A restart is back on
            # schedule when every metric has run (`on_schedule_s`, from the start of the
            # process); `first_lag_p99_s` is the scheduler lag of those first runs.
            on_schedule_s = judging_s = warm_cpu = cpu_to_schedule = float("nan")
            judging_n = 0
            if fresh and stop_after >= 0:  # SIGTERM in the middle of the warm-ups (issue 28)
                time.sleep(stop_after)
                judging_n = judging(scrape(port))
                stopping = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                try:
                    code = proc.wait(300)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    code = -9
                stop_s = time.monotonic() - stopping
                return {"metrics": n, "ready_s": ready_s, "judging_at_stop": judging_n, "stop_s": stop_s,
                        "exit_code": code}  # fmt: skip
            if fresh:  # until every metric judges (at most `warmup`, default 10 minutes), then one interval
                cpu_r, ready_at = cpu_tree(proc.pid), time.monotonic()
                until = ready_at + (warmup or 600)
                while time.monotonic() < until:
                    text = scrape(port)
                    if on_schedule_s != on_schedule_s and metrics_run(text) >= n:
                        on_schedule_s = time.monotonic() - started
                    if judging(text) >= n:
                        judging_s = time.monotonic() - ready_at
                        warm_cpu = 1000 * (cpu_tree(proc.pid) - cpu_r) / max(total_checks(text), 1)
                        break
                    time.sleep(1.0)
                judging_n = judging(scrape(port))
                time.sleep(interval)
            else:
                until = time.monotonic() + (warmup or interval + 5)
                while time.monotonic() < until:
                    if on_schedule_s != on_schedule_s and metrics_run(scrape(port)) >= n:
                        on_schedule_s = time.monotonic() - started
                        cpu_to_schedule = cpu_tree(proc.pid)
                    time.sleep(1.0)
            first = scrape(port)
            ran_at_cut = metrics_run(first)  # (every metric unless it never got on schedule in `warmup`)
            first_lag = delta(
                histogram(at_ready, "detectk_scheduler_lag_seconds"),
                histogram(first, "detectk_scheduler_lag_seconds"),
            )
            cpu_a, t_a = cpu_tree(proc.pid), time.monotonic()
            scrapes: list[float] = []
            stop = threading.Event()

            def scraper() -> None:
                while not stop.wait(scrape_every):
                    began = time.monotonic()
                    scrape(port)
                    scrapes.append(time.monotonic() - began)

            worker = threading.Thread(target=scraper, daemon=True)
            if scrape_every:
                worker.start()
            time.sleep(duration)
            stop.set()
            if scrape_every:
                worker.join(60)
            second = scrape(port)
            cpu_b, t_b = cpu_tree(proc.pid), time.monotonic()
            lag = delta(
                histogram(first, "detectk_scheduler_lag_seconds"),
                histogram(second, "detectk_scheduler_lag_seconds"),
            )
            checks = total_checks(second) - total_checks(first)
            errors = len(re.findall(r'result="error"\} [1-9]', second))
            ran_at_end = metrics_run(second)
            rss = peak_rss_mib(proc.pid)
            per_worker = max((peak_rss_mib(c) for c in children(proc.pid)), default=float("nan"))
            rss_all = rss + sum(peak_rss_mib(c) for c in children(proc.pid))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(stop_wait)
            except subprocess.TimeoutExpired:  # (a build whose warm-ups held the shutdown)
                proc.kill()
                code = -9
        return {
            "metrics": n,
            "setup_s": setup_s,
            "ready_s": ready_s,
            "stop_s": stop_s,
            "snapshot_mib": snapshot_mib,
            "checks_per_s": checks / (t_b - t_a),
            "expected_per_s": n / interval,
            "cpu_ms_per_check": 1000 * (cpu_b - cpu_a) / max(checks, 1),
            "series": series,
            "cpu_us_per_series_check": 1e6 * (cpu_b - cpu_a) / max(checks * series, 1),
            "on_schedule_s": on_schedule_s,
            "first_lag_p99_s": quantile(first_lag, 0.99),
            "lag_p50_s": quantile(lag, 0.5),
            "lag_p99_s": quantile(lag, 0.99),
            "peak_rss_mib": rss,
            "worker_rss_mib": per_worker,
            "rss_all_mib": rss_all,  # the peaks of every process, summed
            "metrics_with_errors": errors,
            "ran_at_cut": ran_at_cut,
            "ran_at_end": ran_at_end,
            "judging_s": judging_s,
            "judging_at_end": judging_n if fresh else float("nan"),
            "warm_cpu_ms_per_check": warm_cpu,
            "exit_code": code,
            "scrape_p50_s": sorted(scrapes)[len(scrapes) // 2] if scrapes else float("nan"),
            "scrape_max_s": max(scrapes) if scrapes else float("nan"),
            **crash_figures(root, written, cpu_to_schedule),
        }


def last_event(root: Path, name: str) -> dict[str, float]:
    """The last JSON log line of the daemon with event `name` ({} when there is none)."""
    out: dict[str, float] = {}
    for line in (root / "daemon.log").read_text(errors="replace").splitlines():
        if f'"{name}"' in line:
            try:
                out = json.loads(line)
            except json.JSONDecodeError:
                continue
    return out


def crash_figures(root: Path, snap: dict[str, float], cpu: float) -> dict[str, float]:
    nan = float("nan")
    if snap:  # kept for reading after the temporary directory is gone
        (Path(tempfile.gettempdir()) / "dtk-scale-crash.log").write_bytes((root / "daemon.log").read_bytes())
    resumed = last_event(root, "restart snapshot resumed")
    return {
        "snap_stall_ms": snap.get("stall_ms", nan),
        "snap_stall_cpu_ms": snap.get("stall_cpu_ms", nan),
        "snap_write_s": snap.get("seconds", nan),
        "resumed": resumed.get("metrics", nan),
        "caught_up_points": resumed.get("caught_up_points", nan),
        "rebuilt": resumed.get("rebuilt", nan),
        "resumed_s": resumed.get("seconds", nan),
        "cpu_to_schedule_s": cpu,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--interval", type=int, default=60)
    ap.add_argument("--duration", type=int, default=180)
    ap.add_argument("--detector", choices=["mad", "auto"], default="mad")
    ap.add_argument("--params", default="", help="--detector auto: flow-style params ('weekly_profile: 1')")
    ap.add_argument("--history", type=int, default=HISTORY_POINTS, help="points pre-loaded per metric")
    ap.add_argument("--warmup", type=int, default=0, help="seconds before measuring (default: one interval)")
    ap.add_argument("--scrape-every", type=float, default=0.0, help="also scrape /metrics every S seconds")
    ap.add_argument("--workers", type=int, default=1, help="workers: N (worker processes, one shard each)")
    ap.add_argument(
        "--restart",
        action="store_true",
        help="measure a restart: every metric runs once, SIGTERM, start again",
    )
    ap.add_argument(
        "--fresh", action="store_true", help="a first start: no stored state, a source of 10-second rows, mad"
    )
    ap.add_argument(
        "--fresh-history",
        type=int,
        default=0,
        help="--fresh: seconds of rows before start (30 minutes; auto: 8 hours)",
    )
    ap.add_argument("--crash", action="store_true",
                    help="measure a start after kill -9 (after a background snapshot)")  # fmt: skip
    ap.add_argument("--crash-after", type=float, default=20.0, help="--crash: seconds from snapshot to kill")
    ap.add_argument(
        "--series", type=int, default=1, help="series per metric (one query, a series_columns label)"
    )
    ap.add_argument("--no-snapshot", action="store_true",
                    help="--crash without snapshots (restart_snapshot: false): the rebuild")  # fmt: skip
    ap.add_argument("--snapshot-interval", type=int, default=0, help="--crash: its seconds (0: 5m)")
    ap.add_argument("--source-qps", type=float, default=0.0, help="history.source_qps (default: the default)")
    ap.add_argument("--warmup-concurrency", type=int, default=0, help="history.warmup_concurrency")
    ap.add_argument(
        "--stop-after",
        type=float,
        default=-1.0,
        help="--fresh: SIGTERM this many seconds after /readyz (in the warm-ups); stop_s, exit_code",
    )
    ap.add_argument("--stop-wait", type=float, default=300.0,
                    help="seconds the SIGTERM after the measurement may take before SIGKILL")  # fmt: skip
    ap.add_argument("--rss-trace", default="",
                    help="append the measured start's RSS every 0.1 s to this file (time, MiB)")  # fmt: skip
    args = ap.parse_args()
    if args.params:
        if args.detector != "auto" or args.fresh:
            ap.error("--params is for --detector auto (not --fresh)")
        DETECTORS["auto"] = f"detector:\n  type: auto\n  params: {{{args.params}}}"
    if args.fresh:
        args.detector = "fresh-auto" if args.detector == "auto" else "fresh"
        args.fresh_history = args.fresh_history or (28800 if args.detector == "fresh-auto" else 1800)
    warmup = f"{args.warmup}s of" if args.warmup else "one interval of"
    named = f" {{{args.params}}}" if args.params else ""
    print(
        f"machine: {os.cpu_count()} cpu, python {sys.version.split()[0]}, interval {args.interval}s, "
        f"detector {args.detector}{named}, {args.history} points of history, workers {args.workers}, "
        f"measured {args.duration}s after {warmup} warm-up"
    )
    header: tuple[str, ...] = (
        "metrics",
        "ready_s",
        "on_schedule_s",
        "first_lag_p99_s",
        "checks_per_s",
        "expected_per_s",
        "cpu_ms_per_check",
        "lag_p50_s",
        "lag_p99_s",
        "peak_rss_mib",
        "worker_rss_mib",
        "rss_all_mib",
        "metrics_with_errors",
        "exit_code",
    )
    if args.scrape_every:
        header += ("scrape_p50_s", "scrape_max_s")
    if args.restart:
        header += ("stop_s", "snapshot_mib")
    if args.fresh:
        header += ("judging_s", "judging_at_end", "warm_cpu_ms_per_check")
    if args.series > 1:
        header += ("series", "cpu_us_per_series_check")
    if args.crash:
        header += ("ran_at_cut", "ran_at_end", "snapshot_mib", "snap_stall_ms", "snap_stall_cpu_ms",
                   "snap_write_s", "resumed", "caught_up_points", "rebuilt", "resumed_s",
                   "cpu_to_schedule_s")  # fmt: skip
    if args.fresh and args.stop_after >= 0:
        header = ("metrics", "ready_s", "judging_at_stop", "stop_s", "exit_code")
    print(" ".join(f"{h:>16}" for h in header))
    for n in args.metrics:
        r = run_one(
            n,
            args.interval,
            args.duration,
            args.detector,
            args.history,
            args.warmup,
            args.scrape_every,
            args.workers,
            args.restart,
            args.fresh_history if args.fresh else 0,
            args.crash_after if args.crash else -1.0,
            args.snapshot_interval,
            not args.no_snapshot,
            args.series,
            args.source_qps,
            args.warmup_concurrency,
            args.stop_after,
            args.rss_trace,
            args.stop_wait,
        )
        print(
            " ".join(f"{r[h]:>16.3f}" if isinstance(r[h], float) else f"{r[h]:>16}" for h in header),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`detectkd backtest --assert` as a CI job runs it: the real CLI on a real SQLite source, a
labelled incident, a config that catches it and an edited one that loses it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from detectkd.alerting.feedback import Feedback
from detectkd.storage.sqlite import SqliteStore
from tests.support.files import write
from tests.support.metrics import MAD, Source, fill, sqlite_metric

STEP = 600
DAY_MAD = MAD.replace("window_size: 100", "window_size: 1d")
MISSES = "type: threshold\nparams: {threshold: 1000}"  # the edit: the 950 incident is below it


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "detectkd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DETECTK_CONFIG": "", **env},
    )


def metric(path: Path, name: str, src: Path, detector: str = DAY_MAD) -> None:
    schedule = "{interval: 10m, batch_load_days: 1}"
    write(path, sqlite_metric(name, src, schedule=schedule, series=name, detector=detector, alerter=None))


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


async def label(db: Path, period: int, what: str) -> None:
    store = SqliteStore(db)
    await store.open()
    await store.feedback_save(
        "orders", "", period, Feedback("orders", "", period, what, period, "ops", 1.0).to_json()
    )
    await store.close()


def source(tmp_path: Path) -> tuple[Path, int, int]:
    now = int(time.time())
    end = now - now % STEP
    start = end - 3 * 86400
    spike = start + 2 * 86400 + 30 * STEP
    src = Source(tmp_path / "src.db")
    fill(src, "orders", start, end, STEP, {spike: 950.0})
    fill(src, "visits", start, end, STEP)
    return src.path, start, spike


def test_assert_passes_a_config_that_catches_the_labelled_incident_and_fails_one_that_loses_it(
    tmp_path: Path,
) -> None:
    src, start, spike = source(tmp_path)
    metric(tmp_path / "m" / "orders.yaml", "orders", src)
    env = {"DETECTK_DATA_DIR": str(tmp_path / "data"), "DETECTK_METRICS_DIR": str(tmp_path / "m")}
    asyncio.run(label(tmp_path / "data" / "detectkd.db", spike, "incident"))

    kept = cli(
        "backtest", "orders", "--from", iso(start), "--assert", "recall>=1, incidents_missed==0", env=env
    )
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "real incidents caught: 1 of 1 (as stored: 0)" in kept.stdout
    assert "held   orders: recall>=1 (measured 1: 1 of 1 labelled incidents caught)" in kept.stdout
    assert kept.stdout.rstrip().endswith("assert: every promise held")

    edited = tmp_path / "pr" / "orders.yaml"
    metric(edited, "orders", src, MISSES)
    lost = cli("backtest", str(edited), "--from", iso(start), "--assert", "recall>=0.9,alerts<=5", env=env)
    assert lost.returncode == 1, lost.stdout + lost.stderr
    assert "BROKEN orders: recall>=0.9 (measured 0: 0 of 1 labelled incidents caught)" in lost.stdout
    assert "held   orders: alerts<=5 (measured 0)" in lost.stdout
    assert "assert: 1 of 2 broken" in lost.stdout

    gone = tmp_path / "pr" / "gone.yaml"
    gone.write_text(edited.read_text().replace("FROM src", "FROM gone"))  # the source fails
    unmeasured = cli("backtest", str(gone), "--from", iso(start), "--assert", "alerts<=5", env=env)
    assert unmeasured.returncode == 2, unmeasured.stdout + unmeasured.stderr
    assert "assert: alerts<=5 not judged: the source of orders failed" in unmeasured.stdout

    bad = cli("backtest", "orders", "--from", iso(start), "--assert", "recall>=0.9,recall=>1", env=env)
    assert bad.returncode == 2 and "--assert: part 2 'recall=>1'" in bad.stderr
    assert "backtest orders" not in bad.stdout  # refused before replaying anything
    (tmp_path / "empty").mkdir()
    empty = cli("backtest", str(tmp_path / "empty"), "--from", iso(start), "--assert", "alerts<=5", env=env)
    assert empty.returncode == 2 and "no metric files in " in empty.stderr
    unknown = cli("backtest", "orders", "--from", iso(start), "--assert", "recal>=1", env=env)
    assert unknown.returncode == 2 and "unknown figure 'recal'" in unknown.stderr


def test_assert_on_committed_labels_over_a_directory_of_metrics(tmp_path: Path) -> None:
    """The labels exported from the daemon's store, committed next to metrics.d, gate a pull
    request that edits one metric of a directory; CI has no store of its own."""
    src, start, spike = source(tmp_path)
    metric(tmp_path / "m" / "orders.yaml", "orders", src)
    metric(tmp_path / "m" / "visits.yaml", "visits", src)
    live = {"DETECTK_DATA_DIR": str(tmp_path / "data"), "DETECTK_METRICS_DIR": str(tmp_path / "m")}
    assert cli("load-history", "orders", "--from", iso(start), env=live).returncode == 0
    asyncio.run(label(tmp_path / "data" / "detectkd.db", spike, "incident"))
    labels = tmp_path / "labels" / "orders.csv"
    labels.parent.mkdir()
    exported = cli("export", "orders", "--from", iso(start), "--output", str(labels), env=live)
    assert exported.returncode == 0, exported.stderr

    ci = {"DETECTK_DATA_DIR": str(tmp_path / "ci"), "DETECTK_METRICS_DIR": str(tmp_path / "m")}
    gate = (
        "--from",
        iso(start),
        "--labels",
        str(labels.parent),
        "--assert",
        "recall>=1,false_alarms_per_week<=1",
    )
    ok = cli("backtest", str(tmp_path / "m"), *gate, env=ci)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "backtest orders:" in ok.stdout and "backtest visits:" in ok.stdout
    assert "real incidents caught: 1 of 1\n" in ok.stdout  # no stored verdicts to compare with
    assert "held   overall: recall>=1 (measured 1: 1 of 1 labelled incidents caught)" in ok.stdout
    assert "feedback: no labels in this range (none for this metric in the --labels files)" in ok.stdout
    assert "visits: recall" not in ok.stdout  # nobody labelled visits: judged overall only
    assert not (tmp_path / "ci").exists()  # nothing read or made of a store
    (labels.parent / "old.csv").write_text("metric,period,label\norders_v1,1767416400,incident\n")

    metric(tmp_path / "m" / "orders.yaml", "orders", src, MISSES)  # the pull request's edit
    broken = cli("backtest", str(tmp_path / "m"), *gate, env=ci)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "BROKEN orders: recall>=1 (measured 0: 0 of 1 labelled incidents caught)" in broken.stdout
    assert "BROKEN overall: recall>=1 (measured 0: 0 of 1 labelled incidents caught)" in broken.stdout
    assert "--labels: labels of metrics not in " in broken.stderr and broken.stderr.rstrip().endswith(
        "orders_v1"
    )

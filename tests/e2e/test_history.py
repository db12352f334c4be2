"""`detectkd load-history` and `detectkd export` as a user runs them, on a real SQLite source."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
import time
from pathlib import Path

from detectkd.alerting.feedback import Feedback
from detectkd.storage.sqlite import SqliteStore
from tests.support.files import write
from tests.support.http import Receiver
from tests.support.metrics import MAD, Source, fill, sqlite_metric, webhook
from tests.support.process import cli

STEP = 600


def setup(tmp_path: Path, receiver: Receiver) -> tuple[dict[str, str], int, int]:
    now = int(time.time())
    end = now - now % STEP
    start = end - 3 * 86400
    spike = start + 2 * 86400 + 30 * STEP
    src = Source(tmp_path / "src.db")
    fill(src, "orders", start, end, STEP, {spike: 950.0})
    detector = MAD.replace("window_size: 100", "window_size: 1d")
    text = sqlite_metric(
        "orders",
        src.path,
        schedule="{interval: 10m, batch_load_days: 1}",
        series="orders",
        detector=detector,
        alerter=webhook(receiver.url),
    )
    write(tmp_path / "m" / "orders.yaml", text)
    env = {"DETECTK_DATA_DIR": str(tmp_path / "data"), "DETECTK_METRICS_DIR": str(tmp_path / "m")}
    return env, start, spike


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


def test_load_history_in_batches_resumes_and_export_writes_points_and_detections(
    tmp_path: Path, receiver: Receiver
) -> None:
    env, start, spike = setup(tmp_path, receiver)
    # An interrupted load: only the first day and a half.
    first = cli("load-history", "orders", "--from", iso(start), "--to", iso(start + 36 * 3600), env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "loaded 216 points (0 anomalous)" in first.stdout and "no notifications" in first.stdout
    # Not a terminal: one progress line per batch in the log, not a bar.
    progress = [json.loads(line) for line in first.stderr.splitlines() if "history batch loaded" in line]
    assert [p["progress"] for p in progress] == [0.667, 1.0] and progress[0]["metric"] == "orders"
    # Run again up to now: it resumes after the stored watermark and judges the spike.
    second = cli("load-history", "orders", "--from", iso(start), env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resuming after" in second.stdout
    assert "loaded 216 points (1 anomalous)" in second.stdout
    assert receiver.received == []  # history never notifies
    with sqlite3.connect(tmp_path / "data" / "detectkd.db") as conn:
        stored = conn.execute("SELECT count(*) FROM dtk_datapoints WHERE metric = 'orders'").fetchone()[0]
        states = conn.execute("SELECT count(*) FROM dtk_alert_state").fetchone()[0]
    assert stored == 432 and states == 0  # alert state belongs to the daemon

    # Feedback, as the UI stores it: the spike was a false alarm; an incident went unflagged.
    quiet = spike + 10 * STEP
    asyncio.run(
        label(
            tmp_path / "data" / "detectkd.db",
            [(spike, spike, "false_alarm"), (quiet, quiet + 2 * STEP, "incident")],
        )
    )

    out = cli("export", "orders", "--from", iso(start), "--to", iso(start + 3 * 86400), env=env)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    said = {(r["timestamp"], r["feedback"], r["feedback_by"]) for r in rows if r["feedback"]}
    assert said == {
        (iso(spike), "false_alarm", "ops"),
        *((iso(quiet + i * STEP), "incident", "ops") for i in range(3)),
    }
    assert len(rows) == 432 and set(rows[0]) >= {
        "timestamp",
        "series",
        "value",
        "detector",
        "score",
        "anomaly",
    }
    flagged = [r for r in rows if r["anomaly"] == "1"]
    assert [(r["timestamp"], r["value"], r["detector"]) for r in flagged] == [(iso(spike), "950", "mad")]
    cold = [r for r in rows if r["skipped"]]
    assert cold and cold[0]["skipped"].startswith("cold start")  # the first points had no history yet
    (tmp_path / "out.csv").unlink(missing_ok=True)
    to_file = cli("export", "orders", "--from", "4d", "--output", str(tmp_path / "out.csv"), env=env)
    assert to_file.returncode == 0 and len((tmp_path / "out.csv").read_text().splitlines()) == 433


async def label(db: Path, spans: list[tuple[int, int, str]]) -> None:
    store = SqliteStore(db)
    await store.open()
    for period, until, what in spans:
        fb = Feedback("orders", "", period, what, until, "ops", time.time())
        await store.feedback_save("orders", "", period, fb.to_json())
    await store.close()


def test_backtest_says_how_a_config_meets_the_feedback(tmp_path: Path, receiver: Receiver) -> None:
    """The labels people gave, replayed: the stored config raised the false alarm and missed
    the incident; a stricter config (the edited file, same metric) no longer raises it."""
    env, start, spike = setup(tmp_path, receiver)
    assert cli("load-history", "orders", "--from", iso(start), env=env).returncode == 0
    quiet = spike + 10 * STEP
    asyncio.run(
        label(
            tmp_path / "data" / "detectkd.db",
            [(spike, spike, "false_alarm"), (quiet, quiet + 2 * STEP, "incident")],
        )
    )
    same = cli("backtest", "orders", "--from", iso(start), env=env)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "feedback: 2 labels (1 real incidents, 1 false alarms)" in same.stdout
    assert "real incidents caught: 0 of 1 (as stored: 0); missed: " in same.stdout
    assert "false alarms raised:   1 of 1 (as stored: 1); still raised: " in same.stdout
    strict = tmp_path / "strict.yaml"
    mad = "type: mad\n  params: {window_size: 1d, n_sigma: 5, use_weighted: false, min_samples: 20}"
    text = (tmp_path / "m" / "orders.yaml").read_text()
    assert mad in text
    strict.write_text(text.replace(mad, "type: threshold\n  params: {threshold: 1000}"))
    changed = cli("backtest", str(strict), "--from", iso(start), env=env)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "false alarms raised:   0 of 1 (as stored: 1)" in changed.stdout
    off = cli("backtest", str(strict), "--from", iso(start), "--no-feedback", env=env)
    assert "feedback:" not in off.stdout


def test_load_history_needs_a_start(tmp_path: Path, receiver: Receiver) -> None:
    env, _, _ = setup(tmp_path, receiver)
    out = cli("load-history", "orders", env=env)
    assert out.returncode == 2 and "give --from" in out.stdout
    bad = cli("load-history", "orders", "--from", "2d", "--to", "3d", env=env)
    assert bad.returncode == 2 and "--to must be after --from" in bad.stderr

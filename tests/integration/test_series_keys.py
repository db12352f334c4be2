"""Series keys (issue 26, low): a label value with `,` or `=` can neither add a label to an
alert nor share a key with another series; ordinary keys are what they always were."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from detectkd.alerting.alert import Alert
from detectkd.alerting.channels import alertmanager, webhook
from detectkd.collectors.points import parse_series_key, series_key
from detectkd.resources import Resources
from detectkd.specs.loader import load_metrics
from detectkd.storage.sqlite import SqliteStore
from tests.support.files import write
from tests.support.metrics import sqlite_metric
from tests.support.runtimes import runtime

STEP = 600
T0 = 1_795_000_000 - 1_795_000_000 % STEP
THRESHOLD = "type: threshold\nparams: {operator: greater_than, threshold: 10}"
HOSTILE = "DE,severity=critical,alertname=Watchdog"


def old_series_key(labels: dict[str, object]) -> str:
    """The key before escaping: what every stored state and window is filed under."""
    return ",".join(f"{k}={v}" for k, v in labels.items())


def test_keys_of_ordinary_values_are_unchanged() -> None:
    ordinary: list[dict[str, object]] = [
        {},
        {"country": "DE"},
        {"country": "DE", "device": "ios"},
        {"host": "db-1.eu-west.internal:5432", "path": "/api/v1/x?a=b&c=d"},  # `=` in a value stays
        {"city": "São Paulo", "zone": "UTC+3", "n": 7, "ok": True, "none": None},
        {"token": "YWJj=="},
    ]
    for labels in ordinary:
        assert series_key(labels) == old_series_key(labels), labels
        assert parse_series_key(series_key(labels)) == {k: str(v) for k, v in labels.items()}


def test_distinct_label_sets_have_distinct_keys_and_parse_back() -> None:
    sets = [
        {"country": HOSTILE},
        {"country": "DE", "severity": "critical", "alertname": "Watchdog"},
        {"a": "x\\", "b": "y"},
        {"a": "x\\,b=y"},
        {"a=b": "c"},
        {"a": "b=c"},
        {"a": ""},
        {"a": ",", "b": "\\"},
    ]
    keys = [series_key(s) for s in sets]
    assert len(set(keys)) == len(keys), keys
    for labels, key in zip(sets, keys, strict=True):
        assert parse_series_key(key) == labels, key


async def test_a_label_value_cannot_add_labels_to_an_alert(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE src (period_time TEXT, country TEXT, value REAL)")
        conn.executemany(
            "INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?, ?)",
            [(T0, HOSTILE, 50.0), (T0, "DE", 50.0)],
        )
    write(
        tmp_path / "m" / "orders.yaml",
        sqlite_metric(
            "orders",
            db,
            schedule="{interval: 10m}",
            columns="period_time, country, value",
            collector="series_columns: [country]",
            detector=THRESHOLD,
        ),
    )
    result = load_metrics([tmp_path / "m"], None, env={})
    assert result.ok, result.all_errors()
    store = SqliteStore(tmp_path / "dtk.db")
    await store.open()
    resources = Resources()
    try:
        rt = runtime(result.metrics["orders"], store, resources, None, {})
        await rt.run(T0 + STEP)
        alerts = sorted(
            (Alert.from_json(i.payload) for i in await store.outbox_pending()), key=lambda a: a.series
        )
        # Two series, two alerts (the old key made them one series: "country=DE,severity=...").
        assert [a.labels for a in alerts] == [{"country": "DE"}, {"country": HOSTILE}]
        hostile = alerts[1]
        assert webhook.payload(hostile, "m")["labels"] == {"country": HOSTILE}
        (posted,) = alertmanager.payload(hostile, alertmanager.Params(url="http://am.example"))
        assert posted["labels"]["country"] == HOSTILE
        assert posted["labels"]["severity"] == "warning" and posted["labels"]["alertname"] == "orders"
    finally:
        await resources.close()
        await store.close()

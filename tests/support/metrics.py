"""Metric files for the tests: one builder for the usual SQLite-sourced metric, and the
SQLite table of (period_time, series, value) those metrics read."""

from __future__ import annotations

import sqlite3
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

from tests.support.files import write

# The detector and alerter bodies the builder takes: YAML mappings, indented under their key.
MAD = "type: mad\nparams: {window_size: 100, n_sigma: 5, use_weighted: false, min_samples: 20}"
LOG = "type: log"
PERIOD = "period_time >= '{{ period_start }}' AND period_time < '{{ period_finish }}'"


def hourly_orders(tmp_path: Path, window: str, query: str, extra: str = "") -> None:
    """metrics.d/orders.yaml: hourly, `query` on tmp_path/src.db (`extra`: more collector keys
    after its type, e.g. a `multi_period` line), a `mad` detector over `window`, logged."""
    write(
        tmp_path / "metrics.d" / "orders.yaml",
        f"""\
name: orders
schedule: {{interval: 1h}}
collector:
  type: sqlite{extra}
  params:
    database: {tmp_path / "src.db"}
    query: |
      {query}
detector:
  type: mad
  params: {{window_size: {window}, n_sigma: 5, min_samples: 10}}
alerter:
  type: log
""",
    )


def webhook(url: str, conditions: str = "") -> str:
    """A webhook alerter body; `conditions` is a YAML flow mapping."""
    return f'type: webhook\nparams: {{url: "{url}"}}' + (f"\nconditions: {conditions}" if conditions else "")


def sqlite_metric(
    name: str,
    db: Path | str,
    *,
    schedule: str = "{interval: 1h}",
    series: str | None = None,
    where: str = "",
    columns: str = "period_time, value",
    table: str = "src",
    collector: str = "",
    detector: str | None = MAD,
    alerter: str | None = LOG,
) -> str:
    """A metric file reading `columns` of `table` in `db` over each period; `series` keeps the
    rows of that series only, `where` adds a condition. `collector` adds keys to the collector
    (`multi_period: true`, `series_columns: [country]`); `detector`/`alerter` None leave the key out."""
    conditions = [*([f"series = '{series}'"] if series else []), *([where] if where else []), PERIOD]
    text = (
        f"name: {name}\nschedule: {schedule}\ncollector:\n  type: sqlite\n"
        + textwrap.indent(collector.strip() + "\n", "  ") * bool(collector)
        + f"  params:\n    database: {db}\n    query: |\n"
        + f"      SELECT {columns} FROM {table}\n      WHERE {' AND '.join(conditions)}\n"
    )
    for key, body in (("detector", detector), ("alerter", alerter)):
        if body is not None:
            text += f"{key}:\n" + textwrap.indent(body.strip(), "  ") + "\n"
    return text


def metric_yaml(name: str, db: Path, webhook_url: str, interval: int = 2) -> str:
    """The e2e tests' usual metric: series `name` of a Source, every `interval` seconds from
    60 periods back, MAD, alerts to `webhook_url`."""
    return sqlite_metric(
        name,
        db,
        schedule=f"{{interval: {interval}s, delay: 0s, start_time: {interval * 60}s}}",
        series=name,
        alerter=webhook(webhook_url),
    )


class Source:
    """A SQLite table of (period_time, series, value) the metrics read from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE IF NOT EXISTS src (period_time TEXT, series TEXT, value REAL)")
        conn.commit()
        conn.close()

    def put(self, rows: Sequence[tuple[int, str, float | None]]) -> None:
        conn = sqlite3.connect(self.path)
        conn.executemany("INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?, ?)", rows)
        conn.commit()
        conn.close()

    def set(self, name: str, times: Iterable[int], value: float) -> None:
        """Change the value of series `name` at `times` (rows put before, e.g. by fill())."""
        conn = sqlite3.connect(self.path, timeout=10)
        conn.executemany(
            "UPDATE src SET value = ? WHERE series = ? AND period_time = datetime(?, 'unixepoch')",
            [(value, name, t) for t in times],
        )
        conn.commit()
        conn.close()


def fill(
    source: Source, name: str, start: int, end: int, step: int, spikes: dict[int, float] | None = None
) -> None:
    """Rows of series `name` every `step` seconds in [start, end): 100..104, or `spikes[t]`."""
    spikes = spikes or {}
    rows = []
    for t in range(start - start % step, end, step):
        rows.append((t, name, spikes.get(t, 100.0 + (t // step) % 5)))
    source.put(rows)


def constant_metric(name: str, db: Path) -> str:
    """An hourly metric whose value is always 1 (below its threshold): it runs, never alerts."""
    return f"""\
name: {name}
schedule: {{interval: 1h}}
collector:
  type: sqlite
  params: {{database: {db}, query: "SELECT 1 AS value"}}
detector:
  type: threshold
  params: {{operator: greater_than, threshold: 5}}
alerter:
  type: log
"""


# Over its threshold on even periods: every second a FIRING or a RESOLVED (the outbox's
# crash test and benchmarks/crash_duplicates.py).
TOGGLING = """\
name: {name}
schedule: {{interval: 1s, delay: 0s}}
collector:
  type: sqlite
  params:
    database: {db}
    query: "SELECT CASE WHEN {{{{ period_start_ts }}}} % 2 = 0 THEN 100 ELSE 0 END AS value"
detector:
  type: threshold
  params: {{threshold: 50}}
alerter:
  type: webhook
  params: {{url: "{url}"}}
  conditions: {{flap_changes: 0}}
"""


def shadow_metric(db: Path, url: str, *, tight: float = 20, a: str = "a", same: bool = True) -> str:
    """Every second, series `a` at 30 and b at 100; the metric alerts to `url` over 50 (b), its
    `shadow:` variant `tight` over `tight` (a and b), and the variant `same` (unless False)
    only after 1000 anomalous periods in a row."""
    same_variant = "  - name: same\n    conditions: {consecutive_anomalies: 1000}\n" if same else ""
    return f"""\
name: m
schedule: {{interval: 1s, delay: 0s}}
collector:
  type: sqlite
  series_columns: [series]
  params:
    database: {db}
    query: "SELECT '{a}' AS series, 30 AS value UNION ALL SELECT 'b' AS series, 100 AS value"
detector: {{type: threshold, params: {{threshold: 50}}}}
alerter:
  type: webhook
  params: {{url: "{url}"}}
shadow:
  - name: tight
    detector: {{type: threshold, id: tight, params: {{threshold: {tight}}}}}
{same_variant}"""

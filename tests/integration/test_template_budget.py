"""A template over its render budget in the daemon (issue 26, item 7): a reload with such a file
finishes and keeps the previous version running; a template that explodes only with the
values of a real run makes that run fail, with the budget in the metric's error."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from detectkd.config.settings import Settings, StorageSettings
from detectkd.runtime.daemon import Daemon
from tests.support.files import write

HOUR = 3600
T0 = 1_795_000_000 - 1_795_000_000 % HOUR  # after the sample window validation renders (2026-01-01)
LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
METRIC = """\
name: orders
schedule: {{interval: 1h}}
collector:
  type: sqlite
  params:
    database: {db}
    query: |
      SELECT period_time, value FROM src {extra}
      WHERE period_time >= '{{{{ period_start }}}}' AND period_time < '{{{{ period_finish }}}}'
"""


def _daemon(tmp: Path) -> Daemon:
    return Daemon(
        Settings(
            metrics_dir=tmp / "metrics.d",
            profiles_file=None,
            data_dir=tmp / "data",
            storage=StorageSettings(path=tmp / "data" / "dtk.db"),
            listen="127.0.0.1:0",
        )
    )


def _source(tmp: Path) -> Path:
    db = tmp / "src.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
    conn.commit()
    conn.close()
    return db


async def test_a_reload_with_a_hostile_template_finishes_and_keeps_the_previous_version(
    tmp_path: Path,
) -> None:
    db = _source(tmp_path)
    path = tmp_path / "metrics.d" / "orders.yaml"
    write(path, METRIC.format(db=db, extra=""))
    d = _daemon(tmp_path)
    await d.start()
    try:
        d.scheduler.pause()
        before = d.slots["orders"].runtime.spec
        write(path, METRIC.format(db=db, extra=LOOPS))
        started = time.monotonic()
        result = await asyncio.wait_for(d.reload("test"), 30)
        assert time.monotonic() - started < 10
        assert not result["successful"]
        assert any("template render budget exceeded" in e for e in result["errors"]), result
        assert d.slots["orders"].runtime.spec is before  # the previous version keeps running
    finally:
        d.scheduler.shutdown(wait=False)
        await d.close()


async def test_a_template_over_budget_at_run_time_fails_the_run_with_the_reason(tmp_path: Path) -> None:
    db = _source(tmp_path)
    # Validation renders the sample window (2025-12-31); a live run of 2026-11 explodes.
    hostile = "{% if period_start_ts > 1767225600 %}" + LOOPS + "{% endif %}"
    write(tmp_path / "metrics.d" / "orders.yaml", METRIC.format(db=db, extra=hostile))
    d = _daemon(tmp_path)
    await d.start()
    try:
        d.scheduler.pause()
        assert d.config_errors == []
        started = time.monotonic()
        await asyncio.wait_for(d.run_metric("orders", at=T0 + 60), 30)
        assert time.monotonic() - started < 10
        status = d.slots["orders"].runtime.status
        assert status.failures == 1 and status.state == "error"
        assert "template render budget exceeded: 100,001 loop iterations" in (status.last_error or "")
    finally:
        d.scheduler.shutdown(wait=False)
        await d.close()

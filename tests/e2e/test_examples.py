"""The shipped example metrics: all validate, and the SQLite, CSV, PostgreSQL and MariaDB ones
run against real sources with `detectkd check`."""

from __future__ import annotations

import shutil
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomysql
import asyncpg
import pytest

from tests.support.files import REPO
from tests.support.process import cli

EXAMPLES = REPO / "etc" / "detectk" / "examples"


def test_every_example_validates_and_covers_every_collector_and_channel() -> None:
    out = cli("validate", str(EXAMPLES), "--profiles", str(EXAMPLES / "profiles.yaml"))
    assert out.returncode == 0, out.stdout
    assert "8 metric(s) valid, 0 file(s) with errors, 0 warning(s)" in out.stdout
    from detectkd.alerting.channels.registry import CHANNELS
    from detectkd.collectors.registry import COLLECTORS
    from detectkd.specs.loader import load_metrics

    specs = load_metrics([EXAMPLES], EXAMPLES / "profiles.yaml", env={}).metrics.values()
    assert {s.collector.type for s in specs} == set(COLLECTORS)
    assert {a.type for s in specs for a in s.alerters} == set(CHANNELS)


def setup(tmp_path: Path, names: list[str]) -> Path:
    metrics = tmp_path / "metrics.d"
    metrics.mkdir()
    for name in names:
        shutil.copy(EXAMPLES / name, metrics / name)
    shutil.copy(EXAMPLES / "profiles.yaml", tmp_path / "profiles.yaml")
    return metrics


def check(tmp_path: Path, metric: str, at: int, env: dict[str, str]) -> str:
    at_text = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(at))
    env = {
        "DETECTK_DATA_DIR": str(tmp_path / "data"),
        "DETECTK_METRICS_DIR": str(tmp_path / "metrics.d"),
        "DETECTK_PROFILES_FILE": str(tmp_path / "profiles.yaml"),
        **env,
    }
    out = cli("check", metric, "--at", at_text, "--no-alert", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_sqlite_and_csv_examples_run(tmp_path: Path) -> None:
    setup(tmp_path, ["sqlite_orders.yaml", "csv_exported_series.yaml"])
    hour = 3600
    at = 1_767_225_600 + 5 * hour  # 2026-01-01 05:00 UTC
    shop = tmp_path / "shop.db"
    with sqlite3.connect(shop) as conn:
        conn.execute("CREATE TABLE orders (created_at TEXT)")
        # Period strings are local (Europe/Berlin, UTC+1 in January): 06:00-06:10 local.
        conn.executemany("INSERT INTO orders VALUES (?)", [(f"2026-01-01 06:0{i}:00",) for i in range(7)])
    text = check(tmp_path, "example_sqlite_orders", at, {"SHOP_DB": str(shop)})
    assert "collected 1 point(s)" in text and "value=7" in text
    csv = tmp_path / "revenue.csv"
    csv.write_text("timestamp,value\n" + "".join(f"{at - k * hour},{100 + k}\n" for k in range(48)))
    text = check(tmp_path, "example_csv_daily_revenue", at, {"REVENUE_CSV": str(csv)})
    assert "collected 1 point(s)" in text and "value=100" in text and "forecast" in text


@pytest.fixture
async def databases() -> AsyncIterator[str]:
    name = f"dtk_examples_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    my = await aiomysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    async with my.cursor() as cur:
        await cur.execute(f"CREATE DATABASE {name}")
    yield name
    await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    await admin.close()
    async with my.cursor() as cur:
        await cur.execute(f"DROP DATABASE {name}")
    my.close()


async def test_postgres_and_mariadb_examples_run_against_the_real_servers(
    tmp_path: Path, databases: str
) -> None:
    setup(tmp_path, ["postgres_sessions.yaml", "mysql_signups.yaml", "sql_connection_string.yaml"])
    at = 1_767_225_600 + 10 * 3600  # 2026-01-01 10:00 UTC
    pg = await asyncpg.connect(host="127.0.0.1", user="postgres", database=databases)
    await pg.execute("CREATE TABLE sessions (started_at timestamptz)")
    await pg.execute("CREATE TABLE payments (status text, created_at timestamp)")
    await pg.executemany(
        "INSERT INTO sessions VALUES (to_timestamp($1))", [(float(at + s),) for s in range(0, 300, 20)]
    )
    await pg.executemany("INSERT INTO payments VALUES ('failed', to_timestamp($1))", [(float(at + 60),)] * 30)
    await pg.close()
    my = await aiomysql.connect(host="127.0.0.1", user="root", password="", db=databases, autocommit=True)
    async with my.cursor() as cur:
        await cur.execute("CREATE TABLE signups (created_at DATETIME)")
        await cur.executemany(
            "INSERT INTO signups VALUES (FROM_UNIXTIME(%s))", [(at + 60 * i,) for i in range(12)]
        )
    my.close()
    env = {"PG_DATABASE": databases, "MYSQL_DATABASE": databases}
    text = check(tmp_path, "example_postgres_sessions", at, env)
    assert "collected 1 point(s)" in text and "value=15" in text
    text = check(tmp_path, "example_mysql_signups", at, env)
    assert "value=12" in text
    text = check(tmp_path, "example_sql_failed_payments", at, env)
    assert "value=30" in text and "ANOMALY up" in text  # over the threshold of 25

"""The ClickHouse store's tables and how older stores are brought up to date."""

from __future__ import annotations

from datetime import UTC, datetime

from detectkd.alerting.state import STATE_COLUMNS
from detectkd.storage import clickhouse_docs as docs
from detectkd.storage import clickhouse_shadow as shadow
from detectkd.storage.clickhouse_docs import Do

INSERT_STATE = (
    f"INSERT INTO dtk_alert_state (metric, series, deleted, updated_at, version, {STATE_COLUMNS}) VALUES"
)


def ch_time(ts: float) -> datetime:
    """A DateTime value: whole seconds (18.16 rejects a fractional part in inserts)."""
    return datetime.fromtimestamp(int(ts), UTC).replace(tzinfo=None)


TABLES = [
    """CREATE TABLE IF NOT EXISTS dtk_datapoints (
        metric String, series String, period DateTime('UTC'), value Nullable(Float64),
        context String, collected_at DateTime('UTC'), version UInt64
    ) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(period) ORDER BY (metric, series, period)""",
    """CREATE TABLE IF NOT EXISTS dtk_detections (
        metric String, series String, period DateTime('UTC'), detector String,
        value Nullable(Float64), expected Nullable(Float64), lower Nullable(Float64), upper Nullable(Float64),
        score Float64, anomaly UInt8, direction String, skipped String,
        detected_at DateTime('UTC'), version UInt64
    ) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(period)
      ORDER BY (metric, series, period, detector)""",
    """CREATE TABLE IF NOT EXISTS dtk_alert_state (
        metric String, series String, status String, streak UInt32, since Nullable(Int64),
        notified_since Nullable(Int64), last_fired_at Nullable(Int64), last_period Nullable(Int64),
        deleted UInt8, updated_at DateTime('UTC'), version UInt64,
        clear_streak UInt32, last_sent_at Nullable(Int64), repeats UInt32, extra String
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (metric, series)""",
    """CREATE TABLE IF NOT EXISTS dtk_outbox (
        id UInt64, key String, metric String, series String, channel String, payload String,
        created_at Float64, attempts UInt32, next_attempt_at Float64, last_error String,
        status String, leased_until Float64, version UInt64, leased_by String
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (key, channel)""",
    """CREATE TABLE IF NOT EXISTS dtk_watermarks (
        metric String, period Int64, updated_at DateTime('UTC')
    ) ENGINE = ReplacingMergeTree(period) ORDER BY metric""",
    *docs.TABLES,
    *shadow.TABLES,
]

OUTBOX_COLS = (
    "id, key, metric, series, channel, payload, attempts, created_at, next_attempt_at, last_error, status, "
    "leased_until"
)


# dtk_outbox's columns in CREATE order (positional inserts).
ALL_OUTBOX_COLS = (
    "id",
    "key",
    "metric",
    "series",
    "channel",
    "payload",
    "created_at",
    "attempts",
    "next_attempt_at",
    "last_error",
    "status",
    "leased_until",
    "version",
    "leased_by",
)
LEGACY_OUTBOX = "dtk_outbox_legacy_channels"

# Columns that releases added to existing tables, oldest first.
ADDED_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "dtk_alert_state": [
        ("clear_streak", "UInt32 DEFAULT 0"),
        ("last_sent_at", "Nullable(Int64)"),
        ("repeats", "UInt32 DEFAULT 0"),
        ("extra", "String DEFAULT '{}'"),
    ],
    "dtk_outbox": [("leased_by", "String DEFAULT ''")],
}


async def migrate(do: Do, database: str) -> None:
    """Create what is missing; convert what an older release created."""
    await _retype_outbox_channel(do, database)
    for ddl in TABLES:
        await do(lambda c, ddl=ddl: c.execute(ddl))
    await _add_missing_columns(do, database)
    await _copy_legacy_outbox(do, database)


async def _column_type(do: Do, database: str, table: str, column: str) -> str | None:
    rows = await do(
        lambda c: c.fetch(
            "SELECT type FROM system.columns WHERE database = {d} AND table = {t} AND name = {n}",
            params={"d": database, "t": table, "n": column},
        )
    )
    return str(rows[0]["type"]) if rows else None


async def _retype_outbox_channel(do: Do, database: str) -> None:
    """Stores created before stable channel ids have `channel UInt32` (the alerter's index)
    in the outbox's sorting key, which ALTER cannot retype: the table is renamed, created
    anew and copied (`_copy_legacy_outbox`); an interrupted copy is redone on next open."""
    if await _column_type(do, database, "dtk_outbox", "channel") == "UInt32":
        await do(lambda c: c.execute(f"RENAME TABLE dtk_outbox TO {LEGACY_OUTBOX}"))


async def _copy_legacy_outbox(do: Do, database: str) -> None:
    if await _column_type(do, database, LEGACY_OUTBOX, "channel") is None:
        return
    cols = OUTBOX_COLS + ", version"
    copied = cols.replace("channel", "toString(channel)")
    sql = f"INSERT INTO dtk_outbox ({cols}) SELECT {copied} FROM {LEGACY_OUTBOX}"
    await do(lambda c: c.execute(sql))
    await do(lambda c: c.execute(f"DROP TABLE {LEGACY_OUTBOX}"))


async def _add_missing_columns(do: Do, database: str) -> None:
    """Columns added by later releases (18.16 has no ADD COLUMN IF NOT EXISTS). Appended in
    CREATE order, so positional inserts line up."""
    for table, columns in ADDED_COLUMNS.items():
        rows = await do(
            lambda c, t=table: c.fetch(
                "SELECT name FROM system.columns WHERE database = {d} AND table = {t}",
                params={"d": database, "t": t},
            )
        )
        have = {r["name"] for r in rows}
        for name, ddl in columns:
            if name not in have:
                sql = f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"
                await do(lambda c, q=sql: c.execute(q))

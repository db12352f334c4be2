"""The SQLite store's tables, and the migrations that bring an older file up to date."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS dtk_datapoints (
    metric TEXT NOT NULL, series TEXT NOT NULL, period INTEGER NOT NULL,
    value REAL, context TEXT, collected_at REAL NOT NULL,
    PRIMARY KEY (metric, series, period)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dtk_detections (
    metric TEXT NOT NULL, series TEXT NOT NULL, period INTEGER NOT NULL, detector TEXT NOT NULL,
    value REAL, expected REAL, lower REAL, upper REAL, score REAL, anomaly INTEGER NOT NULL,
    direction TEXT, skipped TEXT, detected_at REAL NOT NULL,
    PRIMARY KEY (metric, series, period, detector)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dtk_alert_state (
    metric TEXT NOT NULL, series TEXT NOT NULL, status TEXT NOT NULL, streak INTEGER NOT NULL,
    since INTEGER, notified_since INTEGER, last_fired_at INTEGER, last_period INTEGER,
    updated_at REAL NOT NULL, clear_streak INTEGER NOT NULL DEFAULT 0, last_sent_at INTEGER,
    repeats INTEGER NOT NULL DEFAULT 0, extra TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (metric, series)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dtk_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL, metric TEXT NOT NULL, series TEXT NOT NULL, channel TEXT NOT NULL,
    payload TEXT NOT NULL, created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL, last_error TEXT, status TEXT NOT NULL DEFAULT 'pending',
    leased_until REAL, leased_by TEXT,
    UNIQUE (key, channel)
);
CREATE INDEX IF NOT EXISTS dtk_outbox_due ON dtk_outbox (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS dtk_outbox_metric ON dtk_outbox (metric, created_at);
CREATE TABLE IF NOT EXISTS dtk_silences (
    id TEXT PRIMARY KEY, data TEXT NOT NULL, ends_at REAL, updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dtk_watermarks (
    metric TEXT PRIMARY KEY, period INTEGER NOT NULL, updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dtk_history (
    metric TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dtk_feedback (
    metric TEXT NOT NULL, series TEXT NOT NULL, period INTEGER NOT NULL, data TEXT NOT NULL,
    updated_at REAL NOT NULL, PRIMARY KEY (metric, series, period)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dtk_shadow_state (
    metric TEXT NOT NULL, variant TEXT NOT NULL, data TEXT NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (metric, variant)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dtk_shadow_alerts (
    metric TEXT NOT NULL, variant TEXT NOT NULL, key TEXT NOT NULL, series TEXT NOT NULL,
    period INTEGER NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (metric, variant, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dtk_shadow_alerts_period ON dtk_shadow_alerts (metric, period);
"""


MIGRATIONS = [
    ("dtk_outbox", "leased_until", "REAL"),
    ("dtk_alert_state", "clear_streak", "INTEGER NOT NULL DEFAULT 0"),
    ("dtk_alert_state", "last_sent_at", "INTEGER"),
    ("dtk_alert_state", "repeats", "INTEGER NOT NULL DEFAULT 0"),
    ("dtk_alert_state", "extra", "TEXT NOT NULL DEFAULT '{}'"),
    ("dtk_outbox", "leased_by", "TEXT"),
]

"""The PostgreSQL store's tables (with the migrations of older stores, run at every open) and
the statements a run's commit and the outbox use."""

from __future__ import annotations

from detectkd.alerting.state import STATE_COLUMNS

SCHEMA = """
CREATE TABLE IF NOT EXISTS dtk_datapoints (
    metric text NOT NULL, series text NOT NULL, period timestamptz NOT NULL,
    value double precision, context jsonb, collected_at timestamptz NOT NULL,
    PRIMARY KEY (metric, series, period)
);
CREATE TABLE IF NOT EXISTS dtk_detections (
    metric text NOT NULL, series text NOT NULL, period timestamptz NOT NULL, detector text NOT NULL,
    value double precision, expected double precision, lower double precision, upper double precision,
    score double precision, anomaly boolean NOT NULL, direction text, skipped text,
    detected_at timestamptz NOT NULL,
    PRIMARY KEY (metric, series, period, detector)
);
CREATE TABLE IF NOT EXISTS dtk_alert_state (
    metric text NOT NULL, series text NOT NULL, status text NOT NULL, streak integer NOT NULL,
    since bigint, notified_since bigint, last_fired_at bigint, last_period bigint,
    updated_at timestamptz NOT NULL, clear_streak integer NOT NULL DEFAULT 0, last_sent_at bigint,
    repeats integer NOT NULL DEFAULT 0, extra text NOT NULL DEFAULT '{}',
    PRIMARY KEY (metric, series)
);
ALTER TABLE dtk_alert_state ADD COLUMN IF NOT EXISTS extra text NOT NULL DEFAULT '{}';
CREATE TABLE IF NOT EXISTS dtk_outbox (
    id bigserial PRIMARY KEY,
    key text NOT NULL, metric text NOT NULL, series text NOT NULL, channel text NOT NULL,
    payload text NOT NULL, created_at double precision NOT NULL, attempts integer NOT NULL DEFAULT 0,
    next_attempt_at double precision NOT NULL, last_error text, status text NOT NULL DEFAULT 'pending',
    leased_until double precision,
    UNIQUE (key, channel)
);
-- Outbox rows name their channel by the alerter's stable id (text); stores created before
-- that have an integer column with the alerter's index, kept as its text.
DO $$ BEGIN
    IF (SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema()
        AND table_name = 'dtk_outbox' AND column_name = 'channel') = 'integer' THEN
        ALTER TABLE dtk_outbox ALTER COLUMN channel TYPE text USING channel::text;
    END IF;
END $$;
ALTER TABLE dtk_outbox ADD COLUMN IF NOT EXISTS leased_by text;
CREATE INDEX IF NOT EXISTS dtk_outbox_pending ON dtk_outbox (metric, series, channel, id)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS dtk_outbox_metric ON dtk_outbox (metric, created_at);
CREATE TABLE IF NOT EXISTS dtk_watermarks (
    metric text PRIMARY KEY, period bigint NOT NULL, updated_at timestamptz NOT NULL
);
"""

UPSERT_POINTS = """
INSERT INTO dtk_datapoints VALUES ($1, $2, to_timestamp($3), $4, $5::jsonb, to_timestamp($6))
ON CONFLICT (metric, series, period) DO UPDATE
SET value = excluded.value, context = excluded.context, collected_at = excluded.collected_at
"""
UPSERT_DETECTIONS = """
INSERT INTO dtk_detections
VALUES ($1, $2, to_timestamp($3), $4, $5, $6, $7, $8, $9, $10, $11, $12, to_timestamp($13))
ON CONFLICT (metric, series, period, detector) DO UPDATE
SET value = excluded.value, expected = excluded.expected, lower = excluded.lower, upper = excluded.upper,
    score = excluded.score, anomaly = excluded.anomaly, direction = excluded.direction,
    skipped = excluded.skipped, detected_at = excluded.detected_at
"""
UPSERT_STATE = f"""
INSERT INTO dtk_alert_state (metric, series, updated_at, {STATE_COLUMNS})
VALUES ($1, $2, to_timestamp($3), $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (metric, series) DO UPDATE
SET status = excluded.status, streak = excluded.streak, since = excluded.since,
    notified_since = excluded.notified_since, last_fired_at = excluded.last_fired_at,
    last_period = excluded.last_period, updated_at = excluded.updated_at,
    clear_streak = excluded.clear_streak, last_sent_at = excluded.last_sent_at, repeats = excluded.repeats,
    extra = excluded.extra
"""
INSERT_OUTBOX = """
INSERT INTO dtk_outbox (key, metric, series, channel, payload, created_at, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (key, channel) DO NOTHING
"""
UPSERT_WATERMARK = """
INSERT INTO dtk_watermarks VALUES ($1, $2, to_timestamp($3)) ON CONFLICT (metric) DO UPDATE
SET period = greatest(dtk_watermarks.period, excluded.period), updated_at = excluded.updated_at
"""
OUTBOX_STATS = """
SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status = 'dead') AS dead,
       min(created_at) FILTER (WHERE status = 'pending') AS oldest,
       min(greatest(next_attempt_at, coalesce(leased_until, 0))) FILTER (WHERE status = 'pending') AS due
FROM dtk_outbox
"""

OUTBOX_COLS = (
    "id, key, metric, series, channel, payload, attempts, created_at, next_attempt_at, last_error, status"
)

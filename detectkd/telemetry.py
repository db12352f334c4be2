"""Prometheus metrics about detectkd itself (DESIGN.md §4).

Labels never carry values or unbounded sets: `metric` is bounded by the
config, `result`, `stage` and `channel` by the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from detectkd import __version__
from detectkd.exposition import Family, Sample, SeriesGauges
from detectkd.shard import ALL, Shard

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


M = ("metric",)


class RecentMax:
    """The largest value observed in this minute or the last one (the overview's "lag")."""

    def __init__(self) -> None:
        self.minute, self.current, self.previous = 0, 0.0, 0.0

    def observe(self, value: float, now: float) -> None:
        minute = int(now // 60)
        if minute != self.minute:
            self.previous = self.current if minute == self.minute + 1 else 0.0
            self.minute, self.current = minute, 0.0
        self.current = max(self.current, value)

    def value(self, now: float) -> float:
        minute = int(now // 60)
        if minute == self.minute:
            return max(self.current, self.previous)
        return self.current if minute == self.minute + 1 else 0.0


class Telemetry:
    def __init__(self, shard: Shard = ALL, export_cap: int = 10_000) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)  # daemon-wide families
        self.families: list[Family] = []  # labelled by metric
        self.check_duration = Histogram(
            "detectk_check_duration_seconds",
            "Time spent per run stage.",
            ["stage"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        # The three stages' children, looked up once (each run observes all three)
        self.stage_duration = {k: self.check_duration.labels(k) for k in ("collect", "detect", "store")}
        self.lag = Histogram(
            "detectk_scheduler_lag_seconds",
            "How late runs started after their scheduled time.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.recent_lag = RecentMax()
        self.alerts_sent = Counter(
            "detectk_alerts_sent",
            "Notifications accepted by a channel.",
            ["channel", "status"],
            registry=r,
        )
        self.alerts_failed = Counter(
            "detectk_alerts_failed", "Failed notification attempts.", ["channel"], registry=r
        )
        # Per Alertmanager URL (host:port), like vmalert's notifier metrics.
        t = ["target"]
        self.am_sent = Counter("detectk_alertmanager_sent", "Alerts Alertmanager accepted.", t, registry=r)
        self.am_errors = Counter(
            "detectk_alertmanager_errors", "Posts Alertmanager did not accept.", t, registry=r
        )
        self.am_latency = Histogram(
            "detectk_alertmanager_latency_seconds",
            "Time per post to Alertmanager.",
            t,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.outbox_pending = Gauge("detectk_outbox_pending", "Alerts waiting in the outbox.", registry=r)
        self.outbox_dead = Gauge("detectk_outbox_dead", "Alerts that gave up (dead letters).", registry=r)
        self.outbox_oldest = Gauge(
            "detectk_outbox_oldest_age_seconds", "Age of the oldest pending alert.", registry=r
        )
        self.reload_ok = Gauge(
            "detectk_config_last_reload_successful",
            "1 if the last config load had no errors.",
            registry=r,
        )
        self.reloads_merged = Counter(
            "detectk_config_reloads_merged_total",
            "Reload requests merged into a reload already waiting for its turn.",
            registry=r,
        )
        self.reload_ts = Gauge(
            "detectk_config_last_reload_success_timestamp_seconds",
            "When the config was last loaded without errors.",
            registry=r,
        )
        self.silences_unreadable = Gauge(
            "detectk_silences_unreadable",
            "Stored silences skipped: they cannot be read (see the log).",
            registry=r,
        )
        self.metrics_configured = Gauge("detectk_metrics_configured", "Metrics scheduled.", registry=r)
        self.series_export = SeriesGauges(export_cap)  # metrics with `export: true`
        self.series_exported = Gauge(
            "detectk_series_exported", "Series exported as detectk_series_* (export: true).", registry=r
        )
        self.series_export_refused = Counter(
            "detectk_series_export_refused",
            "Series not exported: over export_max_series (the global cap).",
            registry=r,
        )
        self.retention_deleted = Counter(
            "detectk_retention_deleted_rows",
            "Datapoints and detections deleted by the retention job.",
            registry=r,
        )
        self.retention_last = Gauge(
            "detectk_retention_last_run_timestamp_seconds",
            "When the retention job last finished.",
            registry=r,
        )
        self.snapshot_ts = Gauge(
            "detectk_memory_snapshot_last_success_timestamp_seconds",
            "When the memory snapshot was last written (at start: the file found, its mtime).",
            registry=r,
        )
        self.snapshot_bytes = Gauge(
            "detectk_memory_snapshot_bytes", "Size of the last memory snapshot written.", registry=r
        )
        self.snapshot_seconds = Gauge(
            "detectk_memory_snapshot_duration_seconds",
            "How long the last memory snapshot took to write (paced: snapshot_write_mib_s).",
            registry=r,
        )
        self.snapshot_failures = Counter(
            "detectk_memory_snapshot_failures",
            "Memory snapshots not written (disk full, ...; see the log).",
            registry=r,
        )
        # Labelled by metric (first label): pre-rendered (`detectkd.exposition`), a scrape stays cheap.
        F = self._family
        self.checks = F(
            "detectk_checks",
            "Metric runs by result (ok|error|nodata).",
            "counter",
            (
                "metric",
                "result",
            ),
        )
        self.missed = F(
            "detectk_missed_runs",
            "Runs skipped because the previous one was still busy or too late.",
            "counter",
            M,
        )
        self.anomalies = F("detectk_anomalies", "Anomalous points (after alert filters).", "counter", M)
        self.points = F("detectk_points_collected", "Points collected.", "counter", M)
        self.metric_up = F(
            "detectk_metric_up", "1 if the metric's last run succeeded, 0 if it failed.", "gauge", M
        )
        self.metric_judging = F(
            "detectk_metric_judging",
            "1 if the metric's newest run judged its newest period (of one series at least), 0 if not "
            "(warming up, cold start, no data in the source; /api/v1/metrics says why).",
            "gauge",
            M,
        )
        self.series_not_judging = F(
            "detectk_metric_series_not_judging",
            "Series of a metric with series_columns whose newest period its newest run did not judge "
            "(cold start, a late series' history loading, no data; while its runs wait for its warm-up: "
            "the series loaded so far).",
            "gauge",
            M,
        )
        self.series_firing = F("detectk_series_firing", "Series of the metric in FIRING.", "gauge", M)
        self.series_nodata = F("detectk_series_nodata", "Series of the metric in NODATA.", "gauge", M)
        self.metric_interval = F(
            "detectk_metric_interval_seconds", "The metric's schedule interval.", "gauge", M
        )
        self.series_refused = F(
            "detectk_series_refused", "New series refused by the metric's `max_series` limit.", "counter", M
        )
        self.rows_dropped = F(
            "detectk_rows_dropped",
            "Rows of a result dropped, by reason (bad_timestamp: NaN, infinite or absurd time).",
            "counter",
            ("metric", "reason"),
        )
        self.last_run = F(
            "detectk_metric_last_run_timestamp_seconds", "End of the metric's last run.", "gauge", M
        )
        self.history_progress = F(
            "detectk_history_progress_ratio",
            "Share of the metric's start_time history loaded (1 when done).",
            "gauge",
            M,
        )
        self.history_errors = F(
            "detectk_history_batch_errors", "History batches that failed (and are retried).", "counter", M
        )
        V = ("metric", "variant")
        self.shadow_alerts = F(
            "detectk_shadow_alerts",
            "Would-be notifications of `shadow:` variants (never sent).",
            "counter",
            V,
        )
        self.shadow_errors = F("detectk_shadow_errors", "Failed runs of `shadow:` variants.", "counter", V)
        Info("detectk_build", "detectkd version.", registry=r).info({"version": __version__})
        self.leader = Gauge(
            "detectk_leader", "1 while this replica leads its shard (ha), else 0.", registry=r
        )
        self.leader.set(1)  # a replica without ha leads; with ha, 0 until elected
        Info("detectk_shard", "The shard this replica runs: I of N (shard: I/N).", registry=r).info(
            {"shard": str(shard.index), "shards": str(shard.count)}
        )

    def _family(
        self, name: str, doc: str, kind: Literal["counter", "gauge"], labels: tuple[str, ...]
    ) -> Family:
        family = Family(name, doc, kind, labels)
        self.families.append(family)
        return family

    def exposition(self) -> bytes:
        """The text `/metrics` serves (CPU work: called in a worker thread)."""
        families = "".join(f.render() for f in self.families) + self.series_export.render()
        return generate_latest(self.registry) + families.encode()

    def export_series(self, metric: str, samples: Mapping[str, tuple[Mapping[str, str], Sample]]) -> None:
        refused = self.series_export.update(metric, samples)
        self.series_exported.set(self.series_export.count)
        if refused:
            self.series_export_refused.inc(refused)

    def forget(self, metric: str) -> None:
        """Drop a removed metric's labelled series so /metrics does not keep ghosts."""
        for family in self.families:
            family.forget(metric)
        self.series_export.forget(metric)
        self.series_exported.set(self.series_export.count)

"""Prometheus metrics about detectkd itself (DESIGN.md §4).

Labels never carry values or unbounded sets: `metric` is bounded by the
config, `result`, `stage` and `channel` by the code.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from detectkd import __version__

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Telemetry:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.checks = Counter(
            "detectk_checks",
            "Metric runs by result (ok|error|nodata).",
            ["metric", "result"],
            registry=r,
        )
        self.check_duration = Histogram(
            "detectk_check_duration_seconds", "Time spent per run stage.", ["stage"],
            buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.lag = Histogram(
            "detectk_scheduler_lag_seconds", "How late runs started after their scheduled time.",
            buckets=LAG_BUCKETS, registry=r,
        )  # fmt: skip
        self.missed = Counter(
            "detectk_missed_runs", "Runs skipped because the previous one was still busy or too late.",
            ["metric"], registry=r,
        )  # fmt: skip
        self.anomalies = Counter(
            "detectk_anomalies", "Anomalous points (after alert filters).", ["metric"], registry=r
        )
        self.points = Counter("detectk_points_collected", "Points collected.", ["metric"], registry=r)
        self.alerts_sent = Counter(
            "detectk_alerts_sent",
            "Notifications accepted by a channel.",
            ["channel", "status"],
            registry=r,
        )
        self.alerts_failed = Counter(
            "detectk_alerts_failed", "Failed notification attempts.", ["channel"], registry=r
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
            "When the config was last loaded without errors.", registry=r,
        )  # fmt: skip
        self.metrics_configured = Gauge("detectk_metrics_configured", "Metrics scheduled.", registry=r)
        self.metric_up = Gauge(
            "detectk_metric_up", "1 if the metric's last run succeeded, 0 if it failed.", ["metric"],
            registry=r,
        )  # fmt: skip
        self.series_firing = Gauge(
            "detectk_series_firing", "Series of the metric in FIRING.", ["metric"], registry=r
        )
        self.series_nodata = Gauge(
            "detectk_series_nodata", "Series of the metric in NODATA.", ["metric"], registry=r
        )
        self.metric_interval = Gauge(
            "detectk_metric_interval_seconds", "The metric's schedule interval.", ["metric"], registry=r
        )
        self.retention_deleted = Counter(
            "detectk_retention_deleted_rows", "Datapoints and detections deleted by the retention job.",
            registry=r,
        )  # fmt: skip
        self.retention_last = Gauge(
            "detectk_retention_last_run_timestamp_seconds",
            "When the retention job last finished.",
            registry=r,
        )
        self.series_refused = Counter(
            "detectk_series_refused", "New series refused by the metric's `max_series` limit.", ["metric"],
            registry=r,
        )  # fmt: skip
        self.last_run = Gauge(
            "detectk_metric_last_run_timestamp_seconds", "End of the metric's last run.", ["metric"],
            registry=r,
        )  # fmt: skip
        Info("detectk_build", "detectkd version.", registry=r).info({"version": __version__})

    def forget(self, metric: str) -> None:
        """Drop a removed metric's labelled series so /metrics does not keep ghosts."""
        for family in (self.metric_up, self.series_firing, self.last_run, self.anomalies, self.points,
                       self.missed, self.series_refused, self.series_nodata,
                       self.metric_interval):  # fmt: skip
            with contextlib.suppress(KeyError):
                family.remove(metric)
        for result in ("ok", "error", "nodata"):
            with contextlib.suppress(KeyError):
                self.checks.remove(metric, result)

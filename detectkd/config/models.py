"""The metric file, as DetectK wrote it plus detectkd's additions.

Top-level models validate structure only; `params` blocks are validated
against the model registered for their `type` (see `detectkd.config.loader`).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from detectkd.config.types import Duration, Frozen, TimeZoneName
from detectkd.durations import parse_duration

NAME_PATTERN = r"^[A-Za-z0-9_-]+$"


class Schedule(Frozen):
    interval: Duration = timedelta(minutes=10)
    delay: Duration = timedelta(0)
    timezone: TimeZoneName = "UTC"
    start_time: str | None = None
    end_time: str | None = None
    batch_load_days: int = Field(default=30, ge=1)
    max_catch_up: int = Field(default=100, ge=1)

    @field_validator("start_time", "end_time")
    @classmethod
    def _moment(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse_duration(value)
            return value
        except ValueError:
            pass
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is neither a time ('2026-01-01 00:00') nor a duration ('30d')"
            ) from None
        return value

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("interval must be at least 1 second")
        return value


class Collector(Frozen):
    type: str | None = None
    profile: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    timestamp_column: str | None = None
    value_column: str | None = None
    context_columns: list[str] | None = None
    series_columns: list[str] = Field(default_factory=list)
    # Multi-series metrics: at most this many series (new ones beyond it are refused with an
    # error on the metric), and a series without data for `forget_after` is forgotten.
    max_series: int = Field(default=1000, ge=1)
    forget_after: Duration | None = timedelta(days=7)
    # True: one query may cover many periods (it returns a timestamp per row).
    # False: the query describes exactly one period (DetectK's style); catch-up
    # and backfill run it once per period. None (auto): True for SQL queries
    # that GROUP BY and mention the timestamp column, else False.
    multi_period: bool | None = None

    @model_validator(mode="after")
    def _type_or_profile(self) -> Collector:
        if self.type is None and self.profile is None:
            raise ValueError("collector needs a `type` or a `profile`")
        return self


class Detector(Frozen):
    type: str
    id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class Conditions(Frozen):
    consecutive_anomalies: int = Field(default=1, ge=1)
    # vmalert/Prometheus style: anomalous for this long (rounded up to whole periods).
    for_: Duration | None = Field(default=None, alias="for")
    direction: Literal["up", "down", "both"] = "both"
    min_deviation_percent: float = Field(default=0.0, ge=0)
    min_deviation_abs: float = Field(default=0.0, ge=0)
    cooldown_minutes: float | None = Field(default=None, ge=0)
    # Hysteresis: leave FIRING only after this many normal points in a row (or this long).
    clear_consecutive: int = Field(default=1, ge=1)
    keep_firing_for: Duration | None = None
    # Re-send FIRING while it lasts: every repeat_interval, growing by repeat_backoff
    # each time, up to max_repeat_interval.
    repeat_interval: Duration | None = None
    repeat_backoff: float = Field(default=1.0, ge=1.0)
    max_repeat_interval: Duration | None = None
    # How detectors' verdicts combine: any one, all of them, a majority, or at least N.
    combine: Literal["any", "all", "majority"] = "any"
    min_detectors: int | None = Field(default=None, ge=1)
    # A period without a value: hold the state, then NODATA after `no_data_periods`
    # in a row (nodata); count it as anomalous (alerting) or normal (ok); hold (keep_last).
    on_no_data: Literal["nodata", "alerting", "ok", "keep_last"] = "nodata"
    no_data_periods: int = Field(default=3, ge=1)
    # A failed run: an ERROR notification after `error_runs` failures in a row (error),
    # or judge the newest period of every series as no data / anomalous / normal, or hold.
    on_error: Literal["error", "nodata", "alerting", "ok", "keep_last"] = "error"
    error_runs: int = Field(default=2, ge=1)
    # Flap damping: this many changes into or out of FIRING within `flap_window`
    # (default 20 periods) hold a series' notifications until it settles; 0 disables.
    flap_changes: int = Field(default=6, ge=0)
    flap_window: Duration | None = None
    # Peer verification (needs a `peers:` block): alert only on anomalies classified this way.
    # `unknown` (too few peers with data) passes either requirement.
    peers: Literal["any", "isolated", "shared"] = "any"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("flap_changes")
    @classmethod
    def _flap(cls, value: int) -> int:
        if value == 1:
            raise ValueError("flap_changes must be 0 (off) or at least 2")
        return value

    def required_clear(self, interval: timedelta) -> int:
        """Normal periods in a row before a FIRING series resolves."""
        if self.keep_firing_for is None:
            return self.clear_consecutive
        periods = math.ceil(self.keep_firing_for.total_seconds() / interval.total_seconds())
        return max(self.clear_consecutive, periods)

    def repeat_after(self, repeats: int) -> float | None:
        """Seconds after the last send before the next repeat (None: never repeat)."""
        if self.repeat_interval is None:
            return None
        wait = self.repeat_interval.total_seconds() * self.repeat_backoff**repeats
        if self.max_repeat_interval is not None:
            wait = min(wait, self.max_repeat_interval.total_seconds())
        return wait

    def required_streak(self, interval: timedelta) -> int:
        """Consecutive anomalous periods before FIRING (`for` wins over the count)."""
        if self.for_ is None:
            return self.consecutive_anomalies
        return max(1, math.ceil(self.for_.total_seconds() / interval.total_seconds()))


class Alerter(Frozen):
    type: str | None = None
    profile: str | None = None
    enabled: bool = True
    params: dict[str, Any] = Field(default_factory=dict)
    conditions: Conditions = Field(default_factory=Conditions)

    @model_validator(mode="after")
    def _type_or_profile(self) -> Alerter:
        if self.type is None and self.profile is None:
            raise ValueError("alerter needs a `type` or a `profile`")
        return self


class Storage(Frozen):
    enabled: bool = True
    type: str | None = None
    profile: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    retention_days: int | None = None


class Peers(Frozen):
    """Which series of a multi-series metric are each other's peers, and what counts as shared."""

    mode: Literal["all", "nearest"] = "all"
    k: int = Field(default=8, ge=1)  # nearest: this many closest series
    radius_km: float | None = Field(default=None, gt=0)  # nearest: none farther than this
    latitude_column: str = "latitude"
    longitude_column: str = "longitude"
    # A CSV file (relative to the metric file) with the series columns, latitude, longitude
    # and attributes per series; otherwise coordinates come from the query's columns.
    entities: str | None = None
    attribute: str | None = None  # e.g. elevation: peers differ by at most ...
    max_attribute_difference: float | None = Field(default=None, ge=0)
    min_peers: int = Field(default=2, ge=1)  # fewer peers with data: unknown
    # A peer deviates when its own deviation reaches this share of its alarm line, same sign.
    deviation: float = Field(default=0.5, gt=0)
    shared_share: float = Field(default=0.5, gt=0, le=1)  # this share deviating: shared

    @model_validator(mode="after")
    def _attribute_pair(self) -> Peers:
        if (self.attribute is None) != (self.max_attribute_difference is None):
            raise ValueError("`attribute` and `max_attribute_difference` go together")
        return self


class MetricFile(Frozen):
    name: str = Field(pattern=NAME_PATTERN, min_length=1, max_length=200)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    schedule: Schedule = Field(default_factory=Schedule)
    collector: Collector
    detector: Detector | None = None
    detectors: list[Detector] | None = None
    alerter: Alerter | None = None
    alerters: list[Alerter] | None = None
    storage: Storage = Field(default_factory=Storage)
    backtest: dict[str, Any] | None = None
    peers: Peers | None = None

    @model_validator(mode="after")
    def _one_form(self) -> MetricFile:
        if self.detector is not None and self.detectors is not None:
            raise ValueError("use either `detector` or `detectors`, not both")
        if self.alerter is not None and self.alerters is not None:
            raise ValueError("use either `alerter` or `alerters`, not both")
        return self

    def detector_list(self) -> list[Detector]:
        if self.detectors is not None:
            return list(self.detectors)
        return [self.detector] if self.detector is not None else []

    def alerter_list(self) -> list[Alerter]:
        if self.alerters is not None:
            return list(self.alerters)
        return [self.alerter] if self.alerter is not None else []


# Keys DetectK documented but ignored: they load, with a warning, never an error.
IGNORED_WITH_WARNING: dict[tuple[str, ...], str] = {
    ("backtest",): "`backtest:` blocks are ignored by the daemon; use `detectkd backtest`",
    ("storage", "retention_days"): (
        "`storage.retention_days` is not used; use `storage.params.datapoints_retention_days`"
    ),
}

"""The metric file, as DetectK wrote it plus detectkd's additions.

Top-level models validate structure only; `params` blocks are validated
against the model registered for their `type` (see `detectkd.specs.loader`).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from detectkd.config.calendars import CalendarRef
from detectkd.config.completeness import Completeness
from detectkd.config.types import Duration, Frozen, TimeZoneName
from detectkd.durations import parse_duration

NAME_PATTERN = r"^[A-Za-z0-9_-]+$"


class Schedule(Frozen):
    interval: Duration = timedelta(minutes=10)  # one period; the metric runs once per period
    delay: Duration = timedelta(0)  # check a period this long after it ends (late data)
    timezone: TimeZoneName = "UTC"  # IANA name: day-long periods, seasonal features, messages
    start_time: str | None = None  # first start: load history from here (a time, or a duration: 30d)
    end_time: str | None = None  # accepted (DetectK); the daemon runs open-ended
    batch_load_days: int = Field(default=30, ge=1)  # history is loaded in batches of this many days
    max_catch_up: int = Field(default=100, ge=1)  # after downtime, at most this many missed periods
    # First start without start_time, and a late series: load the detectors' window, at most this (0: none)
    warmup: Duration = timedelta(days=30)
    # A many-series metric's series that first appears after its first start: load its history
    # from the source (one range query, at most one per max(10 periods, 10m) and 2 per window)
    late_series_warmup: bool = True

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
    type: str | None = None  # a source type (see "Collector params" below), or from the profile
    profile: str | None = None  # a profile from profiles.yaml whose keys merge under `params`
    params: dict[str, Any] = Field(default_factory=dict)  # the type's parameters (tables below)
    timestamp_column: str | None = None  # default `period_time` (DetectK's)
    value_column: str | None = None  # default `value` (DetectK's)
    context_columns: list[str] | None = None  # stored with the point; usable as seasonal features
    series_columns: list[str] = Field(default_factory=list)  # one series per distinct value set
    # New series beyond this many are refused, with an error on the metric (multi-series.md).
    max_series: int = Field(default=1000, ge=1)
    # A query result with more rows is refused (an error naming the limit) while it is read:
    # SQL sources stop after max_rows + 1 rows, nothing is converted.
    max_rows: int = Field(default=1_000_000, ge=1)
    # A series without data this long is forgotten: state deleted, window freed; null: never.
    forget_after: Duration | None = timedelta(days=7)
    # True: one query may cover many periods (it returns a timestamp per row).
    # False: the query describes exactly one period (DetectK's style); catch-up
    # and backfill run it once per period. None (auto): True for SQL queries
    # that GROUP BY and mention the timestamp column, else False, and then a range
    # of 3 or more periods is asked once when the answer proves it can be.
    multi_period: bool | None = None

    @model_validator(mode="after")
    def _type_or_profile(self) -> Collector:
        if self.type is None and self.profile is None:
            raise ValueError("collector needs a `type` or a `profile`")
        return self


class Detector(Frozen):
    type: str  # a detector type (see "Detector params" below)
    id: str | None = None  # names the detector in results and alerts; default: the type
    params: dict[str, Any] = Field(default_factory=dict)  # the type's parameters (tables below)


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


class AlerterOptions(Frozen):
    """Keys every alerter type accepts in its `params` (where DetectK writes them); they are
    conditions of the metric's one alert state, not options of a channel."""

    cooldown_minutes: float | None = Field(default=None, ge=0)


class Alerter(Frozen):
    type: str | None = None  # a channel type (see "Alerter params" below)
    profile: str | None = None  # a profile whose keys merge under `params`
    enabled: bool = True  # false: this channel is skipped
    params: dict[str, Any] = Field(default_factory=dict)  # the type's parameters (tables below)
    conditions: Conditions = Field(default_factory=Conditions)  # when to alert (shared by all alerters)

    @model_validator(mode="after")
    def _type_or_profile(self) -> Alerter:
        if self.type is None and self.profile is None:
            raise ValueError("alerter needs a `type` or a `profile`")
        return self


class Storage(Frozen):
    enabled: bool = True  # false: datapoints and detections are not stored (windows are in memory)
    type: str | None = None  # this metric's data in its own store (a storage type, storage.md)
    profile: str | None = None  # a profile with the store's connection
    params: dict[str, Any] = Field(default_factory=dict)  # connection; save_detections, *_retention_days
    retention_days: int | None = Field(default=None, ge=1)  # default: the daemon's retention_days


class Peers(Frozen):
    """Which series of a multi-series metric are each other's peers, and what counts as shared."""

    mode: Literal["all", "nearest"] = "all"  # all: every other series; nearest: by distance
    k: int = Field(default=8, ge=1)  # nearest: this many closest series
    radius_km: float | None = Field(default=None, gt=0)  # nearest: none farther than this
    latitude_column: str = "latitude"  # query column with the latitude (nearest, no entity file)
    longitude_column: str = "longitude"  # query column with the longitude
    # A CSV file (relative to the metric file) with the series columns, latitude, longitude
    # and attributes per series; otherwise coordinates come from the query's columns.
    entities: str | None = None
    attribute: str | None = None  # e.g. elevation: peers differ by at most ...
    max_attribute_difference: float | None = Field(default=None, ge=0)  # ... this much
    min_peers: int = Field(default=2, ge=1)  # fewer peers with data: unknown
    # A peer deviates when its own deviation reaches this share of its alarm line, same sign.
    deviation: float = Field(default=0.5, gt=0)
    shared_share: float = Field(default=0.5, gt=0, le=1)  # this share deviating: shared

    @model_validator(mode="after")
    def _attribute_pair(self) -> Peers:
        if (self.attribute is None) != (self.max_attribute_difference is None):
            raise ValueError("`attribute` and `max_attribute_difference` go together")
        return self


MAX_SHADOWS = 5  # shadow variants per metric: each is judged on every run of the metric


class ShadowVariant(Frozen):
    """A variant judged beside the metric on the same points; never notifies (shadow.md)."""

    name: str = Field(pattern=NAME_PATTERN, min_length=1, max_length=100)  # unique in the file
    detector: Detector | None = None  # replaces the metric's detectors (absent: the metric's)
    detectors: list[Detector] | None = None  # several, combined by conditions.combine
    # Keys given replace the metric's alert conditions; the others are the metric's.
    conditions: Conditions | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> ShadowVariant:
        if self.detector is not None and self.detectors is not None:
            raise ValueError("use either `detector` or `detectors`, not both")
        if self.detector is None and self.detectors is None and self.conditions is None:
            raise ValueError("a shadow variant needs `detector`, `detectors` or `conditions`")
        return self

    def detector_list(self) -> list[Detector] | None:
        """None: the metric's detectors."""
        if self.detectors is not None:
            return list(self.detectors)
        return [self.detector] if self.detector is not None else None


class Explain(Frozen):
    """Where: on every FIRING, the segments that moved the total (docs/alerting.md)."""

    # Rendered like the collector's query, once for the anomalous period and once for each
    # baseline period (period_start, period_finish): one row per segment with the dimension
    # columns and a value column. None (a multi-series metric): its own series are the segments.
    query: str | None = None
    dimensions: list[str] = Field(min_length=1, max_length=6)  # the columns (or series labels) to explain by
    value_column: str = "value"  # the segment's value in the query's rows
    timeout: Duration = timedelta(seconds=10)  # all breakdown queries of one FIRING together
    max_segments: int = Field(default=10_000, ge=1, le=100_000)  # rows per period; more: a note
    baseline_periods: int = Field(default=7, ge=1, le=28)  # the expected value: their median
    # How far back each baseline period is: default 1 day for a sub-daily interval, else 1 week.
    baseline_step: Duration | None = None

    @model_validator(mode="after")
    def _columns(self) -> Explain:
        if len(set(self.dimensions)) != len(self.dimensions):
            raise ValueError("`dimensions` names a column twice")
        if self.value_column in self.dimensions:
            raise ValueError(f"`value_column` {self.value_column!r} is also a dimension")
        return self

    def step(self, interval: timedelta) -> timedelta:
        if self.baseline_step is not None:
            return self.baseline_step
        return timedelta(days=1) if interval < timedelta(days=1) else timedelta(weeks=1)


class MetricFile(Frozen):
    name: str = Field(pattern=NAME_PATTERN, min_length=1, max_length=200)  # unique; [A-Za-z0-9_-]+
    description: str = ""  # shown in alerts
    tags: list[str] = Field(default_factory=list)  # shown in alerts; silences can match them
    metadata: dict[str, Any] = Field(default_factory=dict)  # free-form, kept with the metric
    enabled: bool = True  # false: validated, not scheduled
    schedule: Schedule = Field(default_factory=Schedule)  # when it runs
    collector: Collector  # where the value comes from
    detector: Detector | None = None  # one detector (default when none: auto)
    detectors: list[Detector] | None = None  # several, combined by conditions.combine
    alerter: Alerter | None = None  # one channel
    alerters: list[Alerter] | None = None  # several channels (same conditions)
    storage: Storage = Field(default_factory=Storage)  # where points and detections are kept
    backtest: dict[str, Any] | None = None  # DetectK's block: ignored with a warning (use detectkd backtest)
    peers: Peers | None = None  # peer verification for multi-series metrics
    export: bool = False  # per-series value, expected band and score on /metrics (detectk_series_*)
    # Variants judged live on the same points, never notifying; their would-be alerts are stored.
    shadow: list[ShadowVariant] = Field(default_factory=list)
    completeness: Completeness | None = None  # wait for complete periods, re-judge late rows
    # Holidays, event files and recurring days, and what a period in them means (calendars.md).
    calendars: list[CalendarRef] = Field(default_factory=list, max_length=20)
    explain: Explain | None = None  # where: the segments that moved the total, in every FIRING

    @field_validator("shadow")
    @classmethod
    def _shadows(cls, value: list[ShadowVariant]) -> list[ShadowVariant]:
        if len(value) > MAX_SHADOWS:
            raise ValueError(
                f"at most {MAX_SHADOWS} shadow variants per metric, not {len(value)} "
                "(each is judged on every run)"
            )
        return value

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
}

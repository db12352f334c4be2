"""Daemon settings: `detectkd.yaml`, overridden by `DETECTK_*` environment variables.

Relative paths in `detectkd.yaml` are relative to that file's directory.
Nested keys use `__` in the environment: `DETECTK_STORAGE__PATH=/srv/dtk.db`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from detectkd.config.calendars import CalendarRef
from detectkd.config.connection import StoreParams
from detectkd.config.types import Duration
from detectkd.config.validation import issues_from
from detectkd.config.yamlsource import YamlLimits, load_yaml, set_limits
from detectkd.errors import ConfigError
from detectkd.shard import Shard


class StorageSettings(StoreParams):
    """The daemon's own store: alert state, outbox, watermarks, and default datapoints."""

    type: Literal["sqlite", "postgres", "clickhouse"] = "sqlite"  # the backend (storage.md)
    path: Path | None = None  # type: ignore[assignment]  # sqlite; default: <data_dir>/detectkd.db


class OutageSettings(BaseModel):
    """Grouping of ERROR notifications per source (see docs/alerting.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_metrics: int = Field(default=3, ge=2)  # failing metrics of one source that make it "down"
    group_wait: Duration = timedelta(minutes=1)  # wait after a first failure before notifying


class HistorySettings(BaseModel):
    """Background loading of `schedule.start_time` history (see docs/operations.md#history)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Metrics loading `start_time` history at once (live runs never wait).
    concurrency: int = Field(default=2, ge=1)
    # One batch's (`batch_load_days` of a metric) source queries and store I/O (not its judging);
    # the run timeout does not apply.
    batch_timeout: Duration = timedelta(minutes=10)
    retry_after: Duration = timedelta(seconds=30)  # a failed batch is retried after this, doubling to 10m
    # Metrics loading a first start's warm-up (no `start_time`) at once: asking their source
    # (a warm-up holds its slot while it asks, not while it stores what it got).
    warmup_concurrency: int = Field(default=8, ge=1)
    # Queries a second history loading (warm-ups and `start_time` jobs) may ask of one source
    # (its profile, else its database), with a burst of one second's worth; 0: no bound.
    # Per process: `workers: N` and shards each pace their own. Live runs are not paced.
    # 10,000 staged `auto` warm-ups of a one-period query: 630,000 queries, 4.2 minutes at
    # 2,500 (docs/operations.md#a-first-start-without-start_time-warm-up).
    source_qps: float = Field(default=2500.0, ge=0)
    # Of those, what the fill jobs of staged warm-ups (`auto`'s seasonal baselines and
    # reference, after it judges) may ask of one source: a trickle, for hours (0: no bound).
    fill_qps: float = Field(default=200.0, ge=0)


class HaSettings(BaseModel):
    """Replicas of one shard sharing a PostgreSQL store elect a leader (docs/scaling.md#ha)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False  # elect one leader per shard among replicas (needs storage.type: postgres)
    # A leader that cannot renew its lease for this long is replaced; standbys try every lease/4.
    lease: Duration = timedelta(seconds=15)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DETECTK_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    metrics_dir: Path = Path("/etc/detectk/metrics.d")  # one YAML file per metric (DetectK's format)
    profiles_file: Path | None = Path("/etc/detectk/profiles.yaml")  # named connections shared by metrics
    data_dir: Path = Path("/var/lib/detectk")  # state: the SQLite store by default
    # The daemon's store: alert state, outbox, watermarks, and data by default.
    storage: StorageSettings = Field(default_factory=StorageSettings)
    listen: str = "0.0.0.0:9100"  # HTTP: /metrics, /healthz, /readyz, /api/v1
    # auto: readable lines on a terminal, JSON otherwise.
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"  # lowest level logged
    max_concurrent_checks: int = Field(default=64, ge=1)  # runs in flight at once, across all metrics
    lifecycle_api: bool = False  # true enables POST /-/reload and silence writes (with basic auth)
    # TLS and basic auth for every endpoint, in exporter-toolkit's format (http.md#web-config).
    web_config_file: Path | None = None
    shutdown_grace: Duration = timedelta(seconds=30)  # SIGTERM: how long runs in flight may finish
    # SIGTERM writes windows and detector state to data_dir/memory.snapshot; the next start
    # takes them back instead of rebuilding from the store (docs/scaling.md#restarts).
    restart_snapshot: bool = True
    # The snapshot is also written every this long in the background: a start after kill -9 or
    # a crash takes it and catches up from the store (docs/scaling.md#restarts); null: only at SIGTERM.
    snapshot_interval: Duration | None = timedelta(minutes=5)
    # The background snapshot writes at most this many MiB a second (the stop's is not paced).
    snapshot_write_mib_s: float = Field(default=32.0, gt=0)
    # An undeliverable alert is retried this long, then kept as a dead letter.
    alert_retry_for: Duration = timedelta(hours=24)
    # A link shown in every alert (Jinja2: metric, series, labels, period_start, period_finish),
    # e.g. "https://grafana.example/d/dtk?var-metric={{ metric }}".
    generator_url: str | None = None
    # A run's source query and store I/O (not its judging); default: the metric's interval.
    run_timeout: Duration | None = None
    # Series exported as detectk_series_* by metrics with `export: true`, in all (beyond: refused,
    # counted in detectk_series_export_refused_total).
    export_max_series: int = Field(default=10_000, ge=0)
    # Run only the metrics whose name hashes into shard I of N ("I/N"; docs/scaling.md#shards).
    shard: str = "0/1"
    # Worker processes under this one (each a shard of the metrics; `auto`: one per core).
    workers: int | Literal["auto"] = Field(default=1, ge=1)
    ha: HaSettings = Field(default_factory=HaSettings)  # one leader per shard among replicas
    outages: OutageSettings = Field(default_factory=OutageSettings)  # ERROR / SOURCE DOWN grouping
    history: HistorySettings = Field(default_factory=HistorySettings)  # background start_time loading
    silence_refresh: Duration = timedelta(seconds=10)  # how often silences are re-read from the store
    # Stored datapoints and detections older than this are deleted by a daily job (a metric's
    # storage.retention_days / params.*_retention_days override it); null keeps everything.
    retention_days: int | None = Field(default=400, ge=1)
    # Every metric's calendars unless its file has `calendars:` (docs/calendars.md); event
    # files relative to this settings file.
    calendars: list[CalendarRef] = Field(default_factory=list, max_length=20)
    config_max_bytes: int = Field(default=1_048_576, ge=1024)  # a larger config file is refused unread
    # A config file whose YAML aliases expand to more values is refused (a "billion laughs").
    config_max_values: int = Field(default=100_000, ge=100)

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str) -> str:
        return str(Shard.parse(value))

    @field_validator("snapshot_interval")
    @classmethod
    def _snapshot_interval(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(seconds=1):
            raise ValueError("at least 1s (each is the whole of memory: minutes suit); null: only at SIGTERM")
        return value

    @model_validator(mode="after")
    def _workers_alone(self) -> Settings:
        if self.workers != 1 and self.shard != "0/1":
            raise ValueError("workers and shard do not combine yet: run a shard per host, or workers")
        return self

    @model_validator(mode="after")
    def _ha_needs_postgres(self) -> Settings:
        if self.ha.enabled and self.storage.type != "postgres":
            raise ValueError(
                f"ha.enabled needs storage.type: postgres (the lease lives there), not "
                f"{self.storage.type!r}; a ClickHouse data store can stay the metrics' data store"
            )
        return self

    @property
    def shard_of(self) -> Shard:
        return Shard.parse(self.shard)

    @field_validator("generator_url")
    @classmethod
    def _link_template(cls, value: str | None) -> str | None:
        from detectkd.templating import check_template

        sample = {"metric": "m", "series": "", "labels": {}, "period_start": 0, "period_finish": 60}
        if value is not None and (problem := check_template(value, sample)):
            raise ValueError(problem)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file (init kwargs carry the file's values).
        return env_settings, init_settings

    @property
    def store_path(self) -> Path:
        return self.storage.path or self.data_dir / "detectkd.db"

    def listen_host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)


_PATH_KEYS = ("metrics_dir", "profiles_file", "data_dir", "web_config_file")


def load_settings(path: Path | None) -> Settings:
    """Read `path` (if given and present) and the environment. Raises ConfigError."""
    from pydantic import ValidationError

    values: dict[str, Any] = {}
    doc = None
    if path is not None:
        if not path.exists():
            raise ConfigError([_issue(str(path), "settings file not found")])
        doc = load_yaml(path)
        if doc.issues:
            raise ConfigError(doc.issues)
        values = dict(doc.data or {})
        base = path.parent
        for key in _PATH_KEYS:
            if isinstance(values.get(key), str):
                values[key] = str((base / values[key]).resolve())
        if isinstance(values.get("calendars"), list):  # event files: relative to this file
            values["calendars"] = [_beside(base, c) for c in values["calendars"]]
        store = values.get("storage")
        if isinstance(store, dict) and isinstance(store.get("path"), str):
            values["storage"] = {**store, "path": str((base / store["path"]).resolve())}
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        if doc is None:
            from detectkd.config.yamlsource import Document

            doc = Document(file="environment (DETECTK_*)", data=None)
        raise ConfigError(issues_from(doc, exc, Settings, ())) from None
    set_limits(YamlLimits(settings.config_max_bytes, settings.config_max_values))
    return settings


def _beside(base: Path, calendar: Any) -> Any:
    if isinstance(calendar, dict) and isinstance(calendar.get("file"), str):
        return {**calendar, "file": str((base / calendar["file"]).resolve())}
    return calendar


def _issue(file: str, message: str) -> Any:
    from detectkd.errors import ConfigIssue

    return ConfigIssue(file, None, "", message)

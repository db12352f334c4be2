"""A metric file resolved: what every stage is built from (`MetricSpec` and its parts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from detectkd.collectors.points import PointSpec
from detectkd.config.calendars import Calendar
from detectkd.config.hosts import split_url
from detectkd.config.models import Conditions, MetricFile
from detectkd.errors import ConfigIssue
from detectkd.redact import DB_SCHEMES
from detectkd.shard import Shard
from detectkd.specs.entities import Entity


@dataclass(frozen=True)
class CollectorSpec:
    type: str
    profile: str | None
    params: BaseModel
    points: PointSpec
    multi_period: bool = True
    period_aware: bool = True  # the query selects by period, so history can be asked for


@dataclass(frozen=True)
class DetectorSpec:
    type: str
    id: str
    params: BaseModel


@dataclass(frozen=True)
class AlerterSpec:
    type: str
    index: int  # position in the file (for messages)
    params: BaseModel
    # What outbox rows name: `type:digest-of-params`, so reordering alerters never sends a
    # pending row to another channel (see `detectkd.alerting.channels.channelset`).
    id: str = ""


@dataclass(frozen=True)
class StorageSpec:
    enabled: bool
    type: str | None  # resolved backend (sqlite|postgres|clickhouse); None: the daemon's store
    params: dict[str, Any]
    save_detections: bool
    datapoints_retention_days: int | None
    detections_retention_days: int | None


@dataclass(frozen=True)
class ShadowSpec:
    """A `shadow:` variant resolved: its detectors and conditions (the metric's where the
    file names none) and what its alert state means (`fingerprint`: a change starts it afresh)."""

    name: str
    detectors: tuple[DetectorSpec, ...]
    conditions: Conditions
    fingerprint: str


@dataclass(frozen=True)
class MetricSpec:
    name: str
    file: str
    config: MetricFile
    collector: CollectorSpec
    detectors: tuple[DetectorSpec, ...]
    alerters: tuple[AlerterSpec, ...]
    conditions: Conditions
    storage: StorageSpec
    fingerprint: str
    detector_fingerprint: str
    # Peer verification: coordinates and attributes per series from `peers.entities`.
    entities: dict[str, Entity] | None = None
    shadows: tuple[ShadowSpec, ...] = ()  # `shadow:` variants (runtime.shadow)
    # `calendars:` compiled for the metric's timezone (None: no calendars).
    calendar: Calendar | None = None


@dataclass
class LoadResult:
    metrics: dict[str, MetricSpec] = field(default_factory=dict)
    errors: dict[str, list[ConfigIssue]] = field(default_factory=dict)
    warnings: list[ConfigIssue] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    other_shards: int = 0  # valid metrics left to the other shards

    @property
    def ok(self) -> bool:
        return not self.errors

    def all_errors(self) -> list[ConfigIssue]:
        return [i for f in sorted(self.errors) for i in self.errors[f]]

    def only(self, shard: Shard) -> LoadResult:
        """The metrics of one shard (errors and warnings stay: a broken file has no owner)."""
        if shard.count == 1:
            return self
        mine = {n: m for n, m in self.metrics.items() if shard.owns(n)}
        return LoadResult(mine, self.errors, self.warnings, self.files, len(self.metrics) - len(mine))


def source_key(c: CollectorSpec) -> str:
    """What "one source" means: the profile, else the connection: host, port and database
    (`postgres:db1/5432/app`, `http:api.internal:8080`). Never credentials, nor a web URL's
    path or query (tokens live there): every metric of one HTTP server is one source, which
    is what a SOURCE DOWN groups. Shown in `/api/v1/metrics` and alert labels."""
    if c.profile:
        return c.profile
    data = c.params.model_dump()
    parts = [str(data[k]) for k in ("host", "port", "database") if data.get(k) not in (None, "")]
    for k in ("connection_string", "dsn", "url"):
        raw = data.get(k)
        if isinstance(raw, str) and raw:
            parts.append(_where(raw))
    return f"{c.type}:" + "/".join(parts) if parts else c.type


def _where(url: str) -> str:
    """host:port of a URL, and the path of a database URL (the database; a file for SQLite)."""
    try:
        u = urlsplit(url)
    except ValueError:  # an unbalanced IPv6 bracket: nothing to show
        return ""
    path = u.path if u.scheme.split("+", 1)[0].lower() in DB_SCHEMES else ""
    if "," in u.netloc:  # a failover host list names the source (config/hosts.py)
        try:
            listed = ",".join(f"{h}:{p}" if p else h for h, p in split_url(url).hosts)
        except ValueError:  # not a database URL: its host part as written
            listed = u.netloc.rpartition("@")[2]
        return f"{listed}{path}"
    try:
        port = f":{u.port}" if u.port else ""
    except ValueError:  # not a number (a template): the host alone
        port = ""
    return f"{u.hostname or ''}{port}{path}"

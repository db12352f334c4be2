"""An alert notification: what the outbox stores and every channel renders."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

AlertStatus = Literal["firing", "resolved"]
# anomaly: the detectors' verdict; nodata: a series without values; flapping: flap damping;
# error: a metric's runs fail; source_down: many metrics of one source fail at once.
AlertKind = Literal["anomaly", "nodata", "flapping", "error", "source_down"]

HEADLINES: dict[str, tuple[str, str]] = {  # kind -> (resolved, firing)
    "anomaly": ("RESOLVED", "FIRING"),
    "nodata": ("DATA BACK", "NO DATA"),
    "flapping": ("SETTLED", "FLAPPING"),
    "error": ("RECOVERED", "ERROR"),
    "source_down": ("SOURCE UP", "SOURCE DOWN"),
}


@dataclass(frozen=True)
class Alert:
    metric: str
    series: str
    labels: dict[str, str]
    status: AlertStatus
    period: int  # start of the period that produced this notification
    started_at: int  # start of the first anomalous period of the episode
    value: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    score: float | None
    direction: str | None
    detector: str | None
    interval_seconds: int
    timezone: str = "UTC"
    description: str = ""
    tags: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    repeat: int = 0  # 0: the first FIRING of the episode; n: its n-th re-send
    url: str | None = None  # the `generator_url` link, rendered for this alert
    kind: AlertKind = "anomaly"
    detector_params: dict[str, Any] = field(default_factory=dict)  # the firing detector's
    resent: int | None = None  # a re-send to Alertmanager at this period (alerting.resend)
    source: str = ""  # the metric's source (specs.source_key): Alertmanager's `source` label
    # "retracted" (a FIRING withdrawn: its period changed after it was judged) or "late" (an
    # anomaly that appeared when a judged period changed); the reason is in `extra["reason"]`.
    revised: str | None = None

    @property
    def key(self) -> str:
        """Idempotency key: receivers may dedupe on it; the outbox is unique on it."""
        status = self.status if self.kind == "anomaly" else f"{self.kind}:{self.status}"
        base = f"{self.metric}|{self.series}|{status}|{self.started_at}"
        base = f"{base}|r{self.repeat}" if self.repeat else base
        base = f"{base}|{self.revised}" if self.revised else base
        return f"{base}|am{self.resent}" if self.resent is not None else base

    @property
    def headline(self) -> str:
        """FIRING / RESOLVED, or what a non-anomaly notification means."""
        return HEADLINES[self.kind][self.status == "firing"]

    @property
    def deviation_percent(self) -> float | None:
        if self.value is None or self.expected in (None, 0):
            return None
        assert self.expected is not None
        return (self.value - self.expected) / abs(self.expected) * 100.0

    def to_json(self) -> str:
        data = asdict(self)
        data["tags"] = list(self.tags)
        return json.dumps(data, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Alert:
        data = json.loads(text)
        data["tags"] = tuple(data.get("tags", ()))
        return Alert(**data)

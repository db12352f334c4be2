"""Prometheus Alertmanager (API v2), fanned out to every configured URL.

Labels are stable per series: `alertname`, `metric`, `severity` and the
series labels (names made Prometheus-safe). Value, expected, bounds and
score are annotations. As Prometheus does, an active alert is re-sent every
`resend_delay` (`detectkd.alerting.resend`) and every FIRING post says
`endsAt` = now + 4 x max(`resend_delay`, the metric's interval), so
Alertmanager ends it by itself when the re-sends stop; RESOLVED is posted
with `endsAt` = the time it resolved. Every URL must accept the post or the
delivery is retried (Alertmanager de-duplicates identical alerts); each
URL's sends, errors and latency are in `/metrics` (`detectk_alertmanager_*`).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from detectkd.alerting.alert import Alert
from detectkd.alerting.channels.base import post_json
from detectkd.alerting.message import where_lines
from detectkd.config.types import Duration, Frozen
from detectkd.errors import TransientError
from detectkd.resources import Resources

_LABEL = re.compile(r"[^a-zA-Z0-9_]")


class Params(Frozen):
    url: str | None = None
    urls: list[str] = Field(default_factory=list)
    alertname: str | None = None  # default: the metric's name
    severity: str = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    generator_url: str | None = None
    resend_delay: Duration = timedelta(minutes=1)  # an active alert is re-sent this often
    # endsAt of a FIRING post = now + this; default 4 x max(resend_delay, the interval).
    ends_after: Duration | None = None
    timeout: Duration = timedelta(seconds=10)

    @field_validator("urls")
    @classmethod
    def _http(cls, value: list[str]) -> list[str]:
        for u in value:
            if not u.startswith(("http://", "https://")):
                raise ValueError("Alertmanager URLs must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _some_url(self) -> Params:
        if not self.url and not self.urls:
            raise ValueError("alertmanager needs `url` or `urls`")
        return self

    def targets(self) -> list[str]:
        out = [*([self.url] if self.url else []), *self.urls]
        return [u.rstrip("/") + "/api/v2/alerts" for u in out]


def _target(url: str) -> str:
    """A URL's host and port: the `target` label (never its credentials)."""
    u = urlsplit(url)
    host = u.hostname or ""
    return f"{host}:{u.port}" if u.port else host


def label_name(name: str) -> str:
    clean = _LABEL.sub("_", name)
    return clean if clean and not clean[0].isdigit() else f"_{clean}"


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _local(ts: float, tz: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


_SUMMARY = {
    "anomaly": " is anomalous ({direction})",
    "nodata": " has no data",
    "flapping": " is flapping",
    "error": " checks are failing",
    "source_down": " is down",
}


def horizon(alert: Alert, p: Params) -> float:
    """Seconds from a FIRING post to its `endsAt`: two missed re-sends and more."""
    if p.ends_after is not None:
        return p.ends_after.total_seconds()
    return 4.0 * max(p.resend_delay.total_seconds(), float(alert.interval_seconds))


def payload(alert: Alert, p: Params, now: float | None = None) -> list[dict[str, Any]]:
    labels = {label_name(k): str(v) for k, v in alert.labels.items()}
    labels.update({label_name(k): v for k, v in p.labels.items()})
    labels.update({"alertname": p.alertname or alert.metric, "metric": alert.metric, "severity": p.severity})
    if alert.source:  # what a SOURCE DOWN carries: `inhibit_rules` can match on it (a series' own wins)
        labels.setdefault("source", alert.source)
    if alert.kind != "anomaly":  # its own alert beside the series' anomaly alert
        labels["kind"] = alert.kind
    starts = alert.started_at
    ends: float = alert.period + alert.interval_seconds  # RESOLVED: when it resolved
    if alert.status == "firing":  # counted from this post: each re-send extends it
        ends = (time.time() if now is None else now) + horizon(alert, p)
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": {
            "summary": f"{alert.metric} {alert.series}".strip()
            + _SUMMARY[alert.kind].format(direction=alert.direction or "off"),
            "description": alert.description,
            "value": _num(alert.value),
            "expected": _num(alert.expected),
            "lower": _num(alert.lower),
            "upper": _num(alert.upper),
            "score": _num(alert.score),
            "detector": alert.detector or "",
            "period": _local(alert.period, alert.timezone),  # in the metric's timezone
            **{k: str(v) for k, v in alert.extra.items() if not k.startswith("where")},
            **({"where": "\n".join(where_lines(alert.extra))} if where_lines(alert.extra) else {}),
        },
        "startsAt": _rfc3339(starts),
        "endsAt": _rfc3339(ends),
    }
    link = p.generator_url or alert.url
    if link:
        body["generatorURL"] = link
    return [body]


class AlertmanagerChannel:
    kind = "alertmanager"

    def __init__(self, params: Params, resources: Resources) -> None:
        self._p = params
        self._targets = params.targets()
        self.destination = ",".join(sorted({urlsplit(t).netloc for t in self._targets}))
        self._resources = resources

    async def send(self, alert: Alert) -> None:
        session = await self._resources.http()
        body = payload(alert, self._p)
        errors: list[str] = []
        telemetry = self._resources.telemetry
        for url in self._targets:
            target = _target(url)
            began = time.perf_counter()
            try:
                await post_json(session, url, body, self._p.timeout.total_seconds())
            except TransientError as exc:
                errors.append(str(exc))
                if telemetry is not None:
                    telemetry.am_errors.labels(target).inc()
                continue
            finally:
                if telemetry is not None:
                    telemetry.am_latency.labels(target).observe(time.perf_counter() - began)
            if telemetry is not None:
                telemetry.am_sent.labels(target).inc()
        if errors:
            raise TransientError("; ".join(errors))


def build(params: Params, resources: Resources) -> AlertmanagerChannel:
    return AlertmanagerChannel(params, resources)

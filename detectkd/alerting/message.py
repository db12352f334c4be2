"""Message text for chat channels: DetectK's `message_template` variables plus ours.

DetectK variables: metric_name, timestamp, value, is_anomaly, score,
lower_bound, upper_bound, direction, percent_deviation, metadata (the
detector's name and parameters, as DetectK's detections carry them),
execution_time (the end of the period: when a scheduled check judges it).
detectkd adds: status (firing|resolved), kind (anomaly|nodata|flapping|error|
source_down), headline (FIRING, RESOLVED, NO DATA, ...), series, labels, expected, detector,
description, tags, started_at, interval, key, basis (the baseline the detector compared the
value with, in words: "the median of the last 30 days"), and a FIRING's change, rarity and
precedent (`runtime.explain`): "value 820, 34 % below expected 1,240", "beyond 99.7 % of its
deviations in the last 14 days", "last similar: 2026-11-02 14:00, marked real incident";
during (the calendar events the period is in: "Black Friday campaign"); where (the segments
that moved it, with `explain:`: a list of {segment, value, expected, share, surprise}) and
where_text (the "Where:" lines of the default message).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import structlog

from detectkd.alerting.alert import Alert
from detectkd.durations import format_duration
from detectkd.timegrid import local_time

log = structlog.get_logger("detectkd.alerting")
WHY = ("change", "rarity", "precedent")  # a FIRING's "Why:" line, in this order


def variables(alert: Alert) -> dict[str, Any]:
    tz = ZoneInfo(alert.timezone)
    return {
        "metric_name": alert.metric,
        "timestamp": local_time(alert.period, tz),
        "value": alert.value,
        "is_anomaly": alert.status == "firing",
        "score": alert.score,
        "lower_bound": alert.lower,
        "upper_bound": alert.upper,
        "direction": alert.direction,
        "percent_deviation": alert.deviation_percent,
        "metadata": {"detector": alert.detector, **alert.detector_params, **alert.extra},
        "execution_time": local_time(alert.period + alert.interval_seconds, tz),
        "status": alert.status,
        "kind": alert.kind,
        "headline": alert.headline,
        "series": alert.series,
        "labels": alert.labels,
        "expected": alert.expected,
        "detector": alert.detector,
        "description": alert.description,
        "tags": list(alert.tags),
        "started_at": local_time(alert.started_at, tz),
        "interval": format_duration(timedelta(seconds=alert.interval_seconds)),
        "key": alert.key,
        "url": alert.url,
        "extra": alert.extra,
        "peers": alert.extra.get("peers"),
        "basis": alert.extra.get("basis"),
        "revised": alert.revised,
        "reason": alert.extra.get("reason"),
        **{k: alert.extra.get(k) for k in WHY},
        "during": alert.extra.get("during"),
        "where": alert.extra.get("where"),
        "where_text": "\n".join(where_lines(alert.extra)),
        "inf": math.inf,  # DetectK's templates test `score == inf`
    }


def _num(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.4g}" if abs(x) < 1e15 else f"{x:.3e}"


_KIND_LINES = {
    "nodata": "No value since {since}.",
    "flapping": "Changing state too often since {since}: notifications are held until it settles.",
    "error": "Checks failing since {since}.",
    "source_down": "Source failing for many metrics since {since}.",
}


def default_text(alert: Alert, escape: Any = str) -> str:
    """Plain default message; `escape` neutralises user data for the target format."""
    tz = ZoneInfo(alert.timezone)
    clock = "%Y-%m-%d %H:%M:%S %Z" if alert.interval_seconds % 60 else "%Y-%m-%d %H:%M %Z"
    when = local_time(alert.period, tz).strftime(clock)
    name = escape(alert.metric) + (f" {{{escape(alert.series)}}}" if alert.series else "")
    lines = [f"[{alert.headline}] {name}"]
    if alert.kind != "anomaly":
        since = local_time(alert.started_at, tz).strftime(clock)
        lines.append(_KIND_LINES[alert.kind].format(since=since))
        lines.extend(f"{k.capitalize()}: {escape(v)}" for k, v in sorted(alert.extra.items()) if v)
        lines.append(f"Period: {when}")
        if alert.url:
            lines.append(f"Link: {alert.url}")
        return "\n".join(lines)
    if alert.revised and alert.extra.get("reason"):  # retracted / late (runtime.recheck)
        lines.append(f"Note: {escape(alert.extra['reason'])}")
    lines.append(f"Value: {_num(alert.value)}")
    if alert.lower is not None or alert.upper is not None:
        lines.append(f"Expected range: {_num(alert.lower)} .. {_num(alert.upper)}")
    if alert.expected is not None:
        dev = alert.deviation_percent
        extra = f" ({dev:+.1f}%)" if dev is not None else ""
        lines.append(f"Expected: {_num(alert.expected)}{extra}")
        if alert.extra.get("basis"):  # which baseline judged, in words (alerting.why)
            lines.append(f"Baseline: {escape(alert.extra['basis'])}: {_num(alert.expected)}")
    if alert.status == "firing" and (said := [str(alert.extra[k]) for k in WHY if alert.extra.get(k)]):
        lines.append(f"Why: {escape('; '.join(said))}")
    if alert.score is not None and alert.status == "firing":
        lines.append(
            f"Score: {alert.score:.2f} (0.50 is the alarm line, 1.00 the most anomalous), "
            f"detector: {escape(alert.detector or '-')}"
        )
    lines.extend(where_lines(alert.extra, escape))
    if "peers" in alert.extra:
        share, judged = alert.extra.get("peer_share", 0.0), alert.extra.get("peers_judged", 0)
        lines.append(f"Peers: {alert.extra['peers']} ({share:.0%} of {judged} peers deviate the same way)")
    if alert.extra.get("during"):  # a calendar's events (config.calendars)
        like = alert.extra.get("judged_like")
        lines.append(
            f"During: {escape(alert.extra['during'])}" + (f" (judged like a {like})" if like else "")
        )
    lines.append(f"Period: {when}")
    if alert.url:
        lines.append(f"Link: {alert.url}")
    return "\n".join(lines)


def where_lines(extra: dict[str, Any], escape: Any = str) -> list[str]:
    """The "Where:" block: the segments that moved the total (`explain:`), or why not."""
    if extra.get("where_error"):
        return [escape(str(extra["where_error"]))]
    if extra.get("where_spread"):
        return ["Where: spread over all segments alike (no segment stands out)"]
    found = extra.get("where")
    if not isinstance(found, list) or not found:
        return ["Where: no segment stands out"] if isinstance(found, list) else []
    out = ["Where:"]
    for i, f in enumerate(found[:3], 1):
        seg = ", ".join(f"{k}={v}" for k, v in dict(f.get("segment") or {}).items())
        value, expected = f.get("value"), f.get("expected")
        dev = f" ({(value - expected) / abs(expected):+.0%})" if value is not None and expected else ""
        out.append(
            f"  {i}. {escape(seg)}: {_num(value)}, expected {_num(expected)}{dev}, "
            f"{float(f.get('share') or 0):.0%} of the change"
        )
    return out


class MessageRenderer:
    """Renders a channel's `message_template`, or the default text."""

    def __init__(self, template: jinja2.Template | None, escape: Any = str) -> None:
        self._template = template
        self._escape = escape

    def render(self, alert: Alert) -> str:
        if self._template is None:
            return default_text(alert, self._escape)
        values = variables(alert)
        values["series"] = self._escape(alert.series)
        values["labels"] = {k: self._escape(v) for k, v in alert.labels.items()}
        try:
            return self._template.render(**values)
        except Exception as exc:  # as DetectK does: the default text, never a lost alert
            log.warning(
                "message_template failed, default text sent",
                metric=alert.metric,
                series=alert.series,
                error=f"{type(exc).__name__}: {exc}",
            )
            return default_text(alert, self._escape)

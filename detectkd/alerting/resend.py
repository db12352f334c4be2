"""Re-sending active alerts to Alertmanager, the way Prometheus does.

Alertmanager treats an alert it has not heard of since its `endsAt` as resolved. So while
an alert is active (an anomaly whose FIRING was sent and not yet resolved, a NODATA or a
flapping notice), each live run of its metric re-sends it to the metric's Alertmanager
alerters once `resend_delay` has passed since the last send, and every send sets
`endsAt = now + 4 x max(resend_delay, interval)` (`alerting.channels.alertmanager`). A
daemon that dies for good, a metric whose runs fail, a shard that moved: Alertmanager ends
their alerts by itself within that time. Re-sends carry the same labels (one alert in
Alertmanager, from every replica), go through the outbox like every notification, and
reach only Alertmanager alerters; other channels get one FIRING and one RESOLVED.

When a re-send is due is counted in periods (`SeriesState.resent_at`, stored with the
alert state), so a restart neither re-sends everything at once nor forgets the schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Protocol

from detectkd.alerting.state import Notice, SeriesState, Status

KIND = "alertmanager"


class Alerter(Protocol):
    """What this module reads of an alerter (`specs.model.AlerterSpec`)."""

    @property
    def type(self) -> str: ...
    @property
    def params(self) -> object: ...


def every(alerters: Sequence[Alerter], interval: timedelta) -> int:
    """Seconds between re-sends of a metric's alerts: the shortest `resend_delay` of its
    Alertmanager alerters, at least its interval (a run is when it can re-send); 0: none."""
    delays = [getattr(a.params, "resend_delay", None) for a in alerters if a.type == KIND]
    found = [d.total_seconds() for d in delays if isinstance(d, timedelta)]
    return int(max(min(found), interval.total_seconds())) if found else 0


def active(state: SeriesState) -> list[Notice]:
    """The series' alerts a receiver was told about and not yet told are over."""
    out = []
    if state.status is Status.FIRING and state.notified_since is not None:
        out.append(Notice("firing", state.notified_since))
    if state.nodata_notified is not None:
        out.append(Notice("firing", state.nodata_notified, "nodata"))
    if state.flap_notified is not None:
        out.append(Notice("firing", state.flap_notified, "flapping"))
    return out


def due(
    state: SeriesState, notices: list[Notice], period: int, every_s: int
) -> tuple[SeriesState, list[Notice]]:
    """What to re-send at `period` (none when this period sent a FIRING: that was the send)
    and the state that remembers it."""
    if any(n.status == "firing" for n in notices):
        return replace(state, resent_at=period), []
    owed = active(state)
    if not owed:
        return (replace(state, resent_at=None) if state.resent_at is not None else state), []
    if state.resent_at is not None and period - state.resent_at < every_s:
        return state, []
    return replace(state, resent_at=period), owed

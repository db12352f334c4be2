"""Feedback on anomalies and alerts: a person says "real incident" or "false alarm".

A label is about one series of one metric, from the period it was put on to `until`
(the last period of an alert's span; the same period for a single anomaly). It is kept
in the state store, keyed by (metric, series, period): labelling the same point again
replaces the label, deleting it removes it. `detectkd backtest` compares a config's
verdicts with these labels (`score`): a labelled incident is a hit when the config flags
at least one period of its span; a labelled false alarm is still raised when it does.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

INCIDENT = "incident"
FALSE_ALARM = "false_alarm"
LABELS = (INCIDENT, FALSE_ALARM)
MAX_NOTE = 500
MAX_SPAN_S = 90 * 86400  # a label's span: longer is a mistake (a whole quarter marked)


class FeedbackError(ValueError):
    pass


@dataclass(frozen=True)
class Feedback:
    metric: str
    series: str  # the series key ("" for a single-series metric)
    period: int  # epoch seconds: the anomaly's period, or the alert's first
    label: str  # INCIDENT or FALSE_ALARM
    until: int  # the last period it covers (== period for one point)
    by: str  # who said so (the authenticated user, or "api")
    at: float  # when
    note: str = ""

    def covers(self, period: int) -> bool:
        return self.period <= period <= self.until

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True, allow_nan=False)

    @staticmethod
    def from_json(text: str) -> Feedback:
        d = json.loads(text)
        return Feedback(
            str(d["metric"]),
            str(d["series"]),
            int(d["period"]),
            str(d["label"]),
            int(d.get("until", d["period"])),
            str(d.get("by", "")),
            float(d.get("at", 0.0)),
            str(d.get("note", "")),
        )


def make_feedback(body: dict[str, Any], by: str, now: float, moment: Callable[[Any], float]) -> Feedback:
    """A label from an API body: metric, series, period, label, until?, note?. Raises
    FeedbackError saying what is wrong."""
    try:
        metric, series = str(body["metric"]), str(body.get("series", ""))
        period = int(moment(body["period"]))
        until = int(moment(body["until"])) if body.get("until") is not None else period
    except KeyError as exc:
        raise FeedbackError(f"missing {exc.args[0]!r}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise FeedbackError(f"bad time: {exc}") from None
    label = str(body.get("label", ""))
    if label not in LABELS:
        raise FeedbackError(f"label must be one of {', '.join(LABELS)}, not {label!r}")
    if until < period or until - period > MAX_SPAN_S:
        raise FeedbackError("until must be after period, and within 90 days of it")
    note = str(body.get("note", ""))
    if len(note) > MAX_NOTE or len(series) > 2000:
        raise FeedbackError(f"note is limited to {MAX_NOTE} characters, series to 2000")
    return Feedback(metric, series, period, label, until, by, now, note)


@dataclass
class Score:
    """How a config's verdicts meet the labels of one metric."""

    incidents: int = 0
    hits: int = 0  # labelled incidents the config flags
    false_alarms: int = 0
    raised: int = 0  # labelled false alarms the config still flags
    missed: list[Feedback] = field(default_factory=list)
    still_raised: list[Feedback] = field(default_factory=list)


def score(labels: Iterable[Feedback], flagged: Callable[[Feedback], bool]) -> Score:
    """`flagged(label)`: does the config flag any period of the label's span."""
    s = Score()
    for fb in sorted(labels, key=lambda f: (f.period, f.series)):
        hit = flagged(fb)
        if fb.label == INCIDENT:
            s.incidents += 1
            s.hits += hit
            if not hit:
                s.missed.append(fb)
        else:
            s.false_alarms += 1
            s.raised += hit
            if hit:
                s.still_raised.append(fb)
    return s


def flagged_by(periods: dict[str, list[int]]) -> Callable[[Feedback], bool]:
    """`flagged(label)` over sorted anomalous periods per series."""

    def flagged(fb: Feedback) -> bool:
        ps = periods.get(fb.series, [])
        i = bisect.bisect_left(ps, fb.period)
        return i < len(ps) and ps[i] <= fb.until

    return flagged

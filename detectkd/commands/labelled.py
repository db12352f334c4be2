"""What `detectkd backtest` and `detectkd export` read of the feedback people gave.

`labelled` opens the daemon's state store (detectkd.yaml `storage`) and the metric's data
store, and returns the metric's labels in a range with what the stored detections said
of each label's span when it ran live (the metric's conditions combine them, as a run
does). `compare` prints how the backtested config meets the same labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from detectkd.alerting.feedback import Feedback, Score, flagged_by, score
from detectkd.alerting.state import decide
from detectkd.commands.check import metric_env
from detectkd.config.settings import Settings
from detectkd.detectors.base import Result
from detectkd.runtime.slot import data_store
from detectkd.specs.loader import MetricSpec
from detectkd.storage.factory import daemon_store
from detectkd.storage.sqlite import SqliteStore


@dataclass
class Labelled:
    labels: list[Feedback] = field(default_factory=list)
    live: dict[tuple[str, int], bool] = field(default_factory=dict)  # stored verdict per (series, period)
    stored: bool = True  # False: labels from a file (`--labels`), no stored verdicts to compare with


async def labelled(spec: MetricSpec, settings: Settings, start: float, finish: float) -> Labelled:
    """The labels meeting [start, finish) and the stored verdicts of their spans. Raises
    StorageError when a store cannot be read."""
    store = daemon_store(settings)
    if isinstance(store, SqliteStore) and not store.path.exists():
        return Labelled()  # no daemon ever ran with this config: nothing labelled (and no file made)
    async with metric_env(settings) as deps:
        texts = await deps.store.feedback_load(spec.name)
        labels = [f for f in map(Feedback.from_json, texts) if f.until >= start and f.period < finish]
        out = Labelled(labels)
        if not labels:
            return out
        data = await data_store(spec, deps)
        lo, hi = min(f.period for f in labels), max(f.until for f in labels) + 1
        found: dict[tuple[str, int], list[Result]] = {}
        for d in await data.read_detections(spec.name, lo, hi):
            found.setdefault((d.series, d.period), []).append(d.result)
    out.live = {k: decide(rs, spec.conditions).anomalous for k, rs in found.items()}
    return out


def compare(found: Labelled, anomalous: dict[str, list[int]], tz: ZoneInfo, out: TextIO) -> Score:
    """Print how the replayed config (its anomalous periods per series) meets the labels,
    next to what was stored live."""
    labels = found.labels
    if not labels:
        hint = "mark anomalies on the metric page, or POST /api/v1/feedback"
        hint = hint if found.stored else "none for this metric in the --labels files"
        print(f"feedback: no labels in this range ({hint})", file=out)
        return Score()
    now = score(labels, flagged_by(anomalous))
    stored: dict[str, list[int]] = {}
    for (series, period), anomalous_live in sorted(found.live.items()):
        if anomalous_live:
            stored.setdefault(series, []).append(period)
    live = score(labels, flagged_by(stored))

    def when(fb: Feedback) -> str:
        stamp = datetime.fromtimestamp(fb.period, tz).strftime("%Y-%m-%d %H:%M")
        return f"{stamp} {{{fb.series}}}" if fb.series else stamp

    print(
        f"feedback: {len(labels)} labels ({now.incidents} real incidents, {now.false_alarms} false alarms)",
        file=out,
    )
    if now.incidents:
        line = f"  real incidents caught: {now.hits} of {now.incidents}"
        line += f" (as stored: {live.hits})" if found.stored else ""
        if now.missed:
            line += "; missed: " + ", ".join(when(f) for f in now.missed[:10])
        print(line, file=out)
    if now.false_alarms:
        line = f"  false alarms raised:   {now.raised} of {now.false_alarms}"
        line += f" (as stored: {live.raised})" if found.stored else ""
        if now.still_raised:
            line += "; still raised: " + ", ".join(when(f) for f in now.still_raised[:10])
        print(line, file=out)
    return now

"""A history job: what a metric's first start loads (`runtime.history` works on it), its
progress, its stored form and what the API says of it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from detectkd.durations import in_words


@dataclass
class Job:
    metric: str
    start: int  # the next period to load
    until: int  # exclusive: the first period the live run judged
    total: int  # seconds of history to load, for progress
    fill: bool = False  # the rest of a staged warm-up's window, loaded newest first
    warm: bool = False  # a first start's warm-up the live runs wait for (not stored)
    error: str | None = None  # the last failed batch's error (not stored)
    failures: int = 0  # failed batches in a row (not stored)
    retry_at: float | None = None  # when a failed batch is retried (wall clock; not stored)
    seen: tuple[float, float] | None = None  # (monotonic, progress) when this process took it up
    many: bool = False  # the metric has `series_columns` (not stored)
    series: set[str] = field(default_factory=set)  # a many-series warm-up's series loaded so far (not stored)

    @property
    def done(self) -> bool:
        return self.start >= self.until

    @property
    def progress(self) -> float:
        if self.total <= 0:
            return 1.0
        return max(0.0, min(1.0, 1.0 - (self.until - self.start) / self.total))

    def to_json(self) -> str:
        return json.dumps({"start": self.start, "until": self.until, "total": self.total, "fill": self.fill})

    @classmethod
    def from_json(cls, metric: str, data: str) -> Job:
        d = json.loads(data)
        return cls(metric, int(d["start"]), int(d["until"]), int(d["total"]), bool(d.get("fill", False)))

    def api(self, step: float = 0) -> dict[str, Any]:
        """What `/api/v1/metrics` shows (`history`); `step`: the metric's interval in
        seconds, for the periods loaded of all (0: not said)."""
        out: dict[str, Any] = {"kind": "fill" if self.fill else "warm-up" if self.warm else "history"}
        out["progress"] = round(self.progress, 4)
        if self.fill:  # newest first: what is loaded is [until, the end)
            out |= {"loaded_from": iso(self.until), "from": iso(self.start)}
        else:
            out |= {"loaded_until": iso(self.start), "until": iso(self.until)}
        if step > 0:
            out["periods"] = self.periods(step)
        retry = iso(self.retry_at) if self.retry_at is not None else None
        out |= {"eta_seconds": self.eta(), "error": self.error, "retry_at": retry}
        return out | {"note": self.note(step)}

    def periods(self, step: float) -> list[int]:
        """[loaded, of all] periods."""
        total = round(self.total / step)
        return [min(total, round(self.progress * total)), total]

    def eta(self, now: float | None = None) -> float | None:
        """Seconds until done at the pace since this process took the job up (None: no pace
        yet, e.g. a warm-up loaded in one batch, or a failed batch waiting to be retried)."""
        if self.seen is None or self.error is not None:
            return None
        t0, p0 = self.seen
        moved, took = self.progress - p0, (time.monotonic() if now is None else now) - t0
        return round((1.0 - self.progress) * took / moved, 1) if moved > 0 and took > 0 else None

    def note(self, step: float = 0) -> str:
        """What is still loading, in words (the API's `warming`): periods loaded of all, the
        time left at the pace so far, a failed batch's error and when it is retried."""
        done = f"{self.progress:.0%}"
        if step > 0:
            loaded, total = self.periods(step)
            done = f"{loaded} of {total} periods, {done}"
        if (eta := self.eta()) is not None:
            done += f", about {in_words(eta)} more"
        if self.error is not None:
            at = f"; retried at {iso(self.retry_at)}" if self.retry_at is not None else ""
            done += f"; its last batch failed: {self.error}{at}"
        if self.fill:
            return f"judging; older history for the seasonal baselines and the reference loading ({done})"
        if self.warm:
            return f"warming up: its history is loading in the background ({done})"
        return f"history loading ({done})"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()

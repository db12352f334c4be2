"""A history job: what a metric's first start loads (`runtime.history` works on it), its
progress, its stored form and what the API says of it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


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

    def api(self) -> dict[str, Any]:
        if self.fill:  # newest first: what is loaded is [until, the end)
            return {
                "kind": "fill",
                "progress": round(self.progress, 4),
                "loaded_from": iso(self.until),
                "from": iso(self.start),
                "error": self.error,
                "note": self.note(),
            }
        return {
            "kind": "warm-up" if self.warm else "history",
            "progress": round(self.progress, 4),
            "loaded_until": iso(self.start),
            "until": iso(self.until),
            "error": self.error,
            "note": self.note(),
        }

    def note(self) -> str:
        """What is still loading, in words (the API's `warming`)."""
        pct = f"{self.progress:.0%}"
        if self.fill:
            return f"judging; older history for the seasonal baselines and the reference loading ({pct})"
        if self.warm:
            return f"warming up: the history it judges from is loading ({pct})"
        return f"history loading ({pct})"


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()

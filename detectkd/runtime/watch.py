"""Whether a metric judges (issue 28): what its newest run did with the newest period, per
series, in the words `/api/v1/metrics`, the overview and `/metrics` show. Pure.

Each series' newest period is one of:

- judged: it had a value and no detector was in cold start (a detector that skipped it for
  another reason, e.g. a calendar's `exclude`, still watched it);
- cold: a detector had too little history (`cold start: ...`);
- without data: the source returned no value for it (NODATA alerting goes on as before;
  a metric whose source is empty, or whose filter matches nothing, is not watched).

A metric judges when at least one of its series judged its newest period (a one-series
metric: that series). The series that did not are counted, and the first few (by key) are
named with their reason and, for a cold start that counts points, how many are stored and
when the rest would be in at one point a period (an estimate: a source that skips periods is
slower; a seasonal detector counts the points of one season, so it says nothing then).

While a run waits for its warm-up it judges nothing and asks the source nothing: every series
the warm-up has loaded so far is warming (`warming`), named with the job's periods n of m.
A series that appeared later and whose history is loading (`runtime.serieswarm`) is warming
too while it is cold, with its points stored of those it needs.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from detectkd.durations import in_words
from detectkd.runtime.judge import PointReport

SHOWN = 3  # series named in a reason and in `series_not_judging`
COLD = "cold start"
NO_DATA = "no data in the source for the newest period"
WARMING = "warming up: its history is loading from the source"
_NEEDS = re.compile(r"fewer than (\d+) points")


@dataclass(frozen=True)
class Watch:
    judged: int = 0
    cold: int = 0
    empty: int = 0
    unjudged: dict[str, str] = field(default_factory=dict)  # the first `SHOWN` series -> why not
    first_cold: str = ""  # a cold start's reason (the log line)
    warming: int = 0  # waiting for the metric's warm-up (`warming`)

    @property
    def total(self) -> int:
        return self.judged + self.cold + self.empty + self.warming

    @property
    def judging(self) -> bool:
        return self.judged > 0

    def counts(self) -> dict[str, int]:
        """The API's `judging_series`."""
        return {
            "judging": self.judged,
            "cold": self.cold,
            "no_data": self.empty,
            "warming": self.warming,
            "total": self.total,
        }


NOTHING = Watch(unjudged={"": NO_DATA})  # a run without a point for the newest period: no series at all


def watch(reports: Sequence[PointReport], newest: int, loading: Collection[str] = ()) -> Watch | None:
    """The newest period's series, classified; None when the run had no point for it. One
    pass over the reports (a run's points are walked once anyway, to judge them). `loading`:
    series whose history is loading (a cold one is warming)."""
    judged = cold = empty = warm = 0
    first_cold = ""
    why: list[tuple[str, str]] = []  # (series, reason) of the series not judged
    for pr in reports:
        if pr.point.period != newest:
            continue
        reason = None
        for r in pr.results:  # (a plain loop: this runs for every series of every check)
            if r.skipped is not None and r.skipped.startswith(COLD):
                reason = r.skipped
                break
        if reason is not None and loading and pr.point.series in loading:
            warm += 1
            reason = f"{WARMING}; {reason}"
        elif reason is not None:
            cold += 1
            first_cold = first_cold or reason
        elif pr.point.value is None:
            empty += 1
            reason = NO_DATA
        else:
            judged += 1
            continue
        why.append((pr.point.series, reason))
    if not judged + cold + empty + warm:
        return None
    shown = dict(heapq.nsmallest(SHOWN, why)) if len(why) > SHOWN else dict(sorted(why))
    return Watch(judged, cold, empty, shown, first_cold, warm)


def warming(series: Collection[str], note: str) -> Watch:
    """A metric whose runs wait for its warm-up: `series`, those its warm-up has loaded so far
    (a one-series metric: that one, loaded or not), each not judged for `note` (the job's)."""
    return Watch(warming=len(series), unjudged={s: note for s in heapq.nsmallest(SHOWN, series)})


def until(reason: str, stored: int, step_s: float) -> str:
    """A cold start's "until when": `stored` of the points the detector needs, and the time
    the rest takes at one point a period (`step_s` 0: no time, e.g. history is loading);
    "" when the reason counts no points."""
    m = _NEEDS.search(reason)
    if m is None:
        return ""
    need = int(m[1])
    if stored >= need:  # (e.g. a seasonal detector counts the points of one season): no estimate
        return ""
    more = f", about {in_words((need - stored) * step_s)} more at one a period" if step_s > 0 else ""
    return f"{stored} of {need} points stored{more}"


def described(w: Watch, stored: Callable[[str], int], step_s: float) -> dict[str, str]:
    """The series not judged, each with its reason and, for a cold start, its "until"."""
    out = {}
    for series, reason in w.unjudged.items():
        step = 0 if reason.startswith(WARMING) else step_s  # (its history comes sooner)
        more = until(reason, stored(series), step) if reason != NO_DATA else ""
        out[series] = f"{reason} ({more})" if more else reason
    return out


def reason(w: Watch, series: dict[str, str], why_cold: str) -> str | None:
    """Why the metric does not judge (None: it does). `series`: `described(w, ...)`;
    `why_cold`: why its detectors lack history (`coldstart.cold_start_reason`)."""
    if w.judging:
        return None
    if list(series) == [""]:  # one series: its reason
        line = series[""]
        return f"{line}: {why_cold}" if w.cold else line
    named = "; ".join(f"{s}: {r}" for s, r in series.items())
    more = w.total - len(series)
    parts = [
        f"{w.cold} in cold start" if w.cold else "",
        f"{w.warming} warming up" if w.warming else "",
        f"{w.empty} without data" if w.empty else "",
    ]
    head = f"none of its {w.total} series judged ({', '.join(p for p in parts if p)})"
    tail = f"; and {more} more" if more > 0 else ""
    return f"{head}: {named}{tail}" + (f"; {why_cold}" if w.cold else "")

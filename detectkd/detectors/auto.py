"""`auto`: the default detector. How unusual is this point *for this series*?

1. Baselines. Level: the median of the `window` points before the point's
   refresh block, spread 1.4826 x MAD (1.2533 x the mean absolute deviation
   when more than half of them are one value). Seasonal, for each cycle the
   history covers (a day and a week, from the metric's interval): the median
   of the values one, two, ... `cycles` cycles ago, plus the centre of the
   recent residuals from that median; its spread is the robust spread of
   those residuals.
2. The best fit judges. Of the baselines with enough data, the one whose residuals had the
   smallest mean absolute deviation gives z: on a seasonal series a seasonal baseline (a
   missing daily peak is an anomaly), on a series without seasonality the level.
3. Counts. When every value of the level window is a non-negative integer
   (orders, errors, events), z is computed on the square-root scale, where
   Poisson-like noise has the same spread at every level: a drop of a small
   count to a tenth is then as visible as a spike. z itself is a count's (`dispersion`): a
   negative binomial's, its dispersion from the residuals (`autocounts`).
4. Surprise. |z| divided by the `quantile` (0.995) of the |z| of the
   series' own previous `reference` (2,000) judged points, floored at
   `min_z` (4): a series whose deviations are routinely large must do
   something rarer than that; a calm one cannot alarm on a small wiggle.
   The reference moves with every point. `long_days` (`autolong`, off by default): the line is also
   at least the largest |z| of about that many days (a decayed histogram of |z|, 512 bytes).
5. Persistence. A point alarms alone only as a spike (surprise >= `spike` x the line, 3; `autospikes`: options
   to hold routine ones); otherwise the previous judged point must have been beyond the line too (the smaller
   of the two surprises counts; `autopairs`: and a short mean, and no hour whose |z| ran as large).
6. Range break. A value beyond the range of the series' recent values (those within the
   `range_window` (4,000) intervals before its block, at least a week and a day, at most what
   a live check holds before the block; by time: missing values make it hold fewer, live and
   in a replay alike) alarms alone, like a spike, if it
   is beyond by `range_tolerance` (5 %) of the range's width and by
   `range_spreads` (1) spreads of the judging baseline, and its |z| is at
   least `range_gate` (0.5) x `min_z` (in |z|, not in lines: a line inflated
   by a recent step does not hide the next one). Guards: the range's edges move
   on by the drift of the window's mean (recent half against older half: a
   growing metric makes new highs without news); a count must leave its range
   by more than one; breaks count once the window holds `range_min` (200).
6b. Stuck value (`autostuck`, off by default): a run of `stuck` equal values outlasting any lately alarms.
6c. Line and range (`autonovel`, off by default): a point beyond the line, short of a spike, alarms alone
   (a lone one too) when also beyond every one of the last `line_range` values.
7. Novelty. In a run of alarming points the surprise halves every `fade` (6) points after the first: a
   sustained change is news at its start, and the score comes down while the baselines learn the new level.
7b. Sustained deviation (`autosustain`, off by default): the median of the last `sustain` |z| alarms alone
   when beyond every such median of the `reference` points before by `sustain_margin`, and beyond min_z / 2
   and a one-in-ten |z| of them: a jump of the typical deviation (a small shift, a grown spread).
8. Rest. After a run of alarms, for `rest` (100) judged points a new alarm needs a surprise greater than
   the run's peak (a pair on its side: `rest_margin` x, so a bursty series' aftershock within that is the
   same episode); lesser ones are held below the line (score <= 1/3): one change, one page. An alarm within
   the line (stuck, sustained) arms no side.
9. Score = surprise / (surprise + `threshold`): 0.5 on the alarm line, monotone, never infinite. Bounds:
   expected +/- the alarm line in value units (back-transformed for counts, never below 0).

Baselines are refreshed every `refresh` periods on the absolute interval grid (a block), from the
`window` points with values before the block's start; the alarm line moves with every point. So every
point's judgement depends only on points before it, live and in a replay (`detect_many`: array
operations). The recent |z|, the run length and the rest period are derived state, kept per series (in
the restart snapshot), rebuilt from stored history after a restart without one.
Staged (a first start, `autostage`): it judges from `judge_seconds` of history on the
level alone; the seasonal baselines switch on as older history fills in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import pairwise, repeat

import numpy as np

from detectkd.detectors import (
    autocounts,
    autofit,
    autolong,
    autonovel,
    autopairs,
    autorebuild,
    autorefit,
    autospikes,
    autostuck,
    autosustain,
    autoweeklyfit,
)
from detectkd.detectors.autofit import Judged
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostage import judgeable, staged_basis
from detectkd.detectors.autostate import BlockFit, Memo, kept, ring_array
from detectkd.detectors.autostate import line as quantile_line
from detectkd.detectors.autoweeklyfit import Weekly
from detectkd.detectors.base import (
    Current,
    Direction,
    FloatArray,
    History,
    IntArray,
    Result,
    StateArray,
    skipped,
)

DAY, WEEK = 86400, 7 * 86400


class AutoDetector:
    # What `export_state` means (`StatefulDetector`): bump it with any change that makes the state kept
    # for the same points differ (another quantity in the ring, a scalar added, one read otherwise, another
    # rest or run rule): a snapshot of a build before is then rebuilt (`runtime.snapshot.fingerprint`).
    # 2: `rest_pairs`; 3: `long_days`; 4: the hold skips its alarm's run; 5: `rest_margin`; 6-8: held runs;
    # 9: `weekly_profile`; 10: it on by default (a snapshot of 9 has no profile: rebuilt, not refused);
    # 11: `pair_hour` on by default; 12: `trend` on by default (one-minute data).
    STATE_VERSION = 12

    def __init__(self, p: Params, interval_seconds: int, detector_id: str = "auto") -> None:
        self.p, self.id = p, detector_id
        self.step = max(1, interval_seconds)
        cycles = (DAY, WEEK) if p.seasonal else ()
        self.periods = [
            c // self.step
            for c in cycles
            if c % self.step == 0 and c // self.step >= 2 and c // self.step * p.cycles <= p.max_history
        ]
        self.block = p.refresh * self.step
        read = p.window + max(self.periods, default=0) * p.cycles + p.reference + p.refresh
        week = (WEEK + DAY) // self.step  # a week and a day: last week's peak is inside
        # The range window, by time: what a live check holds before its block for every point of it.
        self.range_points = min(max(p.range_window, week), read - p.refresh) if p.range_window else 0
        # A stuck run's window (`autostuck`) must hold a week and a day before the run (a weekly
        # rest is no record), the run and the window's first value beside it in `read - 1` values:
        # 0 (off) where `auto` reads less (3 minutes and under, unless `max_history` reaches a week).
        self.read, self.stuck_need = read, week if read - 2 - week >= p.stuck else 0
        self.stuck_span = (read - 1) * self.step  # by time: the previous point's window is in a live one
        self.reach = read * self.step  # what a live check's history holds (`window_seconds`, `autospikes`)
        self._memo: dict[str, Memo] = {}
        # `long_days` (`autolong`): points in its half-life; a rebuild judges all it can then.
        self.long_half = p.long_days * DAY / self.step
        self.hour = autopairs.hour_window(self.step, p)  # `pair_hour`'s days back in the ring (None: off)
        self.long_lag = min(max(p.rest, 1), p.reference - 1)  # a point enters it after its rest period
        self.rebuild_points = max(p.rebuild, read) if p.long_days else p.rebuild
        # A calendar's `like` days (`detectors.calendared`): seconds back to the named weekday.
        self.like_shift: Callable[[IntArray], IntArray] | None = None

    def window_seconds(self, interval_seconds: int) -> int:
        return self.read * interval_seconds  # window + cycles x the longest period + reference + refresh

    def judge_seconds(self, interval_seconds: int) -> int:  # `min_samples` before a block (`autostage`)
        return (self.p.min_samples + self.p.refresh) * interval_seconds

    def feature_names(self) -> tuple[str, ...]:
        return ()

    def forget(self, series: str) -> None:
        self._memo.pop(series, None)

    # a run rolled back (RollbackDetector): the weekly profile as it was before the run
    checkpoint, rolled_back = autoweeklyfit.checkpoint, autoweeklyfit.restored

    # -- kept across a restart (StatefulDetector) ------------------------------------------

    def state_series(self) -> list[str]:
        return list(self._memo)

    def export_state(self, series: str) -> tuple[StateArray, tuple[float, ...]] | None:
        m = self._memo.get(series)
        return autoweeklyfit.exported(self, m) if m is not None else None

    def import_state(self, series: str, data: StateArray, scalars: tuple[float, ...]) -> None:
        p, half, weekly = self.p, self.long_half, self.step if autoweeklyfit.on(self) else 0
        self._memo[series] = Memo.imported(p.reference, data, scalars, p.sustain, half, p.long_count, weekly)

    # -- the judgement -------------------------------------------------------------------

    def detect(self, history: History, point: Current) -> Result:
        if len(history) and point.time <= history.times[-1]:  # a re-check: only what came before it
            end = int(np.searchsorted(history.times, point.time, side="left"))  # (releases the GIL)
            history = History(history.times[:end], history.values[:end], {})
        return self.detect_many(history, [point])[0]

    def detect_many(self, history: History, points: Sequence[Current]) -> list[Result]:
        """Judge consecutive points of one series, each against the history before it and
        the points of `points` before it: the same results as `detect` one by one."""
        if not points:
            return []
        series = points[0].series
        last = int(history.times[-1]) if len(history) else None
        new_t = [p.time for p in points]
        ordered = all(a < b for a, b in pairwise(new_t))
        if not ordered or (last is not None and new_t[0] <= last) or any(p.series != series for p in points):
            out = []
            for p in points:  # unusual input (re-checks, mixed series): one at a time
                out.append(self.detect(history, p))
                history = history.appended(p)
            return out
        times = np.concatenate([history.times, np.asarray(new_t, np.int64)])
        vals = [math.nan if p.value is None else p.value for p in points]
        values = np.concatenate([history.values, np.asarray(vals, np.float64)])
        memo = self._memo_for(series, history.times, history.values, history.revision)
        first = len(history)
        idx = first + np.flatnonzero(np.isfinite(values[first:]))
        judged = self._judge(times, values, idx, memo, history.revision)
        held, line = self._surprises(memo, judged.z, judged.breaks)
        memo.last = int(times[idx[-1]]) if idx.size else memo.last
        out = self._results(points, first, idx, judged, held, line)
        return staged_basis(self, times, values, first, idx, judged.basis, out)

    def _results(
        self,
        points: Sequence[Current],
        first: int,
        idx: IntArray,
        j: Judged,
        held: FloatArray,
        line: FloatArray,
    ) -> list[Result]:
        out: list[Result | None] = [None] * len(points)
        thr = self.p.threshold
        cold = f"cold start: fewer than {self.p.min_samples} points"
        band = line * j.spread
        lo, hi = j.expected - band, j.expected + band
        for k, (i, z, s) in enumerate(zip((idx - first).tolist(), j.z.tolist(), held.tolist(), strict=True)):
            value = points[i].value
            if z != z:  # NaN: no baseline yet
                out[i] = skipped(self.id, value, cold)
                continue
            e, a, b = float(j.expected[k]), float(lo[k]), float(hi[k])
            if j.counts[k]:
                e, a, b = autocounts.bounds(e, a, b, float(j.disp[k]))
            anomaly = s >= thr
            direction: Direction = ("up" if z > 0 else "down") if anomaly else None
            score = 1.0 if not math.isfinite(s) else s / (s + thr)
            out[i] = Result(self.id, value, anomaly, score, e, a, b, direction)
        return [r if r is not None else skipped(self.id, None, "missing value") for r in out]

    def _judge(
        self, times: IntArray, values: FloatArray, idx: IntArray, memo: Memo | None = None, revision: int = 0
    ) -> Judged:
        """z of the points at `idx` (all with values), each against the baselines of its block
        (fitted on the `window` points with values before the block's start: an outage does
        not shrink the window), on the square-root scale where that window is all counts.
        With `memo` and a known `revision`, the newest block's fit is kept for the next points
        of that block (live checks: one fit per block, not per point, a full window's trimmed
        start included, `autofit.fit_key`; the first check after a rebuild of `memo` takes the
        rebuild's)."""
        kept = np.isfinite(values)
        if not kept.all():
            position = np.cumsum(kept) - 1
            times, values, idx = times[kept], values[kept], position[idx]
        n = idx.size
        if n == 0:
            e, no = np.empty(0), np.zeros(0, bool)
            return Judged(e, e, e, no, no, np.zeros(0, np.int64), e)
        blocks, inv = np.unique(times[idx] // self.block * self.block, return_inverse=True)
        starts = np.searchsorted(times, blocks, side="left")
        s0, block = int(starts[-1]), int(blocks[-1])  # the newest block: what the next check reuses
        fit = None
        if (
            memo is not None
            and revision
            and blocks.size == 1
            and autofit.holds(memo.fit_key, times, s0, block, revision)
        ):
            fit = memo.fit
        weekly = autoweeklyfit.prepared(self, memo, times, values, blocks, starts, idx, fit is None)
        if fit is None:
            fit = self._block_fit(times, values, starts, weekly)
            if memo is not None and revision:
                memo.fit_key = autofit.fit_key(self, times, s0, block, revision)
                memo.fit = fit if blocks.size == 1 else fit.newest()
        judged = autofit.apply(self, times, values[None, :], idx, inv, fit, weekly)  # breaks: 2 stuck, 4 seen
        span, need = self.stuck_span, self.stuck_need
        judged = autostuck.marked(judged, times, values, idx, span, self.step, need, self.p)
        judged = autonovel.marked(judged, times, values, idx, self.p, self.reach)
        return autospikes.seen(judged, times, values, idx, self.step, self.p.cycles, self.p, self.reach)

    def _block_fit(
        self, times: IntArray, values: FloatArray, starts: IntArray, weekly: Weekly | None = None
    ) -> BlockFit:
        """Per block: counts or not, enough data, per scale and baseline the window's residuals' fit."""
        return autofit.block_fit(self, times, values[None, :], starts, weekly)

    def _surprises(self, memo: Memo, z: FloatArray, breaks: np.ndarray) -> tuple[FloatArray, FloatArray]:
        """Per judged point in order (`z`: signed, or |z| where the side does not matter): the
        surprise after persistence, range breaks and the rest period, and the alarm line (in
        |z|): the quantile of the |z| of the `reference` judged points before it. Moves `memo`
        past them."""
        p = self.p
        floor, spike, thr = max(p.min_z, 1e-9), p.spike * p.threshold, p.threshold
        fade = 0.5 ** (1.0 / p.fade) if p.fade > 0 else 1.0
        gate = p.range_gate * floor  # in |z|: a line inflated by a recent shift does not gate
        az = kept(np.abs(z))  # as the ring keeps them
        sustained: Iterable[float] = repeat(0.0, az.size)  # off (the default): no work per check
        if p.sustain:  # the median of the last `sustain` |z| beyond any of the recent past
            found, memo.medians = autosustain.surprises(
                memo.ring(),
                memo.medians,
                az,
                p.sustain,
                memo.size,
                0.5 * floor,
                p.sustain_margin,
                p.min_samples,
            )
            sustained = found.tolist()
        held, lines = np.empty(az.size), np.empty(az.size)
        prev, run, rest, level, alarmed = memo.surprise, memo.run, memo.rest, memo.level, memo.alarmed
        side = memo.side
        ordered = memo.sorted()  # for this judgement only (issue 28)
        hour = self.hour
        if p.long_days and memo.long is None:
            memo.long = autolong.LongTail(self.long_half, p.long_count)
        long = memo.long if p.long_days else None
        for k, (a, signed, brk, sus) in enumerate(
            zip(az.tolist(), z.tolist(), breaks.tolist(), sustained, strict=True)
        ):
            line = max(quantile_line(ordered, p.quantile, p.min_samples), floor) * thr
            if long is not None:  # and at least the largest |z| of about `long_days`
                line = max(line, long.line() * thr)
            s = a / line if a == a else 0.0
            broke = brk & 2 or (brk & 1 and a >= gate) or (brk & 8 and thr <= s < spike)  # 2 (stuck): no |z|
            b = max(s, spike) if broke else s  # a range break alarms alone, and rests (and is held)
            own = s / b if p.rest_breaks and brk & 1 and not brk & 2 and s < b else 1.0  # at its s
            h = b if b >= spike else min(b, prev)
            # the side of a point beyond the line (0 within it: a stuck run's, a sustained median's)
            sign = (signed > 0) - (signed < 0) if a >= line * thr else 0
            # Resting, only a greater surprise alarms anew (a pair on the alarm's side: `rest_margin` x)
            margin = p.rest_margin if sign == side and b < spike and not broke and not sus else 1.0
            fresh = run <= 0  # would start a run (below 0: the points held from starting one)
            if p.pair_mean and thr <= h < spike and fresh:  # a pair: its short mean against the ring's
                h = min(h, autopairs.surprise(memo, a, p.pair_mean, p.quantile, p.min_samples) / thr)
            if (p.risk or p.spike_risk or brk & 4) and h >= thr and fresh and not broke:
                h = autospikes.gated(memo, ordered, a, s, prev, h, brk & 4, p)  # routine for it: held
            if hour and thr <= h < spike and fresh and not broke:  # a pair: held at an hour whose |z| ran so
                h = autopairs.at_hour(memo, a, h, hour, p)
            raw = h
            if sus:  # a sustained deviation alarms alone
                h, raw = max(h, sus * thr), max(raw, sus * thr)
            if rest > 0 and fresh and h * own <= level * margin:  # held before it starts a run (news
                h = min(h, 0.5 * thr)  # climbs out of the hold at full strength); its points count
            up = run + 1 if run > 0 else 1 - run if rest == 0 else 1  # apart, below 0, and the run goes on
            run = up if h >= thr else min(run, 0) - 1 if raw >= thr else 0  # from them after
            h = h * fade ** (run - 1) if run > 1 else h  # a run of alarms fades
            if rest > 0:
                rest -= 1
                if h * own <= level * margin and not alarmed:  # (the alarm's own run goes on)
                    h = min(h, 0.5 * thr)
            if h >= thr:  # the rest period runs from the run's last alarm, at its peak
                rest, level, side = p.rest, max(h * own, level) if alarmed else h * own, sign
            alarmed = h >= thr
            held[k], lines[k] = h, line
            memo.push(min(a, line * thr) if 0 < p.decluster <= abs(run) and prev >= thr else a, ordered)
            prev = s
            if long is not None and len(memo.recent) > self.long_lag:  # the point `long_lag` back
                long.add(memo.back(self.long_lag))
        memo.surprise, memo.run, memo.rest, memo.level, memo.alarmed = prev, run, rest, level, alarmed
        memo.side = side
        return held, lines

    # -- derived state ------------------------------------------------------------------

    def _memo_for(self, series: str, times: IntArray, values: FloatArray, revision: int = 0) -> Memo:
        """The |z| of the previous points; rebuilt from history when it does not line up."""
        memo, last = self._lined_up(series, times, values)
        if memo is not None:
            return memo
        memo = self._memo[series] = autoweeklyfit.fresh(self.p.reference, self._memo.get(series))
        first = max(0, times.size - self.rebuild_points)
        idx = first + np.flatnonzero(np.isfinite(values[first:]))
        z, breaks = np.full(idx.size, np.nan), np.zeros(idx.size, np.int8)
        some = judgeable(self, times, values, idx)  # the others are a cold start: NaN
        judged = self._judge(times, values, idx[some], memo, revision)  # keeps its newest block's fit
        z[some], breaks[some] = judged.z, judged.breaks
        self._rebuild(memo, z, breaks)
        memo.last = last
        return memo

    def _lined_up(self, series: str, times: IntArray, values: FloatArray) -> tuple[Memo | None, int | None]:
        """The series' memo if it lines up with the history (else None), and the history's
        newest time with a value."""
        memo = self._memo.get(series)
        if values.size and math.isfinite(values[-1]):  # the usual case: no O(n) scan
            last: int | None = int(times[-1])
        else:
            finite = np.flatnonzero(np.isfinite(values))
            last = int(times[finite[-1]]) if finite.size else None
        return (memo if memo is not None and memo.last == last else None), last

    def prepare(
        self,
        histories: Iterable[tuple[str, Callable[[], History]]],
        points: Mapping[str, Sequence[Current]] | None = None,
    ) -> None:
        """Rebuild the state of the series whose state does not line up with their history
        (a first run), the series on one time grid at once (`autorebuild`); then, with the
        run's `points`, fit together the new block of the series whose one point opens it
        (`autorefit`)."""
        pairs = list(histories)
        autorebuild.prepare(self, pairs)
        if points is not None:
            autorefit.refit(self, pairs, points)

    def _rebuild(self, memo: Memo, z: FloatArray, breaks: np.ndarray, tail: int = 512) -> None:
        """`_surprises` over a fresh memo for the points' z (signed), the per-point loop only for the last
        `tail` points (a restart's cost; with `decluster` every point, the ring as the loop makes it):
        the ring before them is their |z|; persistence, fading and the rest period start calm there.
        Exact unless an alarm's run or rest reaches back beyond them."""
        size, cut = memo.size, max(0, z.size - (z.size if self.p.decluster else tail))
        if self.p.long_days:  # the long memory of the points before the ring's (`autolong`)
            memo.long = autolong.LongTail(self.long_half, self.p.long_count)
            before = np.abs(z[: max(0, cut - self.long_lag)])  # those that entered before the loop
            memo.long.extend(kept(before))  # as the ring keeps them
        if not (self.p.sustain or self.p.risk or self.p.decluster):  # calm points in bulk (`autorebuild`)
            autorebuild.replay(self, memo, z[max(0, cut - size) :], breaks[cut:])
            return
        memo.recent = ring_array(np.abs(z[max(0, cut - size) : cut]))
        if self.p.sustain:  # from the ring as stored (single precision), as a live check reads it
            memo.medians = autosustain.medians(memo.ring(), self.p.sustain)
        self._surprises(memo, z[cut:], breaks[cut:])


def build(p: Params, interval_seconds: int, detector_id: str | None) -> AutoDetector:
    return AutoDetector(p, interval_seconds, detector_id or "auto")

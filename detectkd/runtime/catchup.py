"""A metric's memory from the snapshot, caught up with what the store holds after it.

The snapshot (`runtime.snapshot`, written at SIGTERM and every `snapshot_interval` in the
background) records per metric the watermark its memory was in step with. At a metric's
first run after a start:

- the same watermark as the store's: memory is taken as it is (a graceful restart);
- an older one (a `kill -9`, a crash, another replica ran meanwhile): memory is taken and
  the points the store holds after it are judged into it, one period at a time as the live
  runs did, so windows and detector state (`auto`'s recent |z|, its run and rest period)
  end exactly where a daemon that never stopped left them. Nothing is committed or
  notified: those periods were judged and their alerts sent before the crash;
- anything else (no usable entry, a newer watermark than the store's, a gap longer than
  the window, points not stored at all): False, and the runner reads the window from the
  store and rebuilds, as without a snapshot.

Late data (`completeness.recheck`, `runtime.recheck`) rewrites values of periods at or
before the watermark without moving it: a revision committed after the snapshot was written
is in the store but not in the snapshot. So for a metric with `recheck` the catch-up's one
read starts `recheck` before the snapshot's watermark (the oldest period a recheck after it
may have revised), and a stored value there that differs from the snapshot's makes the
metric rebuild from the store (logged: `restart snapshot part revised since`), which holds
the revised value. No store column or marker is needed: the store's points are the record
of what was revised, and a revision is rare enough that a rebuild of its metric is cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import structlog

from detectkd.collectors.points import Point
from detectkd.runtime.batch import absent
from detectkd.runtime.freshseries import read_series
from detectkd.runtime.judge import judge
from detectkd.runtime.memory import Saved, SeriesMemory
from detectkd.runtime.offloop import sized  # a catch-up of many points is judged in a thread
from detectkd.runtime.windows import EPOCH
from detectkd.storage.base import StoredPoint

if TYPE_CHECKING:
    from detectkd.runtime.runner import MetricRuntime

log = structlog.get_logger("detectkd")


async def resume(rt: MetricRuntime, saved: Saved, watermark: int | None, before: int) -> bool:
    """Memory from `saved` and the stored points after its watermark, up to `before` (the
    first period the run judges); False when the window must be read from the store."""
    mem, grid = rt.memory, rt.grid
    if watermark is None or saved.watermark > watermark:
        return False
    stored_ok = rt.spec.storage.enabled
    since = _revisable(rt, saved.watermark) if stored_ok else None  # (None: no recheck)
    start = grid.next(saved.watermark)
    if saved.watermark < watermark and (not stored_ok or start <= before - rt.span):
        return False  # nothing stored to catch up from, or the snapshot is older than the window
    if not _read(rt, saved):
        return False
    if saved.watermark == watermark and since is None:
        mem.adopt(saved, before - rt.span)
        await _unsaved(rt, start)
        mem.caught_up = 0
        return True
    try:
        stored = await (await rt.data()).read_points(rt.name, None, start if since is None else since, before)
        size = sum(len(pts) for pts in stored.values()) if since is not None else 0  # many: a thread
        if (
            since is not None
            and (revised := await sized(size, _revised, rt, saved, stored, start)) is not None
        ):
            series, period = revised
            log.info("restart snapshot part revised since", metric=rt.name, series=series, period=period)
            return False  # read from the store, which holds the revised value
        if saved.watermark == watermark:
            mem.adopt(saved, before - rt.span)
            await _unsaved(rt, start)
            mem.caught_up = 0
            return True
        mem.adopt(saved, saved.watermark - rt.span)  # all of it: as the live window held it
        await _unsaved(rt, start)
        points = _points(stored, start)
        await sized(len(points), feed, rt, points, start, before)
    except BaseException:
        mem.reset()
        mem.saved = saved  # the next run tries again
        raise
    mem.caught_up = len(points)
    _drop_forgotten(rt, before)
    return True


async def _unsaved(rt: MetricRuntime, start: int) -> None:
    """The windows, up to `start` (the period after the snapshot's watermark), of series with
    an alert state that the snapshot left out: a late series whose history was loading or
    stored and not read back yet (`runtime.freshseries`), whose loaded points lie before the
    watermark. Read from the store as a start without a snapshot reads them."""
    mem = rt.memory
    missing = sorted(s for s in rt.states if s not in mem.windows)
    if not missing or not rt.spec.storage.enabled:
        return
    store = await rt.data()
    read = await read_series(store, rt.name, missing, start - rt.span, start, len(mem.windows) + len(missing))
    after = rt.spec.config.collector.forget_after
    if after is not None:  # forgotten (or about to be): not brought back by a restart
        read = {s: rows for s, rows in read.items() if rows.last >= start - after.total_seconds()}
    await sized(sum(map(len, read.values())), mem.load, read)  # many: in a thread


def _read(rt: MetricRuntime, saved: Saved) -> bool:
    """The part's arrays read from the snapshot file (now, at the metric's first run: issue
    28); False, logged, when they cannot be (the store is read instead)."""
    try:
        saved.read()
    except (OSError, ValueError) as exc:
        log.warning("restart snapshot part not read", metric=rt.name, error=str(exc) or type(exc).__name__)
        return False
    return True


def feed(rt: MetricRuntime, points: Sequence[Point], start: int, before: int) -> None:
    """Judge `points` (periods in [start, before), oldest first) into memory one period at a
    time, with the gaps a live run judged (known series without a row), nothing kept but
    memory."""
    mem: SeriesMemory = rt.memory
    spec, grid = rt.spec, rt.grid
    known = mem.series()  # the series memory held at the snapshot (states may be newer)
    i = 0
    for period in grid.periods(start, before):
        j = i
        while j < len(points) and points[j].period == period:
            j += 1
        batch, i = list(points[i:j]), j
        gaps = absent(batch, known, spec, grid, period, grid.next(period))
        known.update(p.series for p in batch)
        if not batch and not gaps:
            continue
        ordered = sorted(batch + gaps, key=lambda p: p.period) if gaps else batch
        judge(ordered, mem, rt.states, rt.ctx.run(period, False, gaps))


def _points(stored: dict[str, list[StoredPoint]], start: int) -> list[Point]:
    out = [
        Point(series, p.period, p.value, p.context)
        for series, pts in stored.items()
        for p in pts
        if p.period >= start
    ]
    out.sort(key=lambda p: p.period)
    return out


def _revisable(rt: MetricRuntime, watermark: int) -> int | None:
    """The oldest period a recheck run after the snapshot (at `watermark` or later) may have
    revised (`Recheck.run`'s look-back); None for a metric without `recheck`."""
    cfg = rt.spec.config.completeness
    if cfg is None or cfg.recheck is None or not cfg.recheck.total_seconds():
        return None
    grid, hi = rt.grid, rt.grid.next(watermark)
    return min(grid.floor(hi - int(cfg.recheck.total_seconds())), grid.prev(hi))


def _revised(
    rt: MetricRuntime, saved: Saved, stored: dict[str, list[StoredPoint]], start: int
) -> tuple[str, int] | None:
    """A period before `start` whose stored value is not the one the snapshot holds (a
    recheck revised it after the snapshot was written): its series and period, or None.
    Periods the window masks (a calendar's `exclude`: NaN in the window, the value in the
    store) and periods the snapshot does not hold (a recheck re-judges only those) are not
    compared."""
    mask = rt.memory.mask
    for series, pts in stored.items():
        held = saved.windows.get(series)
        if held is None or not pts:
            continue
        times, values = held[0].astype(np.int64) + EPOCH, held[1]
        for p in pts:
            if p.period >= start or (mask is not None and mask.excluded_at(p.period)):
                continue
            i = int(np.searchsorted(times, p.period))
            if i == len(times) or int(times[i]) != p.period:
                continue
            old, new = float(values[i]), np.nan if p.value is None else float(p.value)
            if old != new and not (old != old and new != new):
                return series, p.period
    return None


def _drop_forgotten(rt: MetricRuntime, before: int) -> None:
    """Series without a value for `forget_after` are forgotten (as a rebuild leaves them out)."""
    after = rt.spec.config.collector.forget_after
    if not rt.spec.collector.points.series_columns or after is None:
        return
    horizon = before - after.total_seconds()
    for series in list(rt.memory.windows):
        h = rt.memory.windows[series].history()
        seen = h.times[h.values == h.values]
        if not seen.size or seen[-1] < horizon:
            rt.memory.forget(series)

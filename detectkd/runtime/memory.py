"""What a metric remembers between runs, per series: its window, its detectors' caches, its
place in the peer graph. One object, one `forget()`.

A run changes memory while it judges (each point joins its window before
the next is judged). The runner calls `begin()` before judging and, if the
run's commit does not succeed, `rollback()`: the windows are put back as
they were and the touched series' detector caches are dropped (they are
rebuilt from the window), so the redone run judges exactly what the failed
one did. What a detector cannot rebuild from the window (`auto`'s weekly
profile, weeks of it) it checkpoints when the run first touches the series
and gets back at a rollback (`RollbackDetector`). `commit()` ends the transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from detectkd.config.calendars import Calendar
from detectkd.detectors.base import (
    Detector,
    FloatArray,
    IntArray,
    RollbackDetector,
    StateArray,
    StatefulDetector,
    judge_seconds,
)
from detectkd.detectors.features import feature_value
from detectkd.runtime.gridtimes import TimesPool
from detectkd.runtime.peers import PeerGraph
from detectkd.runtime.windows import SeriesWindow, TimeArray, first_at
from detectkd.storage.window import WindowRows
from detectkd.timegrid import Grid

Windows = dict[str, tuple[TimeArray, FloatArray, dict[str, FloatArray]]]  # per series
States = dict[str, dict[str, tuple[StateArray, tuple[float, ...]]]]  # per detector, per series


class Saved:
    """A metric's memory as a previous process left it (`detectkd.runtime.snapshot`): per
    series the window's arrays (times as a window keeps them: `SeriesWindow.saved`), per
    stateful detector and series its state; valid while the metric's config has this
    fingerprint and its stored watermark is this one.

    A part of a snapshot file is read when first asked for (`read`, `windows`, `states`:
    at the metric's first run, into the arrays its window keeps), not at the start: the
    parts of 10,000 metrics are never all in memory at once beside the windows that take
    them (issue 28)."""

    _LOCK = threading.Lock()  # one reader of a part at a time (the loop, a snapshot writer)

    def __init__(
        self,
        fingerprint: str,
        watermark: int,
        source: Callable[[], tuple[Windows, States]] | None = None,
    ) -> None:
        """`source`: reads the windows and states (once; until then both are empty)."""
        self.fingerprint, self.watermark = fingerprint, watermark
        self._windows: Windows = {}
        self._states: States = {}
        self._source = source

    def read(self) -> Saved:
        """The arrays in memory (a snapshot file's part read now, once; `OSError` or
        `ValueError` when it cannot be, and it stays unread)."""
        with self._LOCK:
            if self._source is not None:
                self._windows, self._states = self._source()
                self._source = None
        return self

    @property
    def unread(self) -> bool:
        """A part of a snapshot file whose arrays are not read yet."""
        return self._source is not None

    @property
    def windows(self) -> Windows:
        return self.read()._windows

    @windows.setter
    def windows(self, value: Windows) -> None:
        self.read()  # (a part of a file is read first: the states set or not are its own)
        self._windows = value

    @property
    def states(self) -> States:
        return self.read()._states

    @states.setter
    def states(self, value: States) -> None:
        self.read()
        self._states = value


class SeriesMemory:
    def __init__(
        self,
        detectors: list[Detector],
        grid: Grid,
        tz: ZoneInfo,
        peer_graph: PeerGraph | None = None,
        calendar: Calendar | None = None,
    ) -> None:
        self.detectors = detectors
        # what checkpoints its state when a run first touches a series (once: a Protocol's
        # isinstance costs microseconds, and a run touches every series; review)
        self._rollback = [d for d in detectors if isinstance(d, RollbackDetector)]
        self.calendar = calendar  # `like` days' weekday features; `exclude` periods out of windows
        self.mask = calendar if calendar is not None and "exclude" in calendar.modes else None
        self.like = calendar.weekday if calendar is not None and "like" in calendar.modes else None
        self.grid = grid
        self.tz = tz
        self.peer_graph = peer_graph
        step = grid.step
        self.features = tuple(sorted({f for d in detectors for f in d.feature_names()}))
        self.span = max((d.window_seconds(step) for d in detectors), default=0) + step
        # What a first start loads before judging (`coldstart`): staged when below `span`.
        self.judge_span = max((judge_seconds(d, step) for d in detectors), default=0) + step
        self.windows: dict[str, SeriesWindow] = {}
        self.times = TimesPool()  # the series on one time grid share their windows' times
        self.loaded = False  # windows read from storage (once per runtime)
        self._open: dict[str, tuple[int, int, int, int] | None] | None = None  # series -> checkpoint
        self._kept: dict[str, list[tuple[RollbackDetector, object]]] = {}  # series -> detectors' checkpoints
        self.saved: Saved | None = None  # left by the previous process, taken by the first run
        self.resets = 0  # how often `reset` was called (what is derived from windows reloads too)
        self.caught_up: int | None = None  # resumed from `saved` + this many stored points
        self._since = 0

    def series(self) -> set[str]:
        return set(self.windows)

    def filled(self, series: str) -> int:
        """The values (not missing) in the series' window: what a cold start counts."""
        w = self.windows.get(series)
        return w.filled() if w is not None else 0

    def window(self, series: str) -> SeriesWindow:
        w = self.windows.get(series)
        if w is None:
            w = self.windows[series] = SeriesWindow(self.span, self.features, mask=self.mask, pool=self.times)
        if self._open is not None and series not in self._open:
            self._open[series] = w.checkpoint() if len(w) else None
            self._kept[series] = self.checkpoints(series)
        return w

    def features_at(self, period: int, context: dict[str, Any]) -> dict[str, float]:
        weekday = self.like(period) if self.like is not None and self.features else None
        return {f: feature_value(f, period, context, self.tz, weekday) for f in self.features}

    def load(self, stored: Mapping[str, WindowRows]) -> None:
        """Windows from stored points (those off this grid, e.g. of another interval, stay out)."""
        for series, rows in stored.items():
            times, values, contexts = rows.times, rows.values, rows.contexts
            on = self._on_grid(times)
            if not on.all():
                times, values = times[on], values[on]
                contexts = (
                    None
                    if contexts is None
                    else [c for c, keep in zip(contexts, on.tolist(), strict=True) if keep]
                )
            columns: dict[str, FloatArray] = {}
            if self.features:
                at = times.tolist()
                rows_f = [self.features_at(t, c) for t, c in zip(at, contexts or [{}] * len(at), strict=True)]
                columns = {
                    f: np.fromiter((r[f] for r in rows_f), np.float64, len(rows_f)) for f in self.features
                }
            self.window(series).extend(times, values, columns)
        self.loaded = True

    def _on_grid(self, times: IntArray) -> np.ndarray:
        """Which `times` start a period of this grid."""
        grid = self.grid
        if not grid.days:
            return np.asarray(times % grid.step == 0)
        floor = grid.floor
        return np.fromiter((floor(t) == t for t in times.tolist()), bool, times.size)

    def adopt(self, saved: Saved, since: int) -> None:
        """Windows and detector state from a snapshot, points before `since` left out (as
        `load` reads the store)."""
        for series, (times, values, columns) in saved.windows.items():
            i = first_at(times, since)
            self.window(series).take(times[i:], values[i:], {f: c[i:] for f, c in columns.items()})
        for d in self.detectors:
            if isinstance(d, StatefulDetector):
                for series, (data, scalars) in saved.states.get(d.id, {}).items():
                    if series in self.windows:
                        d.import_state(series, data, scalars)
        self.loaded = True

    def save(self, fingerprint: str, watermark: int, leave_out: Collection[str] = ()) -> Saved:
        """What `adopt` takes back (views of the windows: written before memory changes);
        `leave_out`: series the next start reads from the store instead."""
        out = Saved(fingerprint, watermark)
        out.windows = {series: w.saved() for series, w in self.windows.items() if series not in leave_out}
        for d in self.detectors:
            if isinstance(d, StatefulDetector):
                states = ((s, d.export_state(s)) for s in d.state_series() if s in out.windows)
                out.states[d.id] = {s: st for s, st in states if st is not None}
        return out

    def forget(self, series: str) -> None:
        """Everything derived from a series: its window, detector caches, peer coordinates."""
        self.windows.pop(series, None)
        self._forget_derived(series)
        if self.peer_graph is not None:
            self.peer_graph.forget(series)

    def reset(self) -> None:
        """Forget every series: the windows are read from storage again on the next run."""
        for series in list(self.windows):
            self.forget(series)
        self.loaded = False
        self.saved = self.caught_up = None
        self.resets += 1

    def _forget_derived(self, series: str) -> None:
        for d in self.detectors:
            forget = getattr(d, "forget", None)
            if forget is not None:
                forget(series)

    def checkpoints(self, series: str) -> list[tuple[RollbackDetector, object]]:
        """What the detectors hold of `series` that its window cannot give back (`RollbackDetector`)."""
        kept = [(d, d.checkpoint(series)) for d in self._rollback]
        return [(d, cp) for d, cp in kept if cp is not None]

    def rederive(self, series: str, kept: list[tuple[RollbackDetector, object]]) -> None:
        """The detectors' caches of `series` dropped (rebuilt from the window at its next check),
        what `checkpoints` took given back: after a rollback, after a re-check's re-judging."""
        self._forget_derived(series)
        for d, state in kept:
            d.rolled_back(series, state)

    # -- transactions ----------------------------------------------------------------

    def begin(self, since: int) -> None:
        """Start a run that judges periods from `since` on."""
        self._open, self._kept, self._since = {}, {}, since

    def commit(self) -> None:
        self._open, self._kept = None, {}

    def rollback(self) -> None:
        """Undo what the run did to memory (its commit failed or it was cancelled)."""
        touched, self._open, kept, self._kept = self._open or {}, None, self._kept, {}
        for series, cp in touched.items():
            w = self.windows.get(series)
            if w is None:
                continue
            if cp is None:  # new in this run
                del self.windows[series]
            else:
                w.restore(cp, self._since)
            # what a detector held before the run: none for a series new in it; kept where the
            # window was empty (a snapshot's, every point cut: review)
            self.rederive(series, kept.get(series, []))

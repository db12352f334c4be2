"""Detections of ops incidents injected into the synthetic series of `quiet_series.py`.

    nice -n 19 .venv/bin/python benchmarks/quiet_incidents.py [--seeds 4] [--params 'k: v, ...']

The same five kinds of series, seeds and replay as `quiet_series.py` (`auto` with its
default parameters, or `--params` merged over them, and the default alert conditions), with
incidents written into the ONE-MINUTE draws before they are aggregated, so the five-minute
series sees the same incident. One kind of incident per kind of series, sizes fixed before
any run (not tuned on the results):

- `requests`: the rate drops to 50 % for 15 minutes (a partial outage);
- `latency`: the median doubles for 20 minutes (every draw x 2: log-normal, same spread);
- `errors`: the rate is 10 x for 10 minutes;
- `cpu`: +30 points for 15 minutes, clipped at 100;
- `bursty`: the mean triples for 15 minutes (the same a = 0.3, so also burstier).

Counts are redrawn around the changed mean (Poisson, negative-binomial for `bursty`) from a
random generator of their own; gauges are the same draws changed. Each series gets
INCIDENTS incidents at seeded random minutes (not aligned to five) in the scored weeks, at
least a day apart, each with its grace inside the series.

An incident's window is its span plus a grace of the same length after it. A point is in
a window when its period overlaps it. An incident is caught when a notified row (where a
FIRING would be sent) falls in its window; late when the first one is in the grace. Its
delay is from the incident's start to the end of the first notified point's period (the
earliest the point is complete): at one minute at least 1, at five minutes 1 to 5 at the
earliest. A false page is a notified row after the warm-up outside every window; per day
is per series, over the scored days. A second page in a window is neither.

The series and incidents are synthetic: the figures compare parameters and the two steps,
they are not a claim about real KPIs or incidents.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.quiet_series import (  # noqa: E402
    COUNTS,
    DAY,
    KINDS,
    STEPS,
    WARM_WEEKS,
    WEEKS,
    arguments,
    detector,
    draw_counts,
    generate,
    level,
    replay_minutes,
    seeds,
)
from detectkd.logs import configure as configure_logs  # noqa: E402

INCIDENTS = 6  # a series, over the scored weeks
SPAN = {"requests": 15, "latency": 20, "errors": 10, "cpu": 15, "bursty": 15}  # minutes
SCORED_FROM = WARM_WEEKS * 7 * DAY  # minutes from START


def place(kind: str, seed: int, n: int = INCIDENTS, weeks: int = WEEKS) -> np.ndarray:
    """The start minutes (from START) of `n` incidents: seeded, in the scored weeks, at least
    a day apart, each with its window (span and grace) inside the series."""
    rng = np.random.default_rng([seed, KINDS.index(kind), 1])  # not the series' own stream
    last = weeks * 7 * DAY - 2 * SPAN[kind]  # the latest start, exclusive
    free = last - SCORED_FROM - (n - 1) * DAY
    if free <= 0:
        raise ValueError(f"{n} incidents a day apart do not fit in the scored weeks")
    return SCORED_FROM + np.sort(rng.integers(0, free, n)) + DAY * np.arange(n)


def inject(kind: str, seed: int, minute: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """A copy of the one-minute draws with each incident written over its span."""
    rng = np.random.default_rng([seed, KINDS.index(kind), 2])
    out = minute.copy()
    for s in starts.tolist():
        t = np.arange(s, s + SPAN[kind])
        if kind in COUNTS:
            factor = {"requests": 0.5, "errors": 10.0, "bursty": 3.0}[kind]
            out[t] = draw_counts(kind, factor * level(kind, t), rng)
        elif kind == "latency":
            out[t] = 2.0 * minute[t]
        elif kind == "cpu":
            out[t] = np.minimum(minute[t] + 30.0, 100.0)
        else:
            raise ValueError(f"unknown kind {kind!r}")
    return out


@dataclass(frozen=True)
class Tally:
    delays: tuple[int | None, ...]  # minutes, one an incident; None: missed
    gaps: tuple[int | None, ...]  # points since the incident before started; None: the first
    late: int  # caught in the grace
    false: int  # pages after the warm-up outside every window
    days: float  # the scored span

    @property
    def caught(self) -> int:
        return sum(d is not None for d in self.delays)


def tally(notified: np.ndarray, step: int, starts: np.ndarray, span: int) -> Tally:
    """Score the notified column of a series at `step` seconds whose point i covers minutes
    [i k, (i + 1) k), k = step / 60, against incidents at `starts` of `span` minutes."""
    k = step // 60
    begin = np.arange(notified.size) * k
    paged = notified >= 0.5
    in_any = np.zeros(notified.size, dtype=bool)
    delays: list[int | None] = []
    late = 0
    for s in starts.tolist():
        window = (begin < s + 2 * span) & (begin + k > s)
        in_any |= window
        hits = np.flatnonzero(window & paged)
        if hits.size == 0:
            delays.append(None)
            continue
        first = int(begin[hits[0]])
        delays.append(first + k - s)
        late += first >= s + span
    false = int(np.count_nonzero(paged & ~in_any & (begin >= SCORED_FROM)))
    gaps = [None] + [b // k - a // k for a, b in pairwise(starts.tolist())]  # their points apart
    return Tally(tuple(delays), tuple(gaps), late, false, (notified.size * k - SCORED_FROM) / DAY)


Job = tuple[str, int, int, str, str]  # kind, seed, step, detector name and block


def run(job: Job) -> tuple[str, int, Tally, float]:
    kind, seed, step, name, block = job
    configure_logs(level="error")
    starts = place(kind, seed)
    minute = inject(kind, seed, generate(kind, seed), starts)
    _times, _scores, notified, cpu = replay_minutes(kind, minute, step, name, block)
    return kind, step, tally(notified, step, starts, SPAN[kind]), cpu


def row(label: str, step: int, tallies: list[Tally]) -> str:
    delays = [d for t in tallies for d in t.delays if d is not None]
    total = sum(len(t.delays) for t in tallies)
    caught, late = len(delays), sum(t.late for t in tallies)
    false, days = sum(t.false for t in tallies), sum(t.days for t in tallies)
    median = f"{np.median(delays):.0f}" if delays else "-"
    worst = f"{max(delays)}" if delays else "-"
    return (
        f"{label:<10}{step // 60:>4} m{caught:>7}/{total:<4}{late:>6}{median:>8}{worst:>7}"
        f"{false:>7}{false / days if days else 0.0:>9.2f}"
    )


WAKE = (1000, 2000, 4000)  # points since the incident before: the edges of the wake table


def wake_row(label: str, step: int, tallies: list[Tally]) -> str:
    """Incidents caught by the points since the incident before started (the first of a series
    apart): after an incident the alarm line holds its |z| for `reference` points."""
    bins: list[list[bool]] = [[] for _ in range(len(WAKE) + 2)]
    for t in tallies:
        for d, g in zip(t.delays, t.gaps, strict=True):
            at = 0 if g is None else 1 + int(np.searchsorted(WAKE, g, side="right"))
            bins[at].append(d is not None)
    cells = "".join(f"{sum(b):>7}/{len(b):<4}" for b in bins)
    return f"{label:<10}{step // 60:>4} m{cells}"


def main() -> None:
    args = arguments(__doc__).parse_args()
    configure_logs(level="error")
    name, block = detector(args.params)
    jobs: list[Job] = [
        (k, s, step, name, block) for step in STEPS for k in args.kinds for s in seeds(args)
    ]  # one-minute first: the longest jobs start first
    wall = time.perf_counter()
    got: dict[tuple[str, int], list[Tally]] = {}
    cpu = 0.0
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for kind, step, t, used in pool.map(run, jobs):
            got.setdefault((kind, step), []).append(t)
            cpu += used
    print(
        f"{name}: {len(jobs)} series ({args.seeds} seeds a kind), {INCIDENTS} incidents each in the last "
        f"{WEEKS - WARM_WEEKS} of {WEEKS} weeks; {time.perf_counter() - wall:.0f} s wall, {cpu:.0f} s CPU"
    )
    head = f"{'kind':<10}{'step':>6}{'caught':>12}{'late':>6}{'median':>8}{'worst':>7}"
    print(f"\n{head}{'false':>7}{'per day':>9}")
    for step in STEPS:
        everything: list[Tally] = []
        for kind in args.kinds:
            everything += got[(kind, step)]
            print(row(kind, step, got[(kind, step)]))
        print(row("all", step, everything))
    print("\ndelays in minutes from the incident's start to the end of the first notified period")
    edges = ["first", f"<{WAKE[0]}"] + [f"{a}-{b}" for a, b in pairwise(WAKE)] + [f">={WAKE[-1]}"]
    print("\ncaught by the points since the incident before started (the wake of an incident)")
    print(f"{'kind':<10}{'step':>6}" + "".join(f"{e:>11} " for e in edges))
    for step in STEPS:
        for kind in args.kinds:
            print(wake_row(kind, step, got[(kind, step)]))
        print(wake_row("all", step, [t for kind in args.kinds for t in got[(kind, step)]]))


if __name__ == "__main__":
    main()

"""False pages on anomaly-free synthetic ops series, at one minute and at five (issue 27).

    nice -n 19 .venv/bin/python benchmarks/quiet_series.py [--seeds 4] [--params 'k: v, ...'] [--rules]

Five kinds of series, each a model of an ops KPI with no anomaly in it, generated at one
minute from a seed (pure numpy; the same seed gives the same series), starting on a Monday
at 00:00 UTC. `daily` below is 0 at 04:00 UTC and 1 at 16:00 UTC (a raised cosine):

- `requests`: a Poisson count per minute whose rate is 200 x (0.4 + 1.2 daily) on weekdays
  and 0.75 times that on Saturday and Sunday (mean about 186 a minute);
- `latency`: a gauge in ms, log-normal (sigma 0.25, the heavy right tail) around a median of
  120 x (1 + 0.3 daily) (busier is slower);
- `errors`: a sparse Poisson count, rate 0.3 x (0.7 + 0.6 daily) a minute (mean 0.3);
- `cpu`: a percentage, 35 + 25 daily plus an AR(1) (phi 0.95, stationary spread 3) plus
  Gaussian noise (spread 1), clipped to [0, 100];
- `bursty`: a negative-binomial count (variance mu + a mu^2, a = 0.3) with mean
  20 x (0.4 + 1.2 daily) a minute.

The five-minute series is the same one-minute draws aggregated (sums for counts, means for
gauges), so the two steps see the same process. Each series is 5 weeks long; the first 2
are warm-up (a daemon that has run for a while is what users have), the last 3 are scored.

Each series is replayed exactly as `nab_eval.py` replays a NAB file (its `replay`: the
backtest function through a `csv` collector at the series' step, `auto` with its default
parameters, or `--params` merged over them, and the default alert conditions). Printed,
per kind and step: the notified rows (where a FIRING would be sent; all false here) per
1,000 scored points and per day of one series, and the share of scored points with a score
at or above 0.5. `--rules` also credits each notification to the `auto` rule that made
its point alarm (`nab_rules.py`'s watch).

The series are synthetic: the figures are a regression check and a comparison of the two
steps, not a claim about real KPIs. `quiet_incidents.py` injects incidents into the same
series and counts the ones caught.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import nab_eval, nab_rules  # noqa: E402
from detectkd.logs import configure as configure_logs  # noqa: E402

KINDS = ("requests", "latency", "errors", "cpu", "bursty")
COUNTS = frozenset({"requests", "errors", "bursty"})  # summed over five minutes; gauges: averaged
START = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp())  # a Monday, 00:00 UTC
DAY = 1440  # minutes
WEEKS, WARM_WEEKS = 5, 2
STEPS = (60, 300)


def daily(minutes: np.ndarray) -> np.ndarray:
    """0 at 04:00 UTC, 1 at 16:00 UTC: a raised cosine over the day."""
    hours = (minutes % DAY) / 60.0
    return np.asarray(0.5 * (1.0 - np.cos(2.0 * np.pi * (hours - 4.0) / 24.0)))


def level(kind: str, t: np.ndarray) -> np.ndarray:
    """The mean of a count kind at minutes `t` (from START): what its draws are drawn around."""
    d = daily(t)
    if kind == "requests":
        weekend = (t // DAY) % 7 >= 5  # day 0 is a Monday
        return np.asarray(200.0 * (0.4 + 1.2 * d) * np.where(weekend, 0.75, 1.0))
    if kind == "errors":
        return np.asarray(0.3 * (0.7 + 0.6 * d))
    if kind == "bursty":
        return np.asarray(20.0 * (0.4 + 1.2 * d))
    raise ValueError(f"{kind!r} is not a count")


def draw_counts(kind: str, mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Counts of a count kind around `mean`: Poisson, or negative-binomial for `bursty`."""
    if kind == "bursty":
        a = 0.3  # variance mu + a mu^2
        return rng.negative_binomial(1.0 / a, 1.0 / (1.0 + a * mean)).astype(np.float64)
    return rng.poisson(mean).astype(np.float64)


def generate(kind: str, seed: int, weeks: int = WEEKS) -> np.ndarray:
    """One value a minute from START, `weeks` long; the same (kind, seed) gives the same series."""
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    t = np.arange(weeks * 7 * DAY)
    d = daily(t)
    if kind in COUNTS:
        return draw_counts(kind, level(kind, t), rng)
    if kind == "latency":
        return np.asarray(120.0 * (1.0 + 0.3 * d) * np.exp(rng.normal(0.0, 0.25, t.size)))
    if kind == "cpu":
        phi, spread = 0.95, 3.0
        shocks = rng.normal(0.0, spread * np.sqrt(1.0 - phi**2), t.size)
        ar = np.empty(t.size)
        ar[0] = rng.normal(0.0, spread)
        for i in range(1, t.size):  # 50,400 steps: a plain loop is fast enough
            ar[i] = phi * ar[i - 1] + shocks[i]
        return np.clip(35.0 + 25.0 * d + ar + rng.normal(0.0, 1.0, t.size), 0.0, 100.0)
    raise ValueError(f"unknown kind {kind!r}")


def at_step(kind: str, minute: np.ndarray, step: int) -> np.ndarray:
    """The series at `step` seconds: the same one-minute draws summed (counts) or averaged."""
    k = step // 60
    blocks = minute[: minute.size // k * k].reshape(-1, k)
    return np.asarray(blocks.sum(axis=1) if kind in COUNTS else blocks.mean(axis=1))


def times_at(step: int, n: int) -> np.ndarray:
    return START + step * np.arange(n, dtype=np.int64)


@dataclass(frozen=True)
class Pages:
    notified: int
    scored: int  # points
    days: float  # the scored span

    @property
    def per_1000(self) -> float:
        return 1000.0 * self.notified / max(self.scored, 1)

    @property
    def per_day(self) -> float:
        return self.notified / self.days if self.days else 0.0


def count_pages(times: np.ndarray, notified: np.ndarray, scored_from: int, finish: int) -> Pages:
    """The notified rows among the points at or after `scored_from` (epoch s), over the days
    from there to `finish` (the end of the last period)."""
    scored = times >= scored_from
    return Pages(
        int(np.count_nonzero(notified[scored] >= 0.5)), int(scored.sum()), (finish - scored_from) / 86400
    )


def write_csv(path: Path, times: np.ndarray, values: np.ndarray, whole: bool) -> None:
    stamps = [datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%d %H:%M:%S") for t in times]
    cells = [f"{v:.0f}" for v in values] if whole else [f"{v:.4f}" for v in values]
    path.write_text("timestamp,value\n" + "".join(f"{s},{c}\n" for s, c in zip(stamps, cells, strict=True)))


Job = tuple[str, int, int, str, str, bool]  # kind, seed, step, detector name and block, watch rules
Result = tuple[str, int, int, Pages, int, float, Counter[str]]  # ..., pages, points >= 0.5, cpu, by rule


def detector(params: str) -> tuple[str, str]:
    """The name and block of `auto` with `params` (flow style) merged over its defaults."""
    if not params:
        return "auto", nab_eval.CONFIGS["auto"]
    return f"auto {{{params}}}", f"{{type: auto, params: {{{params}}}}}"


def replay_minutes(
    kind: str, minute: np.ndarray, step: int, name: str, block: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """One-minute draws aggregated to `step` and replayed as `nab_eval.py` replays a file:
    the times, scores and notified of the points, and the CPU seconds of the replay."""
    nab_eval.CONFIGS[name] = block  # as nab_sweep.py names a candidate; here in the worker itself
    values = at_step(kind, minute, step)
    times = times_at(step, values.size)
    with tempfile.TemporaryDirectory(prefix="dtk-quiet-") as tmp:
        path = Path(tmp) / f"{kind}.csv"
        write_csv(path, times, values, kind in COUNTS)
        scores, notified, cpu = nab_eval.replay(path, times, name, Path(tmp))
    return times, scores, notified, cpu


def run(job: Job) -> Result:
    kind, seed, step, name, block, rules = job
    configure_logs(level="error")
    if rules:
        nab_rules.watch()
    times, scores, notified, cpu = replay_minutes(kind, generate(kind, seed), step, name, block)
    scored_from = START + WARM_WEEKS * 7 * 86400
    pages = count_pages(times, notified, scored_from, int(times[-1]) + step)
    high = int(np.count_nonzero(scores[times >= scored_from] >= 0.5))
    by_rule: Counter[str] = Counter()
    if rules:
        for t in times[(times >= scored_from) & (notified >= 0.5)].tolist():
            by_rule[nab_rules.RULES[nab_rules.rule_at(int(t))[0]]] += 1
    return kind, seed, step, pages, high, cpu, by_rule


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """The options this benchmark and `quiet_incidents.py` share: seeds, params, kinds."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=4, help="series per kind (seeds first .. first+n-1)")
    ap.add_argument("--first-seed", type=int, default=0, help="the first seed (fresh seeds: 16 after 16)")
    ap.add_argument("--params", default="", help="flow-style auto params over the defaults")
    ap.add_argument("--kinds", nargs="*", default=list(KINDS), choices=KINDS)
    return ap


def seeds(args: argparse.Namespace) -> range:
    return range(args.first_seed, args.first_seed + args.seeds)


def main() -> None:
    ap = arguments(__doc__)
    ap.add_argument("--rules", action="store_true", help="credit each page to the auto rule that sent it")
    args = ap.parse_args()
    configure_logs(level="error")
    name, block = detector(args.params)
    jobs: list[Job] = [
        (k, s, step, name, block, args.rules) for step in STEPS for k in args.kinds for s in seeds(args)
    ]  # one-minute first: the longest jobs start first
    wall = time.perf_counter()
    got: dict[tuple[str, int], list[tuple[Pages, int]]] = {}
    rules: dict[tuple[str, int], Counter[str]] = {}
    cpu = 0.0
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for kind, _seed, step, pages, high, used, by_rule in pool.map(run, jobs):
            got.setdefault((kind, step), []).append((pages, high))
            rules.setdefault((kind, step), Counter()).update(by_rule)
            cpu += used
    print(
        f"{name}: {len(jobs)} series ({args.seeds} seeds a kind), {WEEKS} weeks each, the last "
        f"{WEEKS - WARM_WEEKS} scored; {time.perf_counter() - wall:.0f} s wall, {cpu:.0f} s CPU of replay"
    )
    head = f"{'kind':<10}{'step':>6}{'scored':>10}{'pages':>7}{'per 1,000':>11}{'per day':>9}"
    print(f"\n{head}{'score>=0.5 %':>14}")
    for step in STEPS:
        total: list[tuple[Pages, int]] = []
        for kind in args.kinds:
            rows = got[(kind, step)]
            total += rows
            print_row(kind, step, rows)
        print_row("all", step, total)
    if args.rules:
        print("\npages by the rule of their point (`nab_rules.py`'s watch)")
        for (kind, step), counts in sorted(rules.items(), key=lambda kv: (kv[0][1], KINDS.index(kv[0][0]))):
            if counts:
                print(
                    f"{kind:<10}{step // 60:>4} min  "
                    + ", ".join(f"{r} {n}" for r, n in counts.most_common())
                )


def print_row(kind: str, step: int, rows: list[tuple[Pages, int]]) -> None:
    """Pooled over the series: per 1,000 scored points, and per day of one series (the mean)."""
    pages = sum(p.notified for p, _ in rows)
    scored = sum(p.scored for p, _ in rows)
    days = sum(p.days for p, _ in rows)
    high = sum(h for _, h in rows)
    pooled = Pages(pages, scored, days)
    print(
        f"{kind:<10}{step // 60:>4} m{scored:>10,}{pages:>7}{pooled.per_1000:>11.2f}{pooled.per_day:>9.2f}"
        f"{100.0 * high / max(scored, 1):>14.2f}"
    )


if __name__ == "__main__":
    main()

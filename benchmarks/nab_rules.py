"""Which of `auto`'s rules sent each notification on NAB: the false pages and the caught windows.

    nice -n 19 .venv/bin/python benchmarks/nab_rules.py [--params 'pair_mean: 0'] [--list rows.txt]

Every file is replayed as `nab_eval.py` does (the backtest function, the default alert
conditions), with `auto`'s `_surprises` watched: for every judged point, the rule that made
it alarm — a lone `spike` (surprise at least `spike` x the line), a `break` of the recent
range, a `pair` (two points in a row beyond the line: persistence), a `sustain`ed deviation,
a `novel` point (beyond the line and the last `line_range` values) — and how far beyond the
line it was (the surprise; for a pair, the smaller of the two).
A notification (a FIRING row) is credited to the rule of the point of its period. Printed:
the false-page rows (notified outside every window, after probation) by rule, by category
and by how far beyond the line; the caught windows by the rule of their first notification.
`--list` writes each false page and each window (the rule of its first notification, or
missed), one a line: diff two runs to see what moved.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import nab_eval  # noqa: E402
from benchmarks.nab_report import CATEGORIES, anomaly_free  # noqa: E402
from detectkd.detectors.auto import AutoDetector  # noqa: E402
from detectkd.detectors.autostate import kept  # noqa: E402
from detectkd.evaluation import Labelled, probation  # noqa: E402
from detectkd.logs import configure as configure_logs  # noqa: E402

RULES = ("none", "spike", "break", "pair", "sustain", "novel")
BINS = (1.0, 1.1, 1.25, 1.5, 2.0, 3.0)  # how far beyond the line (in lines)
_last: list[tuple[np.ndarray, np.ndarray]] = []  # the newest `_surprises`: (rule, how far) per point
_seen: dict[int, tuple[int, float]] = {}  # judged time -> (rule, how far), this file's


def _watch() -> None:
    surprises, results = AutoDetector._surprises, AutoDetector._results
    if getattr(surprises, "watched", False):
        return

    def watched_surprises(self: AutoDetector, memo: Any, z: Any, breaks: Any) -> Any:
        prev0 = memo.surprise
        held, lines = surprises(self, memo, z, breaks)
        p = self.p
        a = kept(np.abs(z))
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.where(np.isfinite(a), a / lines, 0.0)
        prev = np.concatenate([[prev0], s[:-1]])
        alarm = held >= p.threshold
        spike = s >= p.spike * p.threshold
        broke = ((breaks & 2) > 0) | (
            ((breaks & 1) > 0) & (a >= p.range_gate * max(p.min_z, 1e-9))
        )  # 2: stuck, 4: seen
        novel = ((breaks & 8) > 0) & (s >= p.threshold)  # beyond the line and the last `line_range`
        pair = np.minimum(s, prev) >= p.threshold
        rule = np.select([~alarm, spike, broke, novel, pair], [0, 1, 2, 5, 3], 4)
        _last[:] = [(rule, np.where(rule == 3, np.minimum(s, prev), s))]
        return held, lines

    def watched_results(self: AutoDetector, points: Any, first: int, idx: Any, *rest: Any) -> Any:
        if _last:
            rule, far = _last[0]
            for k, i in enumerate((idx - first).tolist()):
                _seen[int(points[i].time)] = (int(rule[k]), float(far[k]))
        return results(self, points, first, idx, *rest)

    watched_surprises.watched = True  # type: ignore[attr-defined]
    AutoDetector._surprises = watched_surprises  # type: ignore[method-assign]
    AutoDetector._results = watched_results  # type: ignore[method-assign,assignment]


def watch() -> None:
    """From now on (in this process), note which rule made each point `auto` judges alarm
    (`rule_at`); forget the points noted before."""
    _watch()
    _seen.clear()


def rule_at(t: int) -> tuple[int, float]:
    """The rule (an index of `RULES`; 0: none) and how far beyond the line (in lines) of the
    point judged at time `t` since `watch`."""
    return _seen.get(int(t), (0, 0.0))


def run_file(job: tuple[str, str, list[list[str]], str]) -> tuple[str, Labelled, np.ndarray, np.ndarray]:
    key, path, windows, name = job
    watch()
    times = nab_eval.load_times(Path(path))
    with tempfile.TemporaryDirectory(prefix="dtk-nab-") as tmp:
        _scores, notified, _cpu = nab_eval.replay(Path(path), times, name, Path(tmp))
    step = int(np.median(np.diff(times)))
    got = [rule_at(int(t)) for t in times // step * step]
    rule = np.asarray([r for r, _ in got])
    far = np.asarray([f for _, f in got])
    return key, Labelled(key, notified, nab_eval.row_windows(times, windows)), rule, far


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="", help="flow-style auto params over the defaults")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--list", type=Path, default=None, help="write every false page and caught window here")
    args = ap.parse_args()
    configure_logs(level="error")
    data = args.data or nab_eval.default_data()
    name = f"auto {{{args.params}}}"
    nab_eval.CONFIGS[name] = f"{{type: auto, params: {{{args.params}}}}}"
    labels = json.loads((data / "windows.json").read_text())
    jobs = [(k, str(data / "data" / k), w, name) for k, w in sorted(labels.items())]
    fp: Counter[tuple[str, str]] = Counter()
    far_bins: Counter[tuple[str, int]] = Counter()
    caught: Counter[str] = Counter()
    caught_bins: Counter[tuple[str, int]] = Counter()
    missed = 0
    listed: list[str] = []  # "file row kind rule how-far": diff two of them to see what moved
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for key, f, rule, far in pool.map(run_file, jobs):
            cat = CATEGORIES[key.split("/")[0]]
            hit = f.scores >= 0.5
            hit[: probation(len(f.scores))] = False
            for i in np.flatnonzero(hit & anomaly_free(f)).tolist():
                r = RULES[rule[i]]
                fp[(r, cat)] += 1
                listed.append(f"{key} {i} page {r} {far[i]:.2f}")
                far_bins[(r, int(np.searchsorted(BINS, far[i], side="right")))] += 1
            for a, b in f.windows:
                first = np.flatnonzero(hit[a : b + 1])
                if first.size:
                    i = a + int(first[0])
                    caught[RULES[rule[i]]] += 1
                    listed.append(f"{key} {a} window {RULES[rule[i]]} {far[i]:.2f} (row {i})")
                    caught_bins[(RULES[rule[i]], int(np.searchsorted(BINS, far[i], side="right")))] += 1
                else:
                    missed += 1
                    listed.append(f"{key} {a} window missed")
    if args.list is not None:
        args.list.write_text("\n".join(listed) + "\n")
    cats = list(CATEGORIES.values())
    print(f"\n{name}: false-page rows by rule and category")
    print(f"{'rule':<9}" + "".join(f"{c:>8}" for c in cats) + f"{'all':>8}")
    for r in RULES:
        row = [fp[(r, c)] for c in cats]
        if sum(row):
            print(f"{r:<9}" + "".join(f"{x:>8}" for x in row) + f"{sum(row):>8}")
    print(
        f"{'all':<9}"
        + "".join(f"{sum(fp[(r, c)] for r in RULES):>8}" for c in cats)
        + f"{sum(fp.values()):>8}"
    )
    edges = [f"<{BINS[0]}"] + [f"{a}-{b}" for a, b in pairwise(BINS)] + [f">={BINS[-1]}"]
    for title, counts in (
        ("false-page rows", far_bins),
        ("caught windows (first notification)", caught_bins),
    ):
        print(f"\n{title} by how far beyond the line (surprise in lines; a pair: the smaller)")
        print(f"{'rule':<9}" + "".join(f"{e:>9}" for e in edges))
        for r in RULES:
            row = [counts[(r, k)] for k in range(len(edges))]
            if sum(row):
                print(f"{r:<9}" + "".join(f"{x:>9}" for x in row))
    print(f"\ncaught windows by the rule of their first notification: {dict(caught)}; missed {missed}")


if __name__ == "__main__":
    main()

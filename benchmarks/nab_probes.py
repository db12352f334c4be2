"""Offline probes of two causal channels on NAB, before building either into `auto`.

    nice -n 19 .venv/bin/python benchmarks/nab_probes.py ROWS.npz [--probe spread cusum]

`ROWS.npz` is `nab_eval.py --save-rows` (its `auto|notified` column: what the defaults page).
Each probe alarms on its own, causally (only values before a point and the point), as a
novelty test self-calibrated like `auto`'s line — beyond every earlier value of the same
statistic over the last `REACH` points, by a margin:

- `spread`: the spread of the last k values (1.4826 x MAD, else 1.2533 x the mean absolute
  deviation; `meanabs`: the mean absolute deviation; `p90p10`: the 10-90 % range) against
  the same statistic of every earlier k values that do not overlap them;
- `cusum`: a two-sided CUSUM of the residuals from `auto`'s level (the median and robust
  spread of the 400 values before each 12-point block, residuals clipped at 5 spreads so a
  lone spike does not make a shift) with a drift of d spreads, against its own values
  200–2,000 points back.

A probe's alarms become pages as `auto`'s would (the first point of a run, then none for 100
points). Printed per setting: the windows whose first page falls inside them, the false pages
(outside every window, after probation), those farther than 12 rows from every page of the
defaults (what the probe would add to a pager's false pages; by category) and the windows it
catches that the defaults miss (with the share of the window at its first page).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import nab_eval  # noqa: E402
from benchmarks.nab_report import CATEGORIES  # noqa: E402
from detectkd.evaluation import probation  # noqa: E402

REACH = 2000  # the points a statistic is compared with (auto's `reference`)
REST = 100  # no page for this many points after one (auto's `rest`)
NEAR = 12  # a false page within this many rows of a default's page is the same event

Floats = np.ndarray
File = tuple[str, Floats, tuple[tuple[int, int], ...]]


def load(data: Path) -> list[File]:
    labels = json.loads((data / "windows.json").read_text())
    out = []
    for key, windows in sorted(labels.items()):
        path = data / "data" / key
        with path.open() as fh:
            x = np.asarray([float(r["value"]) for r in csv.DictReader(fh)])
        out.append((key, x, nab_eval.row_windows(nab_eval.load_times(path), windows)))
    return out


def spreads(x: Floats, k: int, kind: str) -> Floats:
    """The statistic of x[j : j + k] for every j (known at j + k - 1)."""
    w = sliding_window_view(x, k)
    dev = np.abs(w - np.median(w, axis=1, keepdims=True))
    if kind == "meanabs":
        return np.asarray(dev.mean(axis=1))
    if kind == "p90p10":
        q = np.percentile(w, [10, 90], axis=1)
        return np.asarray(q[1] - q[0])
    mad = np.median(dev, axis=1)
    return np.asarray(np.where(mad > 0, 1.4826 * mad, 1.2533 * dev.mean(axis=1)))


def spread_alarms(x: Floats, k: int, margin: float, kind: str) -> np.ndarray:
    s, alarm = spreads(x, k, kind), np.zeros(len(x), bool)
    for j in range(REACH, len(s)):
        alarm[j + k - 1] = s[j] > 0 and s[j] > margin * s[j - REACH : j - k + 1].max()
    return alarm


def cusum_alarms(x: Floats, drift: float, margin: float, clip: float = 5.0, gap: int = 200) -> np.ndarray:
    z = np.zeros(len(x))
    for t0 in range(400, len(x), 12):
        h = x[t0 - 400 : t0]
        med = float(np.median(h))
        dev = np.abs(h - med)
        s = 1.4826 * float(np.median(dev)) or 1.2533 * float(dev.mean()) or 1e-9 * max(1.0, abs(med))
        z[t0 : t0 + 12] = np.clip((x[t0 : t0 + 12] - med) / s, -clip, clip)
    c, up, down = np.zeros(len(x)), 0.0, 0.0
    for t, v in enumerate(z.tolist()):
        up, down = max(0.0, up + v - drift), max(0.0, down - v - drift)
        c[t] = max(up, down)
    alarm = np.zeros(len(x), bool)
    for t in range(REACH, len(x)):
        alarm[t] = c[t] > 0 and c[t] > margin * c[t - REACH : t - gap].max()
    return alarm


def pages(alarm: np.ndarray) -> list[int]:
    alarm = alarm.copy()
    alarm[: probation(len(alarm))] = False
    out: list[int] = []
    for t in np.flatnonzero(alarm).tolist():
        if (t and alarm[t - 1]) or (out and t - out[-1] < REST):
            continue
        out.append(t)
    return out


def judge(files: list[File], saved: np.lib.npyio.NpzFile, probe: Callable[[Floats], np.ndarray]) -> str:
    caught, false, added, new = 0, 0, Counter[str](), []
    for key, x, rows in files:
        sent = pages(probe(x))
        ours = saved[f"auto|notified|{key}"] >= 0.5
        near = np.convolve(ours.astype(int), np.ones(2 * NEAR + 1, int), "same") > 0
        inside = np.zeros(len(x), bool)
        for a, b in rows:
            inside[a : b + 1] = True
            hit = [t for t in sent if a <= t <= b]
            caught += bool(hit)
            if hit and not ours[a : b + 1].any():
                new.append(f"{key.split('/')[1].removesuffix('.csv')} {a} ({(hit[0] - a) / (b - a):.2f})")
        for t in sent:
            if not inside[t]:
                false += 1
                if not near[t]:
                    added[CATEGORIES[key.split("/")[0]]] += 1
    cats = " ".join(f"{c} {n}" for c, n in sorted(added.items()))
    found = ", ".join(new) or "-"
    return f"caught {caught}, false {false}, added {sum(added.values())} ({cats}); new: {found}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", type=Path)
    ap.add_argument("--probe", nargs="+", default=["spread", "cusum"], choices=["spread", "cusum"])
    args = ap.parse_args()
    files, saved = load(nab_eval.default_data()), np.load(args.rows)
    if "spread" in args.probe:
        for kind in ("mad", "meanabs", "p90p10"):
            for k in (24, 48, 96):
                for margin in (1.25, 1.5):
                    got = judge(files, saved, partial(spread_alarms, k=k, margin=margin, kind=kind))
                    print(f"spread {kind} k {k} margin {margin}: {got}", flush=True)
    if "cusum" in args.probe:
        for drift in (0.5, 1.0):
            for margin in (1.0, 1.25):
                got = judge(files, saved, partial(cusum_alarms, drift=drift, margin=margin))
                print(f"cusum drift {drift} margin {margin}: {got}", flush=True)


if __name__ == "__main__":
    main()

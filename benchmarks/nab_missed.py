"""Every NAB window: caught or missed by a column of saved rows, how late, and what the series did.

    .venv/bin/python benchmarks/nab_missed.py ROWS.npz [--column auto|notified] [--all]

`ROWS.npz` is `nab_eval.py --save-rows` (the `notified` column of `auto` by default). For each
window: the row of the first notification as a share of the window (0 at its start, 0.5 at its
middle, where NAB's labelled point sits; `-` when missed) beside Numenta HTM's and ARTime's
published rows at their standard thresholds, and, for a missed window (all with `--all`), what
the series did in the window's first half against the 1,000 values before it — causally, only
values before the window's middle:

- `shift`: the first half's median less the earlier median, in the earlier robust spreads
  (1.4826 x MAD);
- `spread`: the first half's robust spread over the earlier one (a variance change);
- `steps`: the same ratio for the first differences (a change of frequency or roughness);
- `peak`: the farthest value of the first half from the earlier median, in earlier spreads;
  `*` when it is beyond the earlier 1,000 values' range;
- `flat`: the share of equal consecutive values in the first half (earlier share);
- `max`: the largest `score` in the window; `paged N rows before`: the last notification in the
  window's width before it (an alarm on the same event, too early for NAB); `prob`: the window
  starts in the probationary period (15 %, at most 750 rows: NAB does not score detections there).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import nab_eval  # noqa: E402
from detectkd.evaluation import probation  # noqa: E402

REFERENCE = {"numenta": 0.5431, "ARTime": 0.3175}  # their standard thresholds (benchmarks.md)
BEFORE = 1000


def spread(x: np.ndarray) -> float:
    """1.4826 x MAD, or 1.2533 x the mean absolute deviation when MAD is 0 (as `auto`)."""
    if not len(x):
        return float("nan")
    dev = np.abs(x - np.median(x))
    mad = float(np.median(dev))
    return 1.4826 * mad if mad > 0 else 1.2533 * float(np.mean(dev))


def values(path: Path) -> np.ndarray:
    with path.open() as fh:
        return np.asarray([float(r["value"]) for r in csv.DictReader(fh)])


def reference_rows(data: Path) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in REFERENCE:
        rows: dict[str, list[float]] = {}
        with gzip.open(data / "results" / f"{name}.csv.gz", "rt") as fh:
            for r in csv.DictReader(fh):
                rows.setdefault(r["file"], []).append(float(r["anomaly_score"]))
        out[name] = {k: np.asarray(v) for k, v in rows.items()}
    return out


def first(hit: np.ndarray, a: int, b: int) -> str:
    idx = np.flatnonzero(hit[a : b + 1])
    return f"{idx[0] / max(b - a, 1):.2f}" if len(idx) else "-"


def describe(x: np.ndarray, a: int, b: int) -> str:
    mid = (a + b) // 2
    pre, half = x[max(0, a - BEFORE) : a], x[a : mid + 1]
    if len(pre) < 20:
        return f"only {len(pre)} values before"
    med, s = float(np.median(pre)), max(spread(pre), 1e-9 * max(1.0, abs(float(np.median(pre)))))
    d_pre, d_half = np.diff(pre), np.diff(half)
    shift = (float(np.median(half)) - med) / s
    ratio = spread(half) / s
    steps = spread(d_half) / max(spread(d_pre), 1e-12)
    far = np.abs(half - med) / s
    beyond = "*" if half.max() > pre.max() or half.min() < pre.min() else ""
    flat = float(np.mean(d_half == 0)) if len(d_half) else 0.0
    return (
        f"shift {shift:+.1f} spread x{ratio:.1f} steps x{steps:.1f} peak {far.max():.1f}{beyond} "
        f"flat {flat:.2f} ({float(np.mean(d_pre == 0)):.2f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", type=Path)
    ap.add_argument("--column", default="auto|notified", help="detector|column in the .npz")
    ap.add_argument("--all", action="store_true", help="describe the caught windows too")
    args = ap.parse_args()
    data = nab_eval.default_data()
    labels = json.loads((data / "windows.json").read_text())
    saved = np.load(args.rows)
    detector, column = args.column.split("|")
    refs = reference_rows(data)
    caught = late = 0
    for key, windows in sorted(labels.items()):
        if not windows:
            continue
        x = values(data / "data" / key)
        rows = nab_eval.row_windows(nab_eval.load_times(data / "data" / key), windows)
        ours = saved[f"{detector}|{column}|{key}"]
        scores = saved[f"{detector}|score|{key}"]
        hit = ours >= 0.5
        hit[: probation(len(ours))] = False
        for a, b in rows:
            got = first(hit, a, b)
            theirs = " ".join(f"{n} {first(refs[n][key] >= t, a, b)}" for n, t in REFERENCE.items())
            caught += got != "-"
            late += got != "-" and float(got) > 0.5
            prob = " prob" if a < probation(len(x)) else ""
            head = f"{key.split('/')[1][:40]:40} {a:>6}-{b:<6} auto {got:>4} {theirs}{prob}"
            if got == "-" or args.all:
                before = np.flatnonzero(hit[max(0, a - (b - a)) : a])
                early = (
                    f" paged {len(hit[max(0, a - (b - a)) : a]) - before[-1]} rows before"
                    if len(before)
                    else ""
                )
                head += f" max {float(scores[a : b + 1].max()):.2f}{early} | {describe(x, a, b)}"
            print(head)
    print(f"caught {caught}, of them after the window's middle {late}")


if __name__ == "__main__":
    main()

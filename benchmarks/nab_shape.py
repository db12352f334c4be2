"""Does a page's shape tell the windows' first pages from the false ones? An offline probe on NAB.

    nice -n 19 .venv/bin/python benchmarks/nab_shape.py ROWS.npz [--column 'auto|notified'] [--reach 2000]

`ROWS.npz` is `nab_eval.py --save-rows` or a `nab_sweep.py --rows` file. Every page after
probation (a notified row) is either the first page in a window or a false page (outside every
window); later pages in a window are left out. For each, the subsequence of the last m values
ending at the page is compared with every earlier subsequence of m values within `reach`
values before it that does not overlap it: its **left nearest-neighbour distance** (the root
mean square difference to the closest one, in the robust spreads of those earlier values) — a
causal matrix-profile discord: small when the series has done this before (a daily job, a
burst like the last ones), large when the shape is new. m = 1 is the value alone (how far the
value is from every earlier value: close to a range break's test).

Printed per m: the area under the curve that a window's first page has the larger distance
(0.5: no information), the medians, and how many of each a gate at several distances keeps;
then the same among the pages whose value is not new (m = 1 distance below 0.5 spreads), where
a shape test would have to add what the value does not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import nab_eval  # noqa: E402
from benchmarks.nab_missed import spread, values  # noqa: E402
from detectkd.evaluation import probation  # noqa: E402

LENGTHS = (1, 3, 6, 12, 24)
GATES = (0.5, 1.0, 2.0, 3.0)


def left_distance(x: np.ndarray, i: int, m: int, reach: int) -> float:
    """The RMS distance from x[i-m+1 : i+1] to its nearest earlier non-overlapping subsequence
    within `reach` values before it, in the robust spreads of those values (nan: too few)."""
    past = x[max(0, i - reach) : i + 1]
    if len(past) < 2 * m + 1:
        return float("nan")
    windows = sliding_window_view(past, m)
    target, earlier = windows[-1], windows[: len(windows) - m]
    scale = spread(past[:-1]) or 1e-9
    return float(np.sqrt(((earlier - target) ** 2).mean(axis=1)).min() / scale)


def auc(first: np.ndarray, false: np.ndarray) -> float:
    """P(a window's first page has the larger distance), ties half (Mann-Whitney)."""
    a, b = first[~np.isnan(first)][:, None], false[~np.isnan(false)][None, :]
    if not a.size or not b.size:
        return float("nan")
    return float((a > b).mean() + 0.5 * (a == b).mean())


def pages(saved: np.lib.npyio.NpzFile, column: str, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """(is a window's first page, distances per length) for every first or false page."""
    data = nab_eval.default_data()
    labels = json.loads((data / "windows.json").read_text())
    first, dist = [], []
    for key, windows in sorted(labels.items()):
        x = values(data / "data" / key)
        notified = saved[f"{column}|{key}"] >= 0.5
        notified[: probation(len(notified))] = False
        kind = np.zeros(len(notified), int)  # 0 false, 1 a window's first, 2 later in a window
        for a, b in nab_eval.row_windows(nab_eval.load_times(data / "data" / key), windows):
            idx = np.flatnonzero(notified[a : b + 1])
            kind[a : b + 1] = 2
            if len(idx):
                kind[a + idx[0]] = 1
        for i in np.flatnonzero(notified & (kind != 2)):
            first.append(kind[i] == 1)
            dist.append([left_distance(x, int(i), m, reach) for m in LENGTHS])
    return np.asarray(first, bool), np.asarray(dist, float)


def report(first: np.ndarray, dist: np.ndarray, title: str) -> None:
    print(f"{title}: {first.sum()} windows' first pages, {(~first).sum()} false pages")
    for j, m in enumerate(LENGTHS):
        tp, fp = dist[first, j], dist[~first, j]
        kept = "  ".join(f">{g}: {np.sum(tp > g)}/{np.sum(fp > g)}" for g in GATES)
        print(
            f"  m {m:>2}  AUC {auc(tp, fp):.3f}  median {np.nanmedian(tp):6.2f} / {np.nanmedian(fp):6.2f}"
            f"  kept (first/false) {kept}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", type=Path)
    ap.add_argument("--column", default="auto|notified", help="detector|column in the .npz")
    ap.add_argument("--reach", type=int, default=2000)
    args = ap.parse_args()
    first, dist = pages(np.load(args.rows), args.column, args.reach)
    report(first, dist, "all pages")
    old = dist[:, 0] < 0.5
    report(first[old], dist[old], "pages whose value is not new (m 1 below 0.5 spreads)")


if __name__ == "__main__":
    main()

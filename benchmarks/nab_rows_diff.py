"""Two builds' NAB replays row by row (the `.npz` files of `nab_eval.py --save-rows`).

    .venv/bin/python benchmarks/nab_rows_diff.py BEFORE.npz AFTER.npz [--line 0.5 0.525]

Per column (`score`, `notified`): the rows whose value differs, the largest difference,
and, for `score`, the rows on different sides of each `--line` (a threshold: 0.5 is the
alarm line, NAB's optimiser chose 0.525 for `auto`). A change that keeps every verdict
(issue 28: single-precision state) shows 0 notified rows and 0 rows across every line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--line", type=float, nargs="*", default=[0.5, 0.525])
    args = ap.parse_args()
    a, b = np.load(args.before), np.load(args.after)
    if set(a.files) != set(b.files):
        print(f"different files: {sorted(set(a.files) ^ set(b.files))}")
        return 1
    rows: dict[str, int] = {}
    differ: dict[str, int] = {}
    largest: dict[str, float] = {}
    across = {line: 0 for line in args.line}
    for key in sorted(a.files):
        column = key.split("|")[1]
        x, y = a[key], b[key]
        if x.shape != y.shape:
            print(f"{key}: {x.shape} rows before, {y.shape} after")
            return 1
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        rows[column] = rows.get(column, 0) + x.size
        differ[column] = differ.get(column, 0) + int((~same).sum())
        gap = np.abs(x - y)[~same]
        largest[column] = max(largest.get(column, 0.0), float(np.nanmax(gap)) if gap.size else 0.0)
        if column == "score":
            for line in args.line:
                across[line] += int(((x >= line) != (y >= line)).sum())
    for column in sorted(rows):
        print(f"{column}: {differ[column]:,} of {rows[column]:,} rows differ (largest {largest[column]:.2g})")
    for line, n in across.items():
        print(f"score rows on different sides of {line}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

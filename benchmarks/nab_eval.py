"""Detection quality on the NAB files in ../shared/data/nab, measured as a user would.

    .venv/bin/python benchmarks/nab_eval.py [--detectors auto zscore ...] [--data DIR]

Every file is replayed with `detectkd backtest --output` (in-process: the same
function) through a `csv` collector at the file's own sampling step, with the
detector's default parameters and the default alert conditions. Each data row
gets the `score` and `notified` of the period that holds it. Then, NAB-style
(detectkd.evaluation; one threshold per profile across all files, 0 = never
fires, 100 = perfect):

- score: every row whose `score` is at or above the threshold is a detection
  (NAB's optimiser picks the threshold); "at 0.5" is the detectors' own line;
- notified: the rows where the alert rules send a FIRING are the detections
  (what users receive; no threshold to choose);
- calibration: the share of anomaly-free rows (outside every window, after the
  probationary 15 %) whose score is at or above 0.5;
- points/s: replay speed, CPU time of the whole backtest.

`rolling_zscore` is NAB's windowed Gaussian: an unweighted z-score over the last
1,000 points, 3 sigma.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectkd.commands.backtest import backtest  # noqa: E402
from detectkd.evaluation import (  # noqa: E402
    PROFILES,
    Labelled,
    best_threshold,
    normalised,
    probation,
    window_recall_and_fp,
)
from detectkd.specs.loader import load_metrics  # noqa: E402

# detector name -> the `detector:` block (defaults unless said otherwise)
CONFIGS: dict[str, str] = {
    "auto": "{type: auto}",
    "zscore": "{type: zscore}",
    "mad": "{type: mad}",
    "seasonal": "{type: seasonal}",
    "forecast": "{type: forecast}",
    "iqr": "{type: iqr}",
    "rolling_zscore": "{type: zscore, params: {window_size: 1000, n_sigma: 3, use_weighted: false}}",
}


def default_data() -> Path:
    for base in (REPO.parent / "shared", Path("/work/shared")):
        if (base / "data" / "nab").is_dir():
            return base / "data" / "nab"
    raise SystemExit("nab data not found (../shared/data/nab)")


def load_times(path: Path) -> np.ndarray:
    with path.open() as fh:
        stamps = [row["timestamp"] for row in csv.DictReader(fh)]
    return np.asarray([int(datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp()) for s in stamps])


def row_windows(times: np.ndarray, windows: list[list[str]]) -> tuple[tuple[int, int], ...]:
    out = []
    for start, end in windows:
        a = int(datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp())
        b = int(datetime.fromisoformat(end).replace(tzinfo=UTC).timestamp())
        first = int(np.searchsorted(times, a, side="left"))
        last = int(np.searchsorted(times, b, side="right")) - 1
        if last >= first:
            out.append((first, last))
    return tuple(out)


def replay(path: Path, times: np.ndarray, detector: str, tmp: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Per data row (`times`, the file's own): the score and notified of its period, and the
    CPU seconds taken."""
    step = int(np.median(np.diff(times)))
    metrics = tmp / detector
    metrics.mkdir(parents=True, exist_ok=True)
    (metrics / "nab.yaml").write_text(
        f"name: nab\nschedule: {{interval: {step}s}}\n"
        f"collector:\n  type: csv\n  params: {{path: '{path}'}}\n"
        f"detector: {CONFIGS[detector]}\nalerter: {{type: log}}\n"
    )
    loaded = load_metrics([metrics], None, env={})
    assert loaded.ok, loaded.all_errors()
    output = metrics / "out.csv"
    cpu = time.process_time()
    start, finish = int(times[0]) // step * step, int(times[-1]) // step * step + step
    code = asyncio.run(backtest(loaded.metrics["nab"], start, finish, output, out=io.StringIO()))
    cpu = time.process_time() - cpu
    assert code == 0, path
    by_period: dict[int, tuple[float, float]] = {}
    with output.open() as fh:
        for row in csv.DictReader(fh):
            t = int(datetime.fromisoformat(row["timestamp"]).timestamp())
            by_period[t] = (float(row["score"] or 0.0), float(row["notified"]))
    periods = times // step * step
    pairs = [by_period.get(int(p), (0.0, 0.0)) for p in periods]
    return np.asarray([a for a, _ in pairs]), np.asarray([b for _, b in pairs]), cpu


def run_file(
    job: tuple[str, str, list[list[str]], list[str]],
) -> tuple[str, dict[str, tuple[Labelled, Labelled, float]]]:
    key, path, windows, names = job
    times = load_times(Path(path))
    rows = row_windows(times, windows)
    out = {}
    with tempfile.TemporaryDirectory(prefix="dtk-nab-") as tmp:
        for name in names:
            scores, notified, cpu = replay(Path(path), times, name, Path(tmp))
            out[name] = (Labelled(key, scores, rows), Labelled(key, notified, rows), cpu)
    return key, out


def calibration(files: list[Labelled]) -> float:
    """Share of anomaly-free scored rows at or above 0.5."""
    high = total = 0
    for f in files:
        free = np.ones(len(f.scores), bool)
        free[: probation(len(f.scores))] = False
        for a, b in f.windows:
            free[a : b + 1] = False
        high += int((f.scores[free] >= 0.5).sum())
        total += int(free.sum())
    return 100.0 * high / max(total, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detectors", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--data", type=Path, default=None)
    args = ap.parse_args()
    data = args.data or default_data()
    labels = json.loads((data / "windows.json").read_text())
    jobs = [(k, str(data / "data" / k), w, args.detectors) for k, w in sorted(labels.items())]
    scores: dict[str, list[Labelled]] = {n: [] for n in args.detectors}
    notes: dict[str, list[Labelled]] = {n: [] for n in args.detectors}
    cpu: dict[str, float] = dict.fromkeys(args.detectors, 0.0)
    wall = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for _key, out in pool.map(run_file, jobs):
            for n, (s, note, used) in out.items():
                scores[n].append(s)
                notes[n].append(note)
                cpu[n] += used
    points = sum(len(f.scores) for f in scores[args.detectors[0]])
    print(f"{len(jobs)} files, {points} rows, {time.perf_counter() - wall:.0f} s wall")
    print(f"\n{'':<15}{'--- score column (best threshold) ---':^44}{'--- notified ---':^30}")
    print(
        f"{'detector':<15}{'standard':>9}{'low_FP':>8}{'low_FN':>8}{'thresh':>8}{'at 0.5':>8}{'recall':>7}"
        f"{'standard':>10}{'low_FP':>8}{'low_FN':>8}{'recall':>7}{'calib %':>9}{'points/s':>10}"
    )
    for n in args.detectors:
        cells = {p: best_threshold(scores[n], w) for p, w in PROFILES.items()}
        t_std = cells["standard"][0]
        recall, _ = window_recall_and_fp(scores[n], t_std)
        at_line = normalised(scores[n], 0.5, PROFILES["standard"])
        fired = {p: normalised(notes[n], 0.5, w) for p, w in PROFILES.items()}
        n_recall, _ = window_recall_and_fp(notes[n], 0.5)
        speed = points / cpu[n] if cpu[n] > 0 else math.inf
        print(
            f"{n:<15}{cells['standard'][1]:>9.1f}{cells['reward_low_FP_rate'][1]:>8.1f}"
            f"{cells['reward_low_FN_rate'][1]:>8.1f}{t_std:>8.3f}{at_line:>8.1f}{recall:>7.2f}"
            f"{fired['standard']:>10.1f}{fired['reward_low_FP_rate']:>8.1f}{fired['reward_low_FN_rate']:>8.1f}"
            f"{n_recall:>7.2f}{calibration(scores[n]):>9.2f}{speed:>10,.0f}"
        )


if __name__ == "__main__":
    main()

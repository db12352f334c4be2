"""Detection quality on the NAB subset in ../shared/data/nab (see detectkd.evaluation).

    .venv/bin/python benchmarks/nab_eval.py [--detectors zscore auto ...] [--cooldown 200]
                                            [--consecutive 1] [--data DIR]

Every file is streamed point by point through each detector exactly as the
daemon runs it (the same SeriesWindow, only past data per point); a skipped
point (cold start, missing) scores 0. Two tables, each with the NAB-style
normalised score for the standard, low-FP and low-FN profiles (one threshold
per profile across all files) and, at the standard profile's threshold, the
recall of windows and false positives per 1,000 scored points:

- rows: every point scoring at or above the threshold is a detection (NAB's
  own way of thresholding raw scores);
- alerts: the points where the daemon would send a FIRING, i.e. the verdicts
  (score >= threshold) through the real alert state machine with default
  conditions plus `cooldown_minutes` of `--cooldown` periods; "at 0.5" is
  the score at the detectors' own alarm line, what the daemon does.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectkd.alerting.state import Rules, SeriesState, Verdict, step  # noqa: E402
from detectkd.config.models import Conditions  # noqa: E402
from detectkd.detectors import registry  # noqa: E402
from detectkd.detectors.base import Current, Detector  # noqa: E402
from detectkd.detectors.features import feature_value  # noqa: E402
from detectkd.evaluation import (  # noqa: E402
    PROFILES,
    Labelled,
    best_threshold,
    normalised,
    window_recall_and_fp,
)
from detectkd.window import SeriesWindow  # noqa: E402

# The configurations compared. `zscore` is the rolling z-score baseline (NAB's windowed Gaussian).
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "zscore": ("zscore", {"window_size": 1000, "n_sigma": 3, "use_weighted": False, "min_samples": 50}),
    "mad": ("mad", {"window_size": 1000, "n_sigma": 4, "use_weighted": False, "min_samples": 50}),
    "mad_hourly": (
        "mad",
        {
            "window_size": 2000,
            "n_sigma": 4,
            "use_weighted": False,
            "min_samples": 30,
            "seasonal_features": ["hour_of_day"],
        },
    ),
    "seasonal": ("seasonal", {"season": "hour_of_day", "window_size": "14d", "n_sigma": 4}),
    "iqr": ("iqr", {"window_size": 1000, "multiplier": 3.0, "min_samples": 50}),
    "auto": ("auto", {}),
    "forecast": ("forecast", {"window_size": 2000, "season": "1d", "n_sigma": 4, "min_samples": 50}),
    "flatline": ("flatline", {"min_points": 30}),
}


COOLDOWN_PERIODS = 200  # the alert conditions used for the "alerts" table (cooldown_minutes)
CONSECUTIVE = 1
ALERT_GRID = [round(0.4 + 0.025 * i, 3) for i in range(23)]


def default_data() -> Path:
    for base in (REPO.parent / "shared", Path("/work/shared")):
        if (base / "data" / "nab").is_dir():
            return base / "data" / "nab"
    raise SystemExit("nab data not found (../shared/data/nab)")


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    times, values = [], []
    with path.open() as fh:
        for row in csv.DictReader(fh):
            moment = datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC)
            times.append(int(moment.timestamp()))
            values.append(float(row["value"]))
    return np.asarray(times, np.int64), np.asarray(values, np.float64)


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


def build(name: str, step: int) -> Detector:
    kind, params = CONFIGS[name]
    dtype = registry.lookup(kind)
    assert dtype is not None, kind
    return dtype.build(dtype.params.model_validate(params), step, name)


def stream(name: str, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-row scores, point-in-time, through the daemon's own window."""
    step = int(np.median(np.diff(times)))
    det = build(name, step)
    feats = det.feature_names()
    window = SeriesWindow(det.window_seconds(step) + step, feats)
    utc = ZoneInfo("UTC")
    scores = np.zeros(len(values))
    for i, (t, v) in enumerate(zip(times.tolist(), values.tolist(), strict=True)):
        f = {n: feature_value(n, t, {}, utc) for n in feats}
        r = det.detect(window.history(), Current(t, v, f, "nab"))
        scores[i] = 0.0 if r.skipped else r.score
        window.add(t, v, f)
    return scores


def run_file(
    args: tuple[str, str, list[list[str]], list[str], int, int],
) -> tuple[str, dict[str, Labelled], dict[str, dict[float, Labelled]], float, int]:
    """One file through every detector, and its scores through the state machine at every
    threshold of the alerts sweep (in the worker, so the sweep runs in parallel too)."""
    key, path, windows, names, cooldown, consecutive = args
    t0 = time.process_time()
    times, values = load(Path(path))
    rows = row_windows(times, windows)
    step_s = int(np.median(np.diff(times)))
    out = {n: Labelled(key, stream(n, times, values), rows) for n in names}
    swept = {n: {t: alerts(f, step_s, t, cooldown, consecutive) for t in ALERT_GRID} for n, f in out.items()}
    return key, out, swept, time.process_time() - t0, step_s


def alerts(f: Labelled, step_s: int, threshold: float, cooldown: int, consecutive: int) -> Labelled:
    """Rows where the daemon would send a FIRING: the detector's verdicts (score >= threshold)
    through the alert state machine with default conditions plus a cooldown."""
    cond = Conditions(cooldown_minutes=cooldown * step_s / 60, consecutive_anomalies=consecutive)
    rules = Rules.of(cond, timedelta(seconds=step_s))
    state = SeriesState()
    out = np.zeros(len(f.scores))
    for i, score in enumerate(f.scores.tolist()):
        state, notes = step(state, i * step_s, Verdict(score >= threshold, None), rules, True)
        if any(n.kind == "anomaly" and n.status == "firing" for n in notes):
            out[i] = 1.0
    return Labelled(f.name, out, f.windows)


def best_alert_threshold(
    swept: dict[float, list[Labelled]], weights: tuple[float, float, float]
) -> tuple[float, float, list[Labelled]]:
    best: tuple[float, float, list[Labelled]] = (1.01, 0.0, [])
    for t in ALERT_GRID:
        score = normalised(swept[t], 0.5, weights)
        if score > best[1] or not best[2]:
            best = (t, score, swept[t])
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detectors", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--cooldown", type=int, default=COOLDOWN_PERIODS, help="alerts: cooldown in periods")
    ap.add_argument("--consecutive", type=int, default=CONSECUTIVE, help="alerts: consecutive_anomalies")
    args = ap.parse_args()
    data = args.data or default_data()
    labels = json.loads((data / "windows.json").read_text())
    jobs = [
        (k, str(data / "data" / k), w, args.detectors, args.cooldown, args.consecutive)
        for k, w in sorted(labels.items())
    ]
    per: dict[str, list[Labelled]] = {n: [] for n in args.detectors}
    sweeps: dict[str, dict[float, list[Labelled]]] = {n: {t: [] for t in ALERT_GRID} for n in args.detectors}
    cpu = 0.0
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for _key, out, swept, used, _step in pool.map(run_file, jobs):
            cpu += used
            for n, f in out.items():
                per[n].append(f)
                for t, rows in swept[n].items():
                    sweeps[n][t].append(rows)
    points = sum(len(f.scores) for f in per[args.detectors[0]])
    print(f"{len(jobs)} files, {points} points, {cpu:.0f} CPU-s for {len(args.detectors)} detectors")
    cols = f"{'standard':>10}{'low_FP':>10}{'low_FN':>10}{'threshold':>11}{'recall':>9}{'FP/1k':>8}"
    print("\nrows: every point whose score is at or above the threshold is a detection (NAB's way)")
    print(f"{'detector':<14}{cols}")
    for n in args.detectors:
        files = per[n]
        cells = {profile: best_threshold(files, weights) for profile, weights in PROFILES.items()}
        t_std = cells["standard"][0]
        recall, fp = window_recall_and_fp(files, t_std)
        print(
            f"{n:<14}{cells['standard'][1]:>10.1f}{cells['reward_low_FP_rate'][1]:>10.1f}"
            f"{cells['reward_low_FN_rate'][1]:>10.1f}{t_std:>11.3f}{recall:>9.2f}{fp:>8.2f}"
        )
    print(f"\nalerts: FIRING notifications of the alert state machine (default conditions, "
          f"cooldown {args.cooldown} periods) are the detections")  # fmt: skip
    print(f"{'detector':<14}{cols}{'at 0.5':>9}")
    for n in args.detectors:
        cells2 = {p: best_alert_threshold(sweeps[n], w) for p, w in PROFILES.items()}
        t_std, _, fired = cells2["standard"]
        recall, fp = window_recall_and_fp(fired, 0.5)
        at_line = normalised(sweeps[n][0.5], 0.5, PROFILES["standard"])
        print(
            f"{n:<14}{cells2['standard'][1]:>10.1f}{cells2['reward_low_FP_rate'][1]:>10.1f}"
            f"{cells2['reward_low_FN_rate'][1]:>10.1f}{t_std:>11.3f}{recall:>9.2f}{fp:>8.2f}{at_line:>9.1f}"
        )


if __name__ == "__main__":
    main()

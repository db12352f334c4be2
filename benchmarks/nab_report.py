"""The figures `nab_eval.py` prints, from per-row scores already in hand.

A *column* is one detector's per-row values over the corpus (`Labelled` files):
its `score` (a threshold is chosen, as NAB's optimiser does), its `notified`
(0/1, the line is fixed at 0.5: nothing to choose), or a reference detector's
published `anomaly_score` (`results/<detector>.csv.gz`, scored like a `score`).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detectkd.evaluation import (
    NEVER,
    PROFILES,
    HeldOut,
    Labelled,
    best_threshold,
    leave_one_group_out,
    normalised,
    pooled,
    probation,
    raw_total,
    windows_in,
)

STANDARD = PROFILES["standard"]
CATEGORIES = {  # NAB's seven categories, short names for the tables
    "artificialNoAnomaly": "noAnom",
    "artificialWithAnomaly": "artAnom",
    "realKnownCause": "known",
    "realAWSCloudwatch": "AWS",
    "realAdExchange": "adEx",
    "realTraffic": "traffic",
    "realTweets": "tweets",
}
QUIET = "artificialNoAnomaly"  # no window: any detection there is a false alarm
# NAB's results/final_results.json (v1.1, all 58 files)
PUBLISHED = {
    "windowedGaussian": {"standard": 39.65, "reward_low_FP_rate": 20.87, "reward_low_FN_rate": 47.41},
    "numenta": {"standard": 70.10, "reward_low_FP_rate": 63.12, "reward_low_FN_rate": 74.32},
    "ARTime": {"standard": 74.85, "reward_low_FP_rate": 65.15, "reward_low_FN_rate": 80.36},
}


def category(f: Labelled) -> str:
    return f.name.split("/")[0]


def by_category(files: Sequence[Labelled]) -> dict[str, list[Labelled]]:
    groups: dict[str, list[Labelled]] = {c: [] for c in CATEGORIES}
    for f in files:
        groups[category(f)].append(f)
    return {c: fs for c, fs in groups.items() if fs}


def anomaly_free(f: Labelled) -> np.ndarray:
    """The scored rows outside every window."""
    free = np.ones(len(f.scores), bool)
    free[: probation(len(f.scores))] = False
    for a, b in f.windows:
        free[a : b + 1] = False
    return free


@dataclass(frozen=True)
class Figures:
    profiles: dict[str, tuple[float, float]]  # profile: (threshold, normalised score)
    held: dict[str, HeldOut]  # category: scored at a threshold chosen on the other six
    held_mean: float  # of the categories with windows
    held_pooled: float
    caught: int  # windows with a detection (standard threshold)
    windows: int
    fp_rows: int  # detections outside every window
    quiet: int  # detections on artificialNoAnomaly
    per_1000: dict[str, float]  # detections per 1,000 anomaly-free rows, by category and "all"
    calibration: float  # % of anomaly-free rows scoring 0.5 or more (NaN for a fixed line)


def figures(files: Sequence[Labelled], line: float | None = None) -> Figures:
    """`line`: a fixed threshold (notifications: 0.5); None: chosen per profile by NAB's optimiser,
    and per held-out category on the other six."""
    groups = by_category(files)
    if line is None:
        profiles = {p: best_threshold(files, w) for p, w in PROFILES.items()}
        held = leave_one_group_out(groups, STANDARD)
    else:
        profiles = {p: (line, normalised(files, line, w)) for p, w in PROFILES.items()}
        held = {c: fixed(fs, line) for c, fs in groups.items()}
    threshold = profiles["standard"][0]
    caught = fp_rows = 0
    free_rows: dict[str, int] = dict.fromkeys([*groups, "all"], 0)
    free_hits: dict[str, int] = dict.fromkeys([*groups, "all"], 0)
    high = 0
    for f in files:
        hit = f.scores >= threshold
        hit[: probation(len(f.scores))] = False
        caught += sum(bool(hit[a : b + 1].any()) for a, b in f.windows)
        free = anomaly_free(f)
        for key in (category(f), "all"):
            free_rows[key] += int(free.sum())
            free_hits[key] += int((hit & free).sum())
        fp_rows += int((hit & free).sum())
        high += int((f.scores[free] >= 0.5).sum())
    with_windows = [h.score for h in held.values() if h.windows]
    return Figures(
        profiles=profiles,
        held=held,
        held_mean=float(np.mean(with_windows)) if with_windows else math.nan,
        held_pooled=pooled(held, STANDARD),
        caught=caught,
        windows=windows_in(files),
        fp_rows=fp_rows,
        quiet=held[QUIET].detections if QUIET in held else 0,
        per_1000={k: 1000.0 * free_hits[k] / max(free_rows[k], 1) for k in free_rows},
        calibration=100.0 * high / max(free_rows["all"], 1) if line is None else math.nan,
    )


def fixed(files: Sequence[Labelled], line: float) -> HeldOut:
    raw = raw_total(files, line, STANDARD)
    n = windows_in(files)
    detections = sum(int((f.scores[probation(len(f.scores)) :] >= line).sum()) for f in files)
    return HeldOut(line, normalised(files, line, STANDARD) if n else math.nan, raw, n, detections)


def load_reference(path: Path, labels: dict[str, list[list[str]]]) -> list[Labelled]:
    """A published result file (`file,timestamp,anomaly_score`) as labelled files; NAB's
    window edges are timestamps of the file's rows."""
    rows: dict[str, tuple[list[str], list[float]]] = {}
    with gzip.open(path, "rt") as fh:
        for r in csv.DictReader(fh):
            stamps, scores = rows.setdefault(r["file"], ([], []))
            stamps.append(r["timestamp"])
            scores.append(float(r["anomaly_score"]))
    files = []
    for name, (stamps, scores) in sorted(rows.items()):
        index = {t: i for i, t in enumerate(stamps)}
        windows = tuple((index[a[:19]], index[b[:19]]) for a, b in labels[name])
        files.append(Labelled(name, np.asarray(scores), windows))
    return files


def references(data: Path) -> dict[str, list[Labelled]]:
    labels = json.loads((data / "windows.json").read_text())
    return {
        name: load_reference(data / "results" / f"{name}.csv.gz", labels)
        for name in PUBLISHED
        if (data / "results" / f"{name}.csv.gz").is_file()
    }


def cell(x: float, width: int, digits: int = 1) -> str:
    if isinstance(x, float) and math.isnan(x):
        return f"{'—':>{width}}"
    if x == NEVER:
        return f"{'never':>{width}}"
    return f"{x:>{width}.{digits}f}"


def print_held_out(rows: dict[str, Figures], title: str) -> None:
    cats = list(CATEGORIES)
    print(f"\n{title}")
    head = "".join(f"{CATEGORIES[c]:>8}" for c in cats[1:])
    print(f"{'':<26}{head}{'mean':>7}{'pooled':>8}{'full':>7}{'noAnom':>8}")
    for label, fig in rows.items():
        scores = "".join(cell(fig.held[c].score, 8) if c in fig.held else f"{'':>8}" for c in cats[1:])
        print(
            f"{label:<26}{scores}{cell(fig.held_mean, 7)}{cell(fig.held_pooled, 8)}"
            f"{cell(fig.profiles['standard'][1], 7)}{fig.quiet:>8}"
        )


def print_operations(rows: dict[str, Figures]) -> None:
    cats = list(CATEGORIES)
    print(
        "\nDetections (score column: at the standard threshold; notified: notifications) — windows caught,"
        "\nfalse-positive rows, and per 1,000 anomaly-free rows by category (the product's false-page rate)"
    )
    head = "".join(f"{CATEGORIES[c]:>8}" for c in cats)
    print(f"{'':<26}{'caught':>8}{'FP rows':>8}{head}{'all':>7}{'calib %':>9}")
    for label, fig in rows.items():
        rates = "".join(cell(fig.per_1000.get(c, math.nan), 8, 2) for c in cats)
        print(
            f"{label:<26}{f'{fig.caught}/{fig.windows}':>8}{fig.fp_rows:>8}{rates}"
            f"{cell(fig.per_1000['all'], 7, 2)}{cell(fig.calibration, 9, 2)}"
        )


def print_references(refs: dict[str, Figures]) -> None:
    if not refs:
        return
    print("\nReference detectors: NAB's published per-row results (results/*.csv.gz) scored here")
    print(f"{'':<20}{'--- published ---':^24}{'--- reproduced ---':^24}{'thresh':>10}")
    print(f"{'detector':<20}" + f"{'standard':>9}{'low_FP':>8}{'low_FN':>7}" * 2 + f"{'(std)':>10}")
    for name, fig in refs.items():
        pub = PUBLISHED[name]
        got = {p: fig.profiles[p][1] for p in PROFILES}
        print(
            f"{name:<20}{pub['standard']:>9.2f}{pub['reward_low_FP_rate']:>8.2f}{pub['reward_low_FN_rate']:>7.2f}"
            f"{got['standard']:>9.2f}{got['reward_low_FP_rate']:>8.2f}{got['reward_low_FN_rate']:>7.2f}"
            f"{cell(fig.profiles['standard'][0], 10, 4)}"
        )


def as_json(fig: Figures) -> dict[str, object]:
    def num(x: float) -> float | None:
        return None if math.isnan(x) or math.isinf(x) else round(x, 4)

    return {
        "profiles": {p: {"threshold": num(t), "score": num(s)} for p, (t, s) in fig.profiles.items()},
        "held_out": {
            c: {
                "threshold": num(h.threshold),
                "score": num(h.score),
                "raw": num(h.raw),
                "detections": h.detections,
            }
            for c, h in fig.held.items()
        },
        "held_out_mean": num(fig.held_mean),
        "held_out_pooled": num(fig.held_pooled),
        "windows_caught": fig.caught,
        "windows": fig.windows,
        "fp_rows": fig.fp_rows,
        "no_anomaly_detections": fig.quiet,
        "per_1000_anomaly_free": {k: num(v) for k, v in fig.per_1000.items()},
        "calibration_percent": num(fig.calibration),
    }

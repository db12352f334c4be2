"""Detection quality on NAB (all 58 files in ../shared/data/nab), measured as a user would.

    .venv/bin/python benchmarks/nab_eval.py [--detectors auto rolling_zscore ...] [--data DIR]
                                            [--json PATH]
    .venv/bin/python benchmarks/nab_eval.py --detectors      # the reference reproduction only

Every file is replayed with `detectkd backtest --output` (in-process: the same
function) through a `csv` collector at the file's own sampling step, with the
detector's default parameters and the default alert conditions. Each data row
gets the `score` and `notified` of the period that holds it. Then, with NAB's
scorer and optimiser (detectkd.evaluation; 0 = never fires, 100 = perfect):

- score: every row whose `score` is at or above the threshold is a detection;
  NAB's optimiser picks one threshold per profile across all files;
- notified: the rows where the alert rules send a FIRING are the detections
  (what users receive; no threshold to choose);
- held out: each category scored at the threshold chosen on the other six
  (leave one category out); `mean` over the six categories with windows,
  `pooled` their raw points normalised together (comparable with `full`),
  `noAnom` the detections on artificialNoAnomaly (must be 0);
- per 1,000: detections outside every window per 1,000 anomaly-free rows
  (after the probationary 15 %), per category: for `notified` the false-page rate;
- calibration: the share of anomaly-free rows whose score is at or above 0.5;
- points/s: replay speed, CPU time of the whole backtest;
- references: NAB's published per-row results (results/*.csv.gz) scored here,
  beside NAB's published figures, and in the held-out tables.

`rolling_zscore` is NAB's windowed Gaussian: an unweighted z-score over the last
1,000 points, 3 sigma.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
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

from benchmarks.nab_report import (  # noqa: E402
    Figures,
    as_json,
    figures,
    print_held_out,
    print_operations,
    print_references,
    references,
)
from detectkd.commands.backtest import backtest  # noqa: E402
from detectkd.evaluation import Labelled  # noqa: E402
from detectkd.logs import configure as configure_logs  # noqa: E402
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


def replay_all(data: Path, names: list[str]) -> tuple[dict[str, list[Labelled]], dict[str, list[Labelled]]]:
    labels = json.loads((data / "windows.json").read_text())
    jobs = [(k, str(data / "data" / k), w, names) for k, w in sorted(labels.items())]
    scores: dict[str, list[Labelled]] = {n: [] for n in names}
    notes: dict[str, list[Labelled]] = {n: [] for n in names}
    cpu: dict[str, float] = dict.fromkeys(names, 0.0)
    wall = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for _key, out in pool.map(run_file, jobs):
            for n, (s, note, used) in out.items():
                scores[n].append(s)
                notes[n].append(note)
                cpu[n] += used
    points = sum(len(f.scores) for f in scores[names[0]])
    print(f"{len(jobs)} files, {points} rows, {time.perf_counter() - wall:.0f} s wall")
    print(
        "points/s (CPU of the replay): " + ", ".join(f"{n} {points / max(cpu[n], 1e-9):,.0f}" for n in names)
    )
    return scores, notes


def save_rows(path: Path, scores: dict[str, list[Labelled]], notes: dict[str, list[Labelled]]) -> None:
    """Every replayed row, to re-score later without replaying (`--from-rows`)."""
    arrays = {f"{n}|score|{f.name}": f.scores for n, fs in scores.items() for f in fs}
    arrays |= {f"{n}|notified|{f.name}": f.scores for n, fs in notes.items() for f in fs}
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def load_rows(
    path: Path, data: Path, names: list[str]
) -> tuple[dict[str, list[Labelled]], dict[str, list[Labelled]]]:
    labels = json.loads((data / "windows.json").read_text())
    saved = np.load(path)
    out: tuple[dict[str, list[Labelled]], dict[str, list[Labelled]]] = ({}, {})
    for column, into in zip(("score", "notified"), out, strict=True):
        for n in names:
            into[n] = []
            for key, windows in sorted(labels.items()):
                rows = row_windows(load_times(data / "data" / key), windows)
                into[n].append(Labelled(key, saved[f"{n}|{column}|{key}"], rows))
    return out


def print_full(score: dict[str, Figures], notified: dict[str, Figures], n_files: int) -> None:
    print(f"\nAll {n_files} files (NAB's standard / low FP / low FN profiles)")
    print(f"\n{'':<16}{'--- score column (best threshold) ---':^36}{'--- notified ---':^26}")
    print(
        f"{'detector':<16}{'standard':>9}{'low_FP':>8}{'low_FN':>8}{'thresh':>8}"
        f"{'standard':>10}{'low_FP':>8}{'low_FN':>8}{'calib %':>9}"
    )
    for n, fig in score.items():
        s, note = fig.profiles, notified[n].profiles
        print(
            f"{n:<16}{s['standard'][1]:>9.1f}{s['reward_low_FP_rate'][1]:>8.1f}{s['reward_low_FN_rate'][1]:>8.1f}"
            f"{s['standard'][0]:>8.3f}{note['standard'][1]:>10.1f}{note['reward_low_FP_rate'][1]:>8.1f}"
            f"{note['reward_low_FN_rate'][1]:>8.1f}{fig.calibration:>9.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detectors", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write every figure here")
    ap.add_argument("--save-rows", type=Path, default=None, help="keep every replayed row (.npz)")
    ap.add_argument("--from-rows", type=Path, default=None, help="score rows saved earlier, no replay")
    args = ap.parse_args()
    configure_logs(level="error")  # each file's replay warnings (rows sharing a period) are known
    data = args.data or default_data()
    refs = {name: figures(files) for name, files in references(data).items()}
    score: dict[str, Figures] = {}
    notified: dict[str, Figures] = {}
    if args.detectors:
        if args.from_rows is not None:
            scores, notes = load_rows(args.from_rows, data, args.detectors)
        else:
            scores, notes = replay_all(data, args.detectors)
        if args.save_rows is not None:
            save_rows(args.save_rows, scores, notes)
        score = {n: figures(scores[n]) for n in args.detectors}
        notified = {n: figures(notes[n], line=0.5) for n in args.detectors}
        print_full(score, notified, len(scores[args.detectors[0]]))
    print_references(refs)
    rows = {f"{n} score": score[n] for n in score} | {f"ref {name}": f for name, f in refs.items()}
    print_held_out(rows, "Held out, score column (standard; threshold chosen on the other six categories)")
    if notified:
        print_held_out(
            {f"{n} notified": f for n, f in notified.items()},
            "Held out, notified column (standard; nothing chosen)",
        )
    print_operations(rows | {f"{n} notified": f for n, f in notified.items()})
    if args.json is not None:
        dump = {"score": score, "notified": notified, "references": refs}
        args.json.write_text(
            json.dumps({k: {n: as_json(f) for n, f in v.items()} for k, v in dump.items()}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()

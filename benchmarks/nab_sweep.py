"""Parameter sweeps of a detector on NAB, each choice made leave-one-category-out.

    nice -n 10 .venv/bin/python benchmarks/nab_sweep.py --detector auto \\
        --candidates 'risk: 0' 'risk: 1e-4' 'risk: 1e-5, tail: 0.99' [--rows DIR]

Every candidate (a flow-style set of `params`, merged over the detector's defaults) is
replayed over all 58 files exactly as `nab_eval.py` does (the backtest function, the
default alert conditions). Then, for each of the seven categories held out in turn, the
candidate with the best standard score on the other six is chosen (`notified`: the
notifications as they are; `score`: at the threshold NAB's optimiser picks on the six) and
the held-out category is scored with it. Printed: per candidate the full-corpus figures,
windows caught and false pages per 1,000 anomaly-free rows; then per held-out category the
choice and its score, their mean, and the notifications of the choices on
artificialNoAnomaly. `--rows DIR` keeps (and reuses) every candidate's rows, per build (the file
name carries a digest of `detectkd/`'s code).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import nab_eval  # noqa: E402
from benchmarks.nab_report import QUIET, by_category, figures  # noqa: E402
from detectkd.evaluation import PROFILES, Labelled, best_threshold, normalised, probation  # noqa: E402
from detectkd.logs import configure as configure_logs  # noqa: E402

STANDARD = PROFILES["standard"]


def code_digest(root: Path = REPO / "detectkd") -> str:
    """A digest of every Python file under `root` (its defaults included): a candidate's kept
    rows are reused only by the build that replayed them. (Keyed by the candidate alone, a
    sweep after a default changed reused the rows of the build before, silently.)"""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def rows_for(
    detector: str, params: str, data: Path, keep: Path | None
) -> tuple[list[Labelled], list[Labelled]]:
    name = f"{detector} {{{params}}}"
    stem = name.replace(" ", "_").replace("/", "_")
    saved = keep / f"{stem}_{code_digest()}.npz" if keep else None
    nab_eval.CONFIGS[name] = f"{{type: {detector}, params: {{{params}}}}}"
    if saved is not None and saved.is_file():
        scores, notes = nab_eval.load_rows(saved, data, [name])
    else:
        scores, notes = nab_eval.replay_all(data, [name])
        if saved is not None:
            nab_eval.save_rows(saved, scores, notes)
    return scores[name], notes[name]


def six(files: list[Labelled], held: str) -> list[Labelled]:
    return [f for f in files if not f.name.startswith(held + "/")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", default="auto")
    ap.add_argument("--candidates", nargs="+", required=True)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--rows", type=Path, default=None, help="keep and reuse each candidate's rows here")
    args = ap.parse_args()
    configure_logs(level="error")
    data = args.data or nab_eval.default_data()
    if args.rows is not None:
        args.rows.mkdir(parents=True, exist_ok=True)
    got = {c: rows_for(args.detector, c, data, args.rows) for c in args.candidates}
    print(f"\n{'candidate':<34}{'score':>7}{'heldS':>7}{'notif':>7}{'heldN':>7}{'caught':>8}{'FProws':>7}"
          f"{'/1000':>7}{'worst':>7}{'noAnom':>7}  per category /1000")  # fmt: skip
    for c, (scores, notes) in got.items():
        s, n = figures(scores), figures(notes, line=0.5)
        per = {k: v for k, v in n.per_1000.items() if k != "all"}
        print(
            f"{c:<34}{s.profiles['standard'][1]:>7.1f}{s.held_mean:>7.1f}{n.profiles['standard'][1]:>7.1f}"
            f"{n.held_mean:>7.1f}{n.caught:>8}{n.fp_rows:>7}{n.per_1000['all']:>7.2f}{max(per.values()):>7.2f}"
            f"{n.quiet:>7}  " + " ".join(f"{v:.2f}" for v in per.values())
        )
    cats = [c for c in by_category(next(iter(got.values()))[0]) if c != QUIET]
    for column in ("notified", "score"):
        print(f"\nLeave one category out, {column} column: the choice on the other six, the held-out score")
        held_scores, quiet = [], 0
        for cat in cats:
            best, best_val, best_thr = "", -np.inf, 0.5
            for c, (scores, notes) in got.items():
                files = six(notes if column == "notified" else scores, cat)
                if column == "notified":
                    thr, val = 0.5, normalised(files, 0.5, STANDARD)
                else:
                    thr, val = best_threshold(files, STANDARD)
                if val > best_val + 1e-9:
                    best, best_val, best_thr = c, val, thr
            chosen = got[best][1] if column == "notified" else got[best][0]
            mine = [f for f in chosen if f.name.startswith(cat + "/")]
            held = normalised(mine, best_thr, STANDARD)
            quiet += sum(
                int((f.scores[probation(len(f.scores)) :] >= best_thr).sum())
                for f in chosen
                if f.name.startswith(QUIET + "/")
            )
            held_scores.append(held)
            print(f"  {cat:<24} chose {best:<34} (six: {best_val:6.1f})  held out {held:6.1f}")
        print(f"  mean {np.mean(held_scores):.1f}; artificialNoAnomaly detections of the choices: {quiet}")


if __name__ == "__main__":
    main()

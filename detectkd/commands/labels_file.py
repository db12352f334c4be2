"""Feedback labels from files, for `detectkd backtest --labels`: a team commits its labels next
to metrics.d and a CI job backtests against them without the daemon's store.

Three shapes, told apart by their content:
- the CSV `detectkd export` writes (columns `timestamp`, `series`, `feedback`, `feedback_by`,
  `feedback_note`; one row per point and detector): consecutive points of a series carrying
  the same label, author and note are one label spanning them. It has no metric column: its
  labels belong to the metric the caller names (the file's stem in a directory);
- a CSV with the columns `metric, series, period, until, label` (`until`, `note`, `by`
  optional; `metric` optional as above);
- JSON: a list of such objects (the shape the store keeps), or `{"labels": [...]}`.
Times are ISO 8601 (local time unless they carry an offset) or epoch seconds.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from detectkd.alerting.feedback import LABELS, Feedback, FeedbackError, make_feedback
from detectkd.durations import parse_moment

EXPORT_COLUMNS = {"timestamp", "series", "feedback"}
SUFFIXES = (".csv", ".json")


class LabelsError(ValueError):
    """A labels file that cannot be read; the message names the file and the row."""


def read_labels(path: Path, metric: str) -> list[Feedback]:
    """The labels in one file; `metric` for the rows that do not name one. Raises LabelsError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsError(f"{path}: {exc}") from None
    if path.suffix == ".json":
        return _from_objects(path, _json_rows(path, text), metric)
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or ())
    if columns >= EXPORT_COLUMNS:
        return _from_export(path, reader, metric)
    if columns >= {"period", "label"}:
        return _from_objects(path, ((i, dict(r)) for i, r in enumerate(reader, 2)), metric)
    found = ", ".join(sorted(columns))
    raise LabelsError(
        f"{path}: neither an export (timestamp, series, feedback, ...) nor a labels "
        f"CSV (metric, series, period, until, label); columns: {found}"
    )


def labels_by_metric(paths: Iterable[Path], metrics: Sequence[str]) -> dict[str, list[Feedback]]:
    """The labels in these files and directories (their *.csv and *.json), per metric name:
    every name found, so a caller can tell the names nothing backtests. A file without a
    metric column holds the labels of the metric it is named after (`orders.csv`), or, named
    on its own while one metric is backtested, of that metric. Raises LabelsError."""
    out: dict[str, list[Feedback]] = {m: [] for m in metrics}
    for p in paths:
        files = sorted(f for f in p.iterdir() if f.suffix in SUFFIXES) if p.is_dir() else [p]
        for f in files:
            default = metrics[0] if len(metrics) == 1 and not p.is_dir() else f.stem
            for fb in read_labels(f, default):
                out.setdefault(fb.metric, []).append(fb)
    return out


def _json_rows(path: Path, text: str) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabelsError(f"{path}: not JSON: {exc}") from None
    rows = data.get("labels") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise LabelsError(f'{path}: expected a list of labels (objects), or {{"labels": [...]}}')
    return enumerate(rows, 1)


def _moment(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        return parse_moment(text)


def _from_objects(path: Path, rows: Iterable[tuple[int, dict[str, Any]]], metric: str) -> list[Feedback]:
    out: list[Feedback] = []
    for where, row in rows:
        body = {k: v for k, v in row.items() if v not in (None, "")}
        body.setdefault("metric", metric)
        try:
            fb = make_feedback(body, str(body.get("by", "")), float(body.get("at", 0.0)), _moment)
        except (FeedbackError, ValueError) as exc:
            kind = "label" if path.suffix == ".json" else "row"
            raise LabelsError(f"{path}: {kind} {where}: {exc}") from None
        out.append(fb)
    return out


def _from_export(path: Path, reader: csv.DictReader[str], metric: str) -> list[Feedback]:
    """Runs of consecutive labelled points (rows repeat a point once per detector)."""
    points: dict[str, dict[int, tuple[str, str, str]]] = {}
    for line, row in enumerate(reader, 2):
        try:
            period = int(parse_moment(row["timestamp"]))
        except (ValueError, TypeError) as exc:
            raise LabelsError(f"{path}: row {line}: timestamp: {exc}") from None
        said = (row.get("feedback") or "", row.get("feedback_by") or "", row.get("feedback_note") or "")
        if said[0] and said[0] not in LABELS:
            known = ", ".join(LABELS)
            raise LabelsError(f"{path}: row {line}: feedback must be one of {known}, not {said[0]!r}")
        points.setdefault(row.get("series") or "", {})[period] = said
    out: list[Feedback] = []
    for series, by_period in points.items():
        run: list[int] = []
        for period in [*sorted(by_period), -1]:
            said = by_period.get(period, ("", "", ""))
            if run and by_period[run[0]] != said:
                label, by, note = by_period[run[0]]
                out.append(Feedback(metric, series, run[0], label, run[-1], by, 0.0, note))
                run = []
            if said[0]:
                run.append(period)
    return out

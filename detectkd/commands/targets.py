"""What a command works on: the daemon's settings, a metric found by file or name (with its
profiles file), and the --from/--to range. Shared by the `detectkd` CLI and the commands."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from detectkd.config.settings import Settings, load_settings
from detectkd.durations import parse_duration, parse_moment
from detectkd.errors import ConfigError
from detectkd.specs.loader import LoadResult, MetricSpec, load_metrics

DEFAULT_CONFIG = Path("/etc/detectk/detectkd.yaml")


def settings_from(path: str | None) -> Settings:
    """--config, else $DETECTK_CONFIG, else /etc/detectk/detectkd.yaml if present, else env only."""
    chosen = path or os.environ.get("DETECTK_CONFIG")
    if chosen:
        return load_settings(Path(chosen))
    return load_settings(DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)


def print_load(result: LoadResult, out: Any = sys.stdout) -> None:
    for issue in result.all_errors():
        print(f"ERROR   {issue}", file=out)
    for issue in result.warnings:
        print(f"WARNING {issue}", file=out)


def nearby_profiles(paths: list[Path]) -> Path | None:
    """A profiles file beside the metrics: DetectK's `detectk_profiles.yaml` in their directory
    or the one above, `profiles.yaml` above, or either in CWD."""
    candidates: list[Path] = []
    for p in paths:
        here = p if p.is_dir() else p.parent
        candidates += [here / "detectk_profiles.yaml", here.parent / "profiles.yaml"]
        candidates += [here.parent / "detectk_profiles.yaml"]
    candidates += [Path("profiles.yaml"), Path("detectk_profiles.yaml")]
    return next((c for c in candidates if c.is_file()), None)


def profiles_for(target: str, settings: Settings, profiles: Path | None = None) -> Path | None:
    """The profiles file a command reads: --profiles, the settings' file, or one nearby."""
    prof = profiles or settings.profiles_file
    if prof is None or not prof.exists():
        path = Path(target)
        prof = nearby_profiles([path if path.exists() else settings.metrics_dir])
    return prof


def find_metric(target: str, settings: Settings, profiles: Path | None = None) -> MetricSpec:
    """A metric by file path, or by name from the metrics directory."""
    path = Path(target)
    prof = profiles_for(target, settings, profiles)
    if not path.is_file() and not settings.metrics_dir.is_dir():
        raise SystemExit(
            f"detectkd: {target!r} is not a file and the metrics directory {settings.metrics_dir} "
            "does not exist; give the metric file's path, or the settings that name the directory: "
            "--config FILE (or DETECTK_CONFIG), or DETECTK_METRICS_DIR"
        )
    source = [path] if path.is_file() else [settings.metrics_dir]
    result = load_metrics(source, prof, calendars=settings.calendars)
    if path.is_file():
        if not result.metrics:
            raise ConfigError([i for f in result.errors.values() for i in f])
        return next(iter(result.metrics.values()))
    spec = result.metrics.get(target)
    if spec is None:
        errors = [i for f in result.errors.values() for i in f]
        if errors:
            raise ConfigError(errors)
        raise SystemExit(f"detectkd: no metric named {target!r} in {settings.metrics_dir}")
    return spec


def parse_range(args: argparse.Namespace, command: str) -> tuple[float | None, float] | int:
    """--from (None when not given) and --to (default: now), or 2 after printing why not."""
    now = time.time()
    try:
        start = parse_when(args.start, now) if args.start else None
        finish = parse_when(args.to, now) if args.to else now
    except ValueError as exc:
        print(f"detectkd {command}: {exc}", file=sys.stderr)
        return 2
    if start is not None and finish <= start:
        print(f"detectkd {command}: --to must be after --from", file=sys.stderr)
        return 2
    return start, finish


def parse_when(text: str, now: float) -> float:
    """A time (ISO 8601) or a duration meaning that long before now (`30d`)."""
    try:
        return now - parse_duration(text).total_seconds()
    except ValueError:
        pass
    try:
        return parse_moment(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a time ('2026-01-01 00:00') nor a duration ('30d')") from None

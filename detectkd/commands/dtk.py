"""`dtk`: DetectK's one-shot commands, same exit codes (0 ok, 1 error).

dtk run metric.yaml       collect, store, detect and alert for the current period
dtk validate PATH...      validate metric files
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from detectkd import __version__
from detectkd.commands.targets import settings_from
from detectkd.errors import ConfigError
from detectkd.specs.loader import load_metrics


def _profiles(arg: str | None, paths: list[str]) -> Path | None:
    if arg:
        return Path(arg)
    from detectkd.commands.targets import nearby_profiles

    return nearby_profiles([Path(p) for p in paths])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dtk", description=__doc__)
    p.add_argument("--version", action="version", version=f"dtk (detectkd) {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one metric once")
    run.add_argument("config")
    run.add_argument("--profiles")
    val = sub.add_parser("validate", help="validate metric files")
    val.add_argument("paths", nargs="+")
    val.add_argument("--profiles")
    args = p.parse_args(argv)

    try:
        settings = settings_from(None)
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    targets = args.paths if args.command == "validate" else [args.config]
    profiles = _profiles(args.profiles, targets) or settings.profiles_file
    if args.command == "validate":
        result = load_metrics([Path(x) for x in args.paths], profiles)
        for issue in result.all_errors():
            print(f"Error: {issue}")
        for issue in result.warnings:
            print(f"Warning: {issue}")
        if result.errors:
            return 1
        print(f"Configuration valid: {len(result.metrics)} metric(s)")
        return 0

    from detectkd.commands.check import check_metric

    result = load_metrics([Path(args.config)], profiles)
    if result.errors or not result.metrics:
        for issue in result.all_errors():
            print(f"Error: {issue}")
        return 1
    spec = next(iter(result.metrics.values()))
    return asyncio.run(check_metric(spec, settings, alert=True, profiles=profiles))


if __name__ == "__main__":
    raise SystemExit(main())

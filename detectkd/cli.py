"""`detectkd`: run the daemon, validate configs, check one metric."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detectkd import __version__
from detectkd.commands import silence as silence_cli
from detectkd.commands.targets import (
    find_metric,
    nearby_profiles,
    parse_range,
    print_load,
    profiles_for,
    settings_from,
)
from detectkd.config.calendars import CalendarRef
from detectkd.config.settings import Settings
from detectkd.durations import parse_moment
from detectkd.errors import ConfigError
from detectkd.shard import Shard
from detectkd.specs.loader import MetricSpec, load_metrics


def cmd_run(args: argparse.Namespace) -> int:
    from detectkd.app import run_daemon

    try:
        settings = settings_from(args.config)
    except ConfigError as exc:
        print(f"detectkd: invalid settings:\n{exc}", file=sys.stderr)
        return 1
    if args.web_config_file:  # Prometheus's flag name: --web.config.file
        settings = settings.model_copy(update={"web_config_file": Path(args.web_config_file).resolve()})
    if args.shard:
        sharded = with_shard(settings, args.shard)
        if sharded is None:
            return 2
        settings = sharded
    from detectkd.workers.supervisor import run_supervisor, worker_count

    if worker_count(settings.workers) > 1:
        return asyncio.run(run_supervisor(settings, args.config))
    return asyncio.run(run_daemon(settings))


def with_shard(settings: Settings, text: str) -> Settings | None:
    """`--shard I/N` over the settings' `shard` (None after printing why it is not a shard)."""
    try:
        return settings.model_copy(update={"shard": str(Shard.parse(text))})
    except ValueError as exc:
        print(f"detectkd: --shard: {exc}", file=sys.stderr)
        return None


def cmd_validate(args: argparse.Namespace) -> int:
    profiles = Path(args.profiles) if args.profiles else None
    calendars: list[CalendarRef] = []  # the daemon's, for metrics without their own
    if profiles is None:
        try:
            settings = settings_from(args.config)
            profiles, calendars = settings.profiles_file, settings.calendars
        except ConfigError as exc:
            print(f"ERROR   {exc}")
            return 1
    paths = [Path(p) for p in args.paths]
    if not args.profiles and (profiles is None or not profiles.exists()):
        profiles = nearby_profiles(paths)
    missing = [p for p in paths if not p.exists()]
    for p in missing:
        print(f"ERROR   {p}: no such file or directory")
    result = load_metrics([p for p in paths if p.exists()], profiles, calendars=calendars)
    print_load(result)
    n_files = len(result.files)
    bad = len(result.errors)
    print(
        f"{n_files} file(s), {len(result.metrics)} metric(s) valid, "
        f"{bad} file(s) with errors, {len(result.warnings)} warning(s)"
    )
    if args.shard:
        try:
            shard = Shard.parse(args.shard)
        except ValueError as exc:
            print(f"ERROR   --shard: {exc}")
            return 2
        mine = sorted(n for n in result.metrics if shard.owns(n))
        print(f"shard {shard}: {len(mine)} of {len(result.metrics)} metric(s)")
        for name in mine:
            print(f"  {name}  {result.metrics[name].file}")
    return 1 if (bad or missing) else 0


def load_target(args: argparse.Namespace) -> tuple[Settings, MetricSpec] | None:
    """Settings and the metric named by `args.metric`; None after printing a config error."""
    try:
        settings = settings_from(args.config)
        return settings, find_metric(args.metric, settings, Path(args.profiles) if args.profiles else None)
    except ConfigError as exc:
        print(f"invalid config:\n{exc}")
        return None


def cmd_check(args: argparse.Namespace) -> int:
    from detectkd.commands.check import check_metric

    target = load_target(args)
    if target is None:
        return 1
    settings, spec = target
    at = parse_moment(args.at) if args.at else None
    prof = profiles_for(args.metric, settings, Path(args.profiles) if args.profiles else None)
    return asyncio.run(
        check_metric(
            spec, settings, at=at, alert=not args.no_alert, profiles=prof, show_query=args.show_query
        )
    )


@dataclass(frozen=True)
class RangeTarget:
    settings: Settings
    spec: MetricSpec
    start: float | None  # None: --from not given
    finish: float  # --to, or now


def range_target(args: argparse.Namespace, command: str) -> RangeTarget | int:
    """The metric and the --from/--to range, or the exit code after printing why not."""
    target = load_target(args)
    if target is None:
        return 1
    span = parse_range(args, command)
    if isinstance(span, int):
        return span
    return RangeTarget(target[0], target[1], *span)


def cmd_backtest(args: argparse.Namespace) -> int:
    from detectkd.commands.backtest import backtest
    from detectkd.commands.labelled import labelled
    from detectkd.errors import StorageError

    if args.asserts is not None or args.labels or Path(args.metric).is_dir():
        from detectkd.commands.gate import gated

        return gated(args)  # --assert, --labels FILE, or a directory of metrics
    t = range_target(args, "backtest")
    if isinstance(t, int):
        return t
    assert t.start is not None  # --from is required
    output = Path(args.output) if args.output else None
    report = Path(args.report) if args.report else None
    labels = None
    if not args.no_feedback:
        try:
            labels = asyncio.run(labelled(t.spec, t.settings, t.start, t.finish))
        except StorageError as exc:
            print(f"feedback: not read ({exc}); --no-feedback skips it", file=sys.stderr)
    return asyncio.run(backtest(t.spec, t.start, t.finish, output, report=report, labels=labels))


def cmd_load_history(args: argparse.Namespace) -> int:
    from detectkd import logs
    from detectkd.commands.history import load_history

    t = range_target(args, "load-history")
    if isinstance(t, int):
        return t
    logs.configure(t.settings.log_format, t.settings.log_level)
    finish = t.finish if args.to else None  # None: up to the newest complete period
    return asyncio.run(load_history(t.spec, t.settings, t.start, finish, resume=not args.no_resume))


def cmd_export(args: argparse.Namespace) -> int:
    from detectkd.commands.history import export

    t = range_target(args, "export")
    if isinstance(t, int):
        return t
    assert t.start is not None  # --from is required
    if args.output:
        with open(args.output, "w", newline="") as fh:
            return asyncio.run(export(t.spec, t.settings, t.start, t.finish, fh))
    return asyncio.run(export(t.spec, t.settings, t.start, t.finish))


def cmd_schema(args: argparse.Namespace) -> int:
    from detectkd.schema import schema_json

    text = schema_json()
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args.config)
    except ConfigError as exc:
        print(f"invalid config:\n{exc}")
        return 1
    return silence_cli.run(args, settings)


def _metric_command(sub: Any, name: str, text: str, fn: Any) -> argparse.ArgumentParser:
    """A subcommand about one metric: NAME|FILE, --config, --profiles."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=text)
    p.add_argument("metric", help="metric name (from the metrics dir) or a metric file")
    p.add_argument("--config")
    p.add_argument("--profiles")
    p.set_defaults(fn=fn)
    return p


def _range_arguments(p: argparse.ArgumentParser, start_note: str, required: bool = True) -> None:
    p.add_argument(
        "--from",
        dest="start",
        required=required,
        help=f"a time, or a duration before now {start_note}".rstrip(),
    )
    p.add_argument("--to", help="a time, or a duration before now (default: now)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="detectkd", description=__doc__)
    p.add_argument("--version", action="version", version=f"detectkd {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", help="detectkd.yaml (default: $DETECTK_CONFIG or /etc/detectk)")
    run.add_argument(
        "--web.config.file", dest="web_config_file", help="TLS and basic auth (exporter-toolkit format)"
    )
    run.add_argument("--shard", help="run only the metrics of shard I of N (I/N; default: settings' shard)")
    run.set_defaults(fn=cmd_run)

    val = sub.add_parser("validate", help="validate metric files and directories")
    val.add_argument("paths", nargs="+")
    val.add_argument("--config")
    val.add_argument("--profiles", help="profiles file (default: from settings)")
    val.add_argument("--shard", help="also list the metrics shard I/N would run")
    val.set_defaults(fn=cmd_validate)

    chk = _metric_command(sub, "check", "run one period of one metric and print every step", cmd_check)
    chk.add_argument("--at", help="check the period containing this time (default: the newest)")
    chk.add_argument("--no-alert", action="store_true", help="store nothing, send nothing")
    chk.add_argument("--show-query", action="store_true", help="print the query as rendered for the period")

    bt = _metric_command(
        sub, "backtest", "replay history through a metric's detectors and alert rules", cmd_backtest
    )
    _range_arguments(bt, "(30d)")
    bt.add_argument("--output", help="write one CSV row per point and detector")
    bt.add_argument("--report", help="write a self-contained HTML report (a chart per series)")
    bt.add_argument(
        "--no-feedback", action="store_true", help="do not read the feedback labels from the daemon's store"
    )
    bt.add_argument(
        "--labels",
        action="append",
        metavar="PATH",
        help="read the labels from files (detectkd export CSVs, labels CSV/JSON) or a directory "
        "of them, not from the store",
    )
    bt.add_argument(
        "--assert",
        dest="asserts",
        metavar="PROMISES",
        help="exit 1 when a figure breaks a promise, e.g. 'recall>=0.9,false_alarms_per_week<=2'",
    )

    lh = _metric_command(
        sub, "load-history", "collect and store a range of history (no notifications)", cmd_load_history
    )
    _range_arguments(lh, "(default: start_time)", required=False)
    lh.add_argument("--no-resume", action="store_true", help="load the whole range even below the watermark")

    ex = _metric_command(sub, "export", "stored points and detections of a metric as CSV", cmd_export)
    _range_arguments(ex, "")
    ex.add_argument("--output", help="write to this file instead of stdout")

    sch = sub.add_parser("schema", help="print the JSON Schema of a metric file (for editors and CI)")
    sch.add_argument("--output", help="write it to this file instead of stdout")
    sch.set_defaults(fn=cmd_schema)

    silence_cli.add_parser(sub)
    sub.choices["silence"].set_defaults(fn=cmd_silence)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.fn(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())

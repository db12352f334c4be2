"""`detectkd backtest` as a gate for CI: `--assert` promises, labels from files (`--labels`),
and a directory of metrics backtested one after the other.

Exit codes: 0 every promise held (or, without `--assert`, every replay ran); 1 a promise
broken (without `--assert`: a source failed); 2 a usage or config error: a malformed
`--assert`, a metric file or labels file with errors, a directory without metrics, or
(with `--assert`) a store that cannot be read or a source that failed: what was not
measured is not judged.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from detectkd.alerting.feedback import Feedback
from detectkd.commands.assertions import (
    Assertion,
    AssertionSyntaxError,
    Figures,
    judge,
    parse_assertions,
)
from detectkd.commands.backtest import measure
from detectkd.commands.labelled import Labelled, labelled
from detectkd.commands.labels_file import LabelsError, labels_by_metric
from detectkd.commands.targets import find_metric, parse_range, print_load, profiles_for, settings_from
from detectkd.config.settings import Settings
from detectkd.errors import ConfigError, StorageError
from detectkd.specs.loader import MetricSpec, load_metrics


@dataclass(frozen=True)
class Plan:
    settings: Settings
    specs: list[MetricSpec]
    start: float
    finish: float
    assertions: list[Assertion] | None  # None: no --assert
    files: dict[str, list[Feedback]] | None  # labels from --labels; None: from the store
    no_feedback: bool
    output: Path | None
    report: Path | None


def gated(args: argparse.Namespace) -> int:
    plan = make_plan(args)
    if isinstance(plan, int):
        return plan
    return asyncio.run(run(plan))


def make_plan(args: argparse.Namespace, err: TextIO = sys.stderr) -> Plan | int:
    """What to run, or the exit code (2) after printing what is wrong."""
    try:
        assertions = parse_assertions(args.asserts) if args.asserts is not None else None
    except AssertionSyntaxError as exc:
        print(f"detectkd backtest: --assert: {exc}", file=err)
        return 2
    many = Path(args.metric).is_dir()
    if many and (args.output or args.report):
        print("detectkd backtest: --output and --report take one metric, not a directory", file=err)
        return 2
    paths = [Path(p) for p in args.labels] if args.labels else None
    for p in paths or []:
        if not p.exists():
            print(f"detectkd backtest: --labels: {p}: no such file or directory", file=err)
            return 2
    profiles = Path(args.profiles) if args.profiles else None
    try:
        settings = settings_from(args.config)
        if many:
            prof = profiles_for(args.metric, settings, profiles)
            result = load_metrics([Path(args.metric)], prof, calendars=settings.calendars)
            if result.errors:
                print_load(result, err)
                return 2
            specs = [result.metrics[n] for n in sorted(result.metrics)]
            if not specs:
                print(f"detectkd backtest: no metric files in {args.metric}", file=err)
                return 2
        else:
            specs = [find_metric(args.metric, settings, profiles)]
    except ConfigError as exc:
        print(f"invalid config:\n{exc}", file=err)
        return 2
    span = parse_range(args, "backtest")
    if isinstance(span, int):
        return span
    start, finish = span
    assert start is not None  # --from is required
    files = None
    if paths is not None:
        try:  # read before any replay: a bad file is refused at once
            files = labels_by_metric(paths, [s.name for s in specs])
        except LabelsError as exc:
            print(f"detectkd backtest: --labels: {exc}", file=err)
            return 2
        unknown = sorted(set(files) - {s.name for s in specs})
        if many and unknown:  # a renamed metric, or a typo: its labels gate nothing
            print(
                f"detectkd backtest: --labels: labels of metrics not in {args.metric}: " + ", ".join(unknown),
                file=err,
            )
    out = Path(args.output) if args.output else None
    report = Path(args.report) if args.report else None
    return Plan(settings, specs, start, finish, assertions, files, args.no_feedback, out, report)


async def run(plan: Plan, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    measured: list[tuple[str, Figures]] = []
    failed: list[str] = []
    for i, spec in enumerate(plan.specs):
        if i:
            print(file=out)
        try:
            labels = await labels_for(plan, spec)
        except StorageError as exc:
            if plan.assertions is not None:  # a gate does not pass on labels it could not read
                print(f"detectkd backtest: feedback of {spec.name}: not read ({exc})", file=err)
                return 2
            print(f"feedback: not read ({exc}); --no-feedback skips it", file=err)
            labels = None
        code, figures = await measure(spec, plan.start, plan.finish, plan.output, out, plan.report, labels)
        if code == 0:
            measured.append((spec.name, figures))
        else:
            failed.append(spec.name)
    if plan.assertions is None:
        return 1 if failed else 0
    promised = ", ".join(map(str, plan.assertions))
    if failed:  # a promise is not judged on part of the metrics
        print(f"\nassert: {promised} not judged: the source of {', '.join(failed)} failed", file=out)
        return 2
    verdicts = judge(plan.assertions, measured)
    print(f"\nassert: {promised} ({len(measured)} metric(s))", file=out)
    for v in verdicts:
        print(f"  {v.line()}", file=out)
    broken = [v for v in verdicts if not v.held]
    verdict = f"{len(broken)} of {len(verdicts)} broken" if broken else "every promise held"
    print(f"assert: {verdict}", file=out)
    return 1 if broken else 0


async def labels_for(plan: Plan, spec: MetricSpec) -> Labelled | None:
    """The metric's labels in the range: from the files, else from the daemon's store. Raises
    StorageError."""
    if plan.files is not None:
        found = plan.files.get(spec.name, [])
        mine = [f for f in found if f.until >= plan.start and f.period < plan.finish]
        return Labelled(mine, stored=False)
    if plan.no_feedback:
        return None
    return await labelled(spec, plan.settings, plan.start, plan.finish)

"""Load a directory of metric files into validated, resolved `MetricSpec`s.

Every problem in every file is collected (never just the first) with the
file, line and key. Loading is all-or-nothing per file: a file either yields
its metric or its issues; the daemon decides what to keep running.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from detectkd.config.calendars import CalendarRef
from detectkd.config.models import IGNORED_WITH_WARNING, MetricFile
from detectkd.config.profiles import Profiles, load_profiles
from detectkd.config.settings import Settings
from detectkd.config.validation import validate
from detectkd.config.yamlsource import Document, load_yaml
from detectkd.errors import ConfigIssue
from detectkd.specs.model import (
    AlerterSpec,
    CollectorSpec,
    DetectorSpec,
    LoadResult,
    MetricSpec,
    StorageSpec,
    source_key,
)
from detectkd.specs.resolve import Resolver

__all__ = [
    "AlerterSpec",
    "CollectorSpec",
    "DetectorSpec",
    "LoadResult",
    "MetricSpec",
    "StorageSpec",
    "build_spec",
    "load_for",
    "load_metric_file",
    "load_metrics",
    "metric_files",
    "source_key",
]

METRIC_SUFFIXES = (".yaml", ".yml")


def metric_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix in METRIC_SUFFIXES and p.is_file()))
        else:
            out.append(path)
    return out


def load_metrics(
    paths: list[Path],
    profiles_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    calendars: Sequence[CalendarRef] = (),
) -> LoadResult:
    """`calendars`: the daemon's (settings), for the metrics whose files have none."""
    env = dict(os.environ) if env is None else env
    result = LoadResult()
    profiles = load_profiles(profiles_file, env)
    if profiles.issues:
        result.errors[profiles.file or "profiles"] = list(profiles.issues)
    seen: dict[str, str] = {}
    for path in metric_files(paths):
        result.files.append(str(path))
        doc = load_yaml(path, env)
        if is_profiles_document(doc):
            # A profiles file dropped next to metrics is checked as one, not as a metric.
            extra = load_profiles(path, env)
            if extra.issues:
                result.errors[str(path)] = list(extra.issues)
            continue
        if is_events_document(doc):  # a calendar's event file next to the metrics
            continue
        spec, issues, warnings = build_spec(doc, profiles, calendars)
        result.warnings.extend(warnings)
        if spec is None:
            result.errors[str(path)] = issues
            continue
        if spec.name in seen:
            result.errors[str(path)] = [
                doc.issue(
                    ("name",), f"duplicate metric name {spec.name!r}: already defined in {seen[spec.name]}"
                )
            ]
            continue
        seen[spec.name] = str(path)
        result.metrics[spec.name] = spec
    return result


def is_profiles_document(doc: Document) -> bool:
    return isinstance(doc.data, dict) and set(doc.data) == {"profiles"}


def is_events_document(doc: Document) -> bool:
    """A calendar's event file (a list, or `events:` holding one), not a metric."""
    data = doc.data
    return not doc.issues and (isinstance(data, list) or (isinstance(data, dict) and set(data) == {"events"}))


def load_metric_file(
    path: Path, profiles: Profiles, env: Mapping[str, str]
) -> tuple[MetricSpec | None, list[ConfigIssue], list[ConfigIssue]]:
    doc = load_yaml(path, env)
    return build_spec(doc, profiles)


def load_for(settings: Settings) -> LoadResult:
    """The metrics of the daemon's `metrics_dir`, with its profiles and calendars."""
    return load_metrics([settings.metrics_dir], settings.profiles_file, calendars=settings.calendars)


def build_spec(
    doc: Document, profiles: Profiles, calendars: Sequence[CalendarRef] = ()
) -> tuple[MetricSpec | None, list[ConfigIssue], list[ConfigIssue]]:
    issues = list(doc.issues)
    warnings: list[ConfigIssue] = []
    if issues:
        return None, issues, warnings
    if not isinstance(doc.data, dict):
        return None, [doc.issue((), "a metric file must be a YAML mapping")], warnings
    for path, text in IGNORED_WITH_WARNING.items():
        if _has(doc.data, path):
            warnings.append(doc.issue(path, text))
    model, problems = validate(doc, MetricFile, doc.data)
    if model is None:
        return None, problems, warnings
    assert isinstance(model, MetricFile)
    resolver = Resolver(doc, model, profiles, calendars)
    spec = resolver.resolve()
    return spec, resolver.issues, warnings + resolver.notes


def _has(data: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True

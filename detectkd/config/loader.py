"""Load a directory of metric files into validated, resolved `MetricSpec`s.

Every problem in every file is collected (never just the first) with the
file, line and key. Loading is all-or-nothing per file: a file either yields
its metric or its issues; the daemon decides what to keep running.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from detectkd.alerting.channels import registry as channels
from detectkd.collectors import registry as collectors
from detectkd.collectors.points import PointSpec
from detectkd.config.models import IGNORED_WITH_WARNING, Conditions, MetricFile
from detectkd.config.profiles import Profiles, load_profiles
from detectkd.config.validation import validate
from detectkd.config.yamlsource import Document, load_yaml
from detectkd.detectors import auto
from detectkd.detectors import registry as detectors
from detectkd.errors import ConfigIssue
from detectkd.peers import Entity, load_entities
from detectkd.templating import check_template

METRIC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class CollectorSpec:
    type: str
    profile: str | None
    params: BaseModel
    points: PointSpec
    multi_period: bool = True


@dataclass(frozen=True)
class DetectorSpec:
    type: str
    id: str
    params: BaseModel


@dataclass(frozen=True)
class AlerterSpec:
    type: str
    index: int
    params: BaseModel


@dataclass(frozen=True)
class StorageSpec:
    enabled: bool
    type: str | None  # resolved backend (sqlite|postgres|clickhouse); None: the daemon's store
    params: dict[str, Any]
    save_detections: bool
    datapoints_retention_days: int | None
    detections_retention_days: int | None


@dataclass(frozen=True)
class MetricSpec:
    name: str
    file: str
    config: MetricFile
    collector: CollectorSpec
    detectors: tuple[DetectorSpec, ...]
    alerters: tuple[AlerterSpec, ...]
    conditions: Conditions
    storage: StorageSpec
    fingerprint: str
    detector_fingerprint: str
    # Peer verification: coordinates and attributes per series from `peers.entities`.
    entities: dict[str, Entity] | None = None


@dataclass
class LoadResult:
    metrics: dict[str, MetricSpec] = field(default_factory=dict)
    errors: dict[str, list[ConfigIssue]] = field(default_factory=dict)
    warnings: list[ConfigIssue] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def all_errors(self) -> list[ConfigIssue]:
        return [i for f in sorted(self.errors) for i in self.errors[f]]


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
) -> LoadResult:
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
        spec, issues, warnings = build_spec(doc, profiles)
        result.warnings.extend(warnings)
        if spec is None:
            result.errors[str(path)] = issues
            continue
        if spec.name in seen:
            result.errors[str(path)] = [
                ConfigIssue(
                    str(path),
                    1,
                    "name",
                    f"duplicate metric name {spec.name!r}: already defined in {seen[spec.name]}",
                )
            ]
            continue
        seen[spec.name] = str(path)
        result.metrics[spec.name] = spec
    return result


def is_profiles_document(doc: Document) -> bool:
    return isinstance(doc.data, dict) and set(doc.data) == {"profiles"}


def load_metric_file(
    path: Path, profiles: Profiles, env: Mapping[str, str]
) -> tuple[MetricSpec | None, list[ConfigIssue], list[ConfigIssue]]:
    doc = load_yaml(path, env)
    return build_spec(doc, profiles)


def build_spec(
    doc: Document, profiles: Profiles
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
    resolver = _Resolver(doc, model, profiles)
    spec = resolver.resolve()
    return spec, resolver.issues, warnings + resolver.notes


def _has(data: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


class _Resolver:
    """Validates params against their type's model and merges profiles in."""

    def __init__(self, doc: Document, cfg: MetricFile, profiles: Profiles) -> None:
        self.doc = doc
        self.cfg = cfg
        self.profiles = profiles
        self.issues: list[ConfigIssue] = []
        self.notes: list[ConfigIssue] = []

    def resolve(self) -> MetricSpec | None:
        collector = self._collector()
        dets = self._detectors()
        alerters, conditions = self._alerters()
        storage = self._storage()
        entities = self._entities()
        if self.issues or collector is None or conditions is None or storage is None:
            return None
        dump = self.cfg.model_dump(mode="json")
        resolved = {
            "config": dump,
            "collector": [collector.type, collector.params.model_dump(mode="json")],
            "alerters": [[a.type, a.params.model_dump(mode="json")] for a in alerters],
            "storage": [storage.type, storage.params],
        }
        det_dump = [[d.type, d.id, d.params.model_dump(mode="json")] for d in dets]
        return MetricSpec(
            name=self.cfg.name,
            file=self.doc.file,
            config=self.cfg,
            collector=collector,
            detectors=tuple(dets),
            alerters=tuple(alerters),
            conditions=conditions,
            storage=storage,
            fingerprint=_digest(resolved),
            # What alert state and stored windows mean: the detectors, the series and the grid.
            detector_fingerprint=_digest(
                [
                    det_dump,
                    self.cfg.collector.series_columns,
                    self.cfg.schedule.interval.total_seconds(),
                    self.cfg.schedule.timezone,
                ]
            ),
            entities=entities,
        )

    def _entities(self) -> dict[str, Entity] | None:
        p = self.cfg.peers
        if p is not None and not self.cfg.collector.series_columns:
            self.issues.append(
                self.doc.issue(("peers",), "`peers` needs a multi-series metric (`collector.series_columns`)")
            )
        if p is None or p.entities is None:
            return None
        path = Path(p.entities)
        if not path.is_absolute():
            path = Path(self.doc.file).parent / path
        try:
            return load_entities(path, tuple(self.cfg.collector.series_columns), p)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            self.issues.append(self.doc.issue(("peers", "entities"), f"cannot read the entity file: {exc}"))
            return None

    def _profile(self, name: str | None, path: tuple[str | int, ...]) -> dict[str, Any] | None:
        if name is None:
            return {}
        entry = self.profiles.get(name)
        if entry is None:
            known = ", ".join(sorted(self.profiles.entries)) or "none"
            where = self.profiles.file or "no profiles file"
            self.issues.append(
                self.doc.issue((*path, "profile"), f"unknown profile {name!r} ({where}; known: {known})")
            )
            return None
        return dict(entry)

    def _typed(
        self,
        path: tuple[str | int, ...],
        kind: str | None,
        profile: str | None,
        params: dict[str, Any],
        lookup: Any,
        what: str,
        known: list[str],
    ) -> tuple[str, Any] | None:
        base = self._profile(profile, path)
        if base is None:
            return None
        kind = kind or base.pop("type", None)
        base.pop("type", None)
        if kind is None:
            self.issues.append(self.doc.issue((*path, "type"), f"{what} has no type"))
            return None
        entry = lookup(kind)
        if entry is None:
            import difflib

            close = difflib.get_close_matches(kind, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            self.issues.append(
                self.doc.issue(
                    (*path, "type"),
                    f"unknown {what} type {kind!r}{hint}; known: {', '.join(sorted(known))}",
                )
            )
            return None
        merged = {**base, **params}
        model, problems = validate(self.doc, entry.params, merged, (*path, "params"))
        self.issues.extend(problems)
        return (kind, model) if model is not None else None

    def _collector(self) -> CollectorSpec | None:
        c = self.cfg.collector
        typed = self._typed(
            ("collector",), c.type, c.profile, c.params, collectors.lookup, "collector",
            list(collectors.COLLECTORS),
        )  # fmt: skip
        if typed is None:
            return None
        kind, params = typed
        sample = _sample_window(self.cfg).template_vars()
        for key in ("query", "url"):
            text = getattr(params, key, None)
            if isinstance(text, str) and (problem := check_template(text, sample)):
                self.issues.append(self.doc.issue(("collector", "params", key), problem))
        inner = params.model_dump()
        context = list(c.context_columns or inner.get("context_columns") or ())
        peers = self.cfg.peers
        if peers is not None and peers.mode == "nearest" and peers.entities is None:
            # Coordinates (and the attribute) come with the rows.
            wanted = [peers.latitude_column, peers.longitude_column, peers.attribute]
            context += [col for col in wanted if col is not None and col not in context]
        points = PointSpec(
            timestamp_column=c.timestamp_column or inner.get("timestamp_column") or "period_time",
            value_column=c.value_column or inner.get("value_column") or "value",
            context_columns=tuple(context),
            series_columns=tuple(c.series_columns),
        )
        if kind == "clickhouse":
            from detectkd.collectors.clickhouse import http_port

            _, note = http_port(params)
            if note:
                self.notes.append(self.doc.issue(("collector", "params", "port"), note))
        multi = c.multi_period
        if multi is None:
            multi = getattr(type(params), "MULTI_PERIOD", None)
        if multi is None:
            text = str(getattr(params, "query", "") or "").lower()
            multi = "group by" in text and points.timestamp_column.lower() in text
        return CollectorSpec(kind, c.profile, params, points, multi)

    def _detectors(self) -> list[DetectorSpec]:
        out: list[DetectorSpec] = []
        key = "detectors" if self.cfg.detectors is not None else "detector"
        ids: set[str] = set()
        for i, d in enumerate(self.cfg.detector_list()):
            path: tuple[str | int, ...] = (key, i) if key == "detectors" else (key,)
            entry = detectors.lookup(d.type)
            if entry is None:
                known = ", ".join(sorted(detectors.DETECTORS))
                self.issues.append(
                    self.doc.issue((*path, "type"), f"unknown detector type {d.type!r}; known: {known}")
                )
                continue
            model, problems = validate(self.doc, entry.params, d.params, (*path, "params"))
            self.issues.extend(problems)
            did = d.id or (d.type if d.type not in ids else f"{d.type}_{i}")
            if did in ids:
                self.issues.append(self.doc.issue((*path, "id"), f"duplicate detector id {did!r}"))
            ids.add(did)
            if model is not None:
                out.append(DetectorSpec(d.type, did, model))
        if not self.cfg.detector_list():  # no detector named: the default ensemble
            out.append(DetectorSpec("auto", "auto", auto.Params()))
        return out

    def _alerters(self) -> tuple[list[AlerterSpec], Conditions | None]:
        out: list[AlerterSpec] = []
        key = "alerters" if self.cfg.alerters is not None else "alerter"
        conditions: list[Conditions] = []
        for i, a in enumerate(self.cfg.alerter_list()):
            path: tuple[str | int, ...] = (key, i) if key == "alerters" else (key,)
            if not a.enabled:
                continue
            typed = self._typed(
                path, a.type, a.profile, a.params, channels.lookup, "alerter",
                list(channels.CHANNELS),
            )  # fmt: skip
            cond = a.conditions
            if typed is not None:
                kind, params = typed
                cooldown = getattr(params, "cooldown_minutes", None)
                if cond.cooldown_minutes is None and cooldown is not None:
                    cond = cond.model_copy(update={"cooldown_minutes": cooldown})
                template = getattr(params, "message_template", None)
                if isinstance(template, str) and (problem := check_template(template, _sample_alert())):
                    self.issues.append(self.doc.issue((*path, "params", "message_template"), problem))
                out.append(AlerterSpec(kind, i, params))
            if cond.peers != "any" and self.cfg.peers is None:
                self.issues.append(
                    self.doc.issue(
                        (*path, "conditions", "peers"),
                        f"`peers: {cond.peers}` needs a top-level `peers:` block (who the peers are)",
                    )
                )
            conditions.append(cond)
        if len({c.model_dump_json() for c in conditions}) > 1:
            self.issues.append(
                self.doc.issue(
                    (key,),
                    "all alerters of one metric must share the same `conditions` "
                    "(detectkd keeps one alert state per series)",
                )
            )
            return out, None
        return out, conditions[0] if conditions else Conditions()

    def _storage(self) -> StorageSpec | None:
        s = self.cfg.storage
        base = self._profile(s.profile, ("storage",))
        if base is None:
            return None
        kind = s.type or base.pop("type", None)
        base.pop("type", None)
        params = {**base, **s.params}
        flags: dict[str, Any] = {}
        for name, default in (
            ("save_detections", True),
            ("datapoints_retention_days", None),
            ("detections_retention_days", None),
        ):
            value = params.pop(name, default)
            if value is not None and not isinstance(value, bool | int):
                self.issues.append(
                    self.doc.issue(
                        ("storage", "params", name), f"expected a number or boolean, got {value!r}"
                    )
                )
            flags[name] = value
        backend: str | None = None
        if s.enabled and (kind is not None or {"connection_string", "host", "path"} & set(params)):
            from detectkd.storage.factory import StoreParams, resolve_kind

            model, problems = validate(self.doc, StoreParams, params, ("storage", "params"))
            self.issues.extend(problems)
            if model is not None:
                try:
                    backend = resolve_kind(kind, model)  # type: ignore[arg-type]
                except ValueError as exc:
                    self.issues.append(self.doc.issue(("storage",), str(exc)))
        return StorageSpec(
            enabled=s.enabled,
            type=backend,
            params=params,
            save_detections=bool(flags["save_detections"]),
            datapoints_retention_days=flags["datapoints_retention_days"] or s.retention_days,
            detections_retention_days=flags["detections_retention_days"],
        )


def _sample_window(cfg: MetricFile) -> Any:
    from zoneinfo import ZoneInfo

    from detectkd.collectors.base import Window

    step = int(cfg.schedule.interval.total_seconds())
    finish = 1_767_225_600  # 2026-01-01 00:00 UTC
    return Window(finish - step, finish, cfg.schedule.interval, ZoneInfo(cfg.schedule.timezone))


def _sample_alert() -> dict[str, Any]:
    from detectkd.alerting.alert import Alert
    from detectkd.alerting.message import variables

    alert = Alert(
        metric="sample", series="region=eu", labels={"region": "eu"}, status="firing",
        period=1_767_225_000, started_at=1_767_225_000, value=250.0, expected=100.0, lower=80.0,
        upper=120.0, score=0.9, direction="up", detector="mad", interval_seconds=600,
    )  # fmt: skip
    return variables(alert)


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]

"""One metric file's `type`s looked up in the registries, their `params` validated and
merged with profiles, into a `MetricSpec` (or the issues, each with file, line and key)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from detectkd.alerting.channels import registry as channels
from detectkd.collectors import registry as collectors
from detectkd.collectors.points import PointSpec
from detectkd.config.calendars import CalendarRef
from detectkd.config.models import AlerterOptions, Conditions, MetricFile
from detectkd.config.profiles import Profiles
from detectkd.config.validation import validate
from detectkd.config.yamlsource import Document
from detectkd.detectors.simple import STALENESS_COLUMNS
from detectkd.errors import ConfigIssue
from detectkd.specs.calendars import compile_calendars
from detectkd.specs.entities import Entity, load_entities
from detectkd.specs.explain import check_explain
from detectkd.specs.model import AlerterSpec, CollectorSpec, DetectorSpec, MetricSpec, StorageSpec
from detectkd.specs.shadow import detector_specs, digest, shadow_specs
from detectkd.specs.templates import check_templates
from detectkd.templating import check_template, period_aware

ALERTER_OPTIONS = tuple(AlerterOptions.model_fields)  # in every alerter's params
NO_QUERY = "complete_when is asked of the metric's source: it needs a source with a `query` (SQL)"


class Resolver:
    """Validates params against their type's model and merges profiles in."""

    def __init__(
        self, doc: Document, cfg: MetricFile, profiles: Profiles, calendars: Sequence[CalendarRef] = ()
    ) -> None:
        self.doc = doc
        self.calendars = cfg.calendars if "calendars" in cfg.model_fields_set else list(calendars)
        self.cfg = cfg
        self.profiles = profiles
        self.issues: list[ConfigIssue] = []
        self.notes: list[ConfigIssue] = []

    def resolve(self) -> MetricSpec | None:
        collector = self._collector()
        dets = self._detectors()
        alerters, conditions = self._alerters()
        storage = self._storage()
        entities = self._entities(collector)
        shadows = shadow_specs(self.doc, self.cfg, tuple(dets), conditions, self.issues) if conditions else ()
        inherited = "calendars" not in self.cfg.model_fields_set
        calendar = compile_calendars(
            self.calendars, self.cfg.schedule.timezone, self.doc, self.issues, inherited
        )
        self.issues += check_explain(self.doc, self.cfg, collector, _sample_window(self.cfg))
        if self.issues or collector is None or conditions is None or storage is None:
            return None
        dump = self.cfg.model_dump(mode="json", exclude=None if calendar else {"calendars"})
        resolved = {
            "config": dump,
            "collector": [collector.type, collector.params.model_dump(mode="json")],
            "alerters": [[a.type, a.params.model_dump(mode="json")] for a in alerters],
            "storage": [storage.type, storage.params],
        } | ({"calendar": calendar.digest} if calendar else {})
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
            fingerprint=digest(resolved),
            # What alert state and stored windows mean: the detectors, the series and the grid.
            detector_fingerprint=digest(
                [
                    det_dump,
                    self.cfg.collector.series_columns,
                    self.cfg.schedule.interval.total_seconds(),
                    self.cfg.schedule.timezone,
                ]
            ),
            entities=entities,
            shadows=shadows,
            calendar=calendar,
        )

    def _entities(self, collector: CollectorSpec | None) -> dict[str, Entity] | None:
        p = self.cfg.peers
        multi = collector.points.series_columns if collector else self.cfg.collector.series_columns
        if p is not None and not multi:
            self.issues.append(
                self.doc.issue(("peers",), "`peers` needs a multi-series metric (`collector.series_columns`)")
            )
        if p is None or p.entities is None:
            return None
        if multi and not self.cfg.collector.series_columns:  # series keyed by their own labels
            why = "an entity file matches series on `collector.series_columns`: name the labels"
            self.issues.append(self.doc.issue(("peers", "entities"), why))
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
            where = _profiles_where(self.profiles.file)
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
        lifted: dict[str, Any] | None = None,
    ) -> tuple[str, Any] | None:
        """Validate `params` (merged over the profile's) against the type's model. Keys named
        in `lifted` are taken out first, into it (options of every type, e.g. an alerter's
        `cooldown_minutes`, that no type's model repeats)."""
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
        for key in lifted or {}:
            if key in merged:
                lifted[key] = merged.pop(key)  # type: ignore[index]
        model, problems = validate(self.doc, entry.params, merged, (*path, "params"))
        self.issues.extend(problems)
        return (kind, model) if model is not None else None

    def _collector(self) -> CollectorSpec | None:
        c = self.cfg.collector
        typed = self._typed(
            ("collector",),
            c.type,
            c.profile,
            c.params,
            collectors.lookup,
            "collector",
            list(collectors.COLLECTORS),
        )
        if typed is None:
            return None
        kind, params = typed
        sample = _sample_window(self.cfg).template_vars()
        for key in ("query", "url"):
            text = getattr(params, key, None)
            if isinstance(text, str) and (problem := check_template(text, sample)):
                self.issues.append(self.doc.issue(("collector", "params", key), problem))
        done = self.cfg.completeness.complete_when if self.cfg.completeness is not None else None
        if done and (problem := check_template(done, sample) if hasattr(params, "query") else NO_QUERY):
            self.issues.append(self.doc.issue(("completeness", "complete_when"), problem))
        inner = params.model_dump()
        context = list(c.context_columns or inner.get("context_columns") or ())
        for d in self.cfg.detector_list():  # DetectK's staleness columns come with the rows
            if (
                d.type == "missing_data"
                and isinstance(d.params, dict)
                and d.params.get("max_staleness_minutes")
            ):
                context += [col for col in STALENESS_COLUMNS if col not in context]
        peers = self.cfg.peers
        if peers is not None and peers.mode == "nearest" and peers.entities is None:
            # Coordinates (and the attribute) come with the rows.
            wanted = [peers.latitude_column, peers.longitude_column, peers.attribute]
            context += [col for col in wanted if col is not None and col not in context]
        points = PointSpec(
            timestamp_column=c.timestamp_column or inner.get("timestamp_column") or "period_time",
            value_column=c.value_column or inner.get("value_column") or "value",
            context_columns=tuple(context),
            # None named: a source whose rows carry their labels (Prometheus) keys on those.
            series_columns=tuple(c.series_columns) or getattr(type(params), "SERIES_LABELS", ()),
        )
        if kind == "clickhouse":
            from detectkd.collectors.clickhouse import http_port, shadowed_alias

            _, note = http_port(params)
            if note:
                self.notes.append(self.doc.issue(("collector", "params", "port"), note))
            if (shadow := shadowed_alias(str(getattr(params, "query", "") or ""))) is not None:
                self.notes.append(self.doc.issue(("collector", "params", "query"), shadow))
        multi = c.multi_period
        if multi is None:
            multi = getattr(type(params), "MULTI_PERIOD", None)
        if multi is None:
            text = str(getattr(params, "query", "") or "").lower()
            multi = "group by" in text and points.timestamp_column.lower() in text
        aware = getattr(type(params), "MULTI_PERIOD", None) is True
        aware = aware or period_aware(json.dumps(inner, default=str))
        return CollectorSpec(kind, c.profile, params, points, multi, aware)

    def _detectors(self) -> list[DetectorSpec]:
        key = "detectors" if self.cfg.detectors is not None else "detector"
        return detector_specs(self.doc, self.cfg.detector_list(), (key,), key == "detectors", self.issues)

    def _alerters(self) -> tuple[list[AlerterSpec], Conditions | None]:
        out: list[AlerterSpec] = []
        key = "alerters" if self.cfg.alerters is not None else "alerter"
        conditions: list[Conditions] = []
        for i, a in enumerate(self.cfg.alerter_list()):
            path: tuple[str | int, ...] = (key, i) if key == "alerters" else (key,)
            if not a.enabled:
                continue
            lifted: dict[str, Any] = dict.fromkeys(ALERTER_OPTIONS)
            typed = self._typed(
                path,
                a.type,
                a.profile,
                a.params,
                channels.lookup,
                "alerter",
                list(channels.CHANNELS),
                lifted,
            )
            cond = self._alerter_options(path, a.conditions, lifted)
            if typed is not None:
                kind, params = typed
                issues, notes = check_templates(self.doc, path, params)
                self.issues += issues
                self.notes += notes
                out.append(AlerterSpec(kind, i, params, _alerter_id(kind, params, out)))
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

    def _alerter_options(
        self, path: tuple[str | int, ...], cond: Conditions, lifted: dict[str, Any]
    ) -> Conditions:
        """DetectK puts `cooldown_minutes` in an alerter's params; it is a condition here
        (one alert state per series), accepted once for every channel type."""
        given = {k: v for k, v in lifted.items() if v is not None and getattr(cond, k) is None}
        if not given:
            return cond
        try:
            checked = AlerterOptions.model_validate(given)
        except ValueError as exc:
            for key in given:
                self.issues.append(self.doc.issue((*path, "params", key), _first_error(exc)))
            return cond
        return cond.model_copy(update={k: getattr(checked, k) for k in given})

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
            from detectkd.config.connection import StoreParams
            from detectkd.storage.factory import resolve_kind

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


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return str(first.get("msg", exc))
    return str(exc)


def _alerter_id(kind: str, params: BaseModel, before: list[AlerterSpec]) -> str:
    base = f"{kind}:{digest(params.model_dump(mode='json'))[:12]}"
    taken = {a.id for a in before}
    n = 1
    out = base
    while out in taken:  # the same channel twice in one metric: keep both, distinctly
        n += 1
        out = f"{base}~{n}"
    return out


def _profiles_where(file: str | None) -> str:
    """Where profiles were looked for, and how to point at them."""
    if file and Path(file).exists():
        return f"in {file}"
    fix = (
        "give --profiles FILE, set profiles_file (DETECTK_PROFILES_FILE), "
        "or put detectk_profiles.yaml next to the metrics directory"
    )
    return f"{file} does not exist: {fix}" if file else f"no profiles file was found: {fix}"

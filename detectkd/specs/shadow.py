"""A metric file's `shadow:` variants resolved (`ShadowSpec`), and the detector list check
the metric and its variants share."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from detectkd.config.models import Conditions, MetricFile
from detectkd.config.validation import validate
from detectkd.config.yamlsource import Document
from detectkd.detectors import autoparams
from detectkd.detectors import registry as detectors
from detectkd.errors import ConfigIssue
from detectkd.specs.model import DetectorSpec, ShadowSpec


def detector_specs(
    doc: Document, items: list[Any], path: tuple[str | int, ...], listed: bool, issues: list[ConfigIssue]
) -> list[DetectorSpec]:
    """`detector:` / `detectors:` items (config `Detector`s) at `path` checked against the
    registry (none: the default ensemble); problems go to `issues`."""
    out: list[DetectorSpec] = []
    ids: set[str] = set()
    for i, d in enumerate(items):
        where: tuple[str | int, ...] = (*path, i) if listed else path
        entry = detectors.lookup(d.type)
        if entry is None:
            known = ", ".join(sorted(detectors.DETECTORS))
            issues.append(doc.issue((*where, "type"), f"unknown detector type {d.type!r}; known: {known}"))
            continue
        model, problems = validate(doc, entry.params, d.params, (*where, "params"))
        issues.extend(problems)
        did = d.id or (d.type if d.type not in ids else f"{d.type}_{i}")
        if did in ids:
            issues.append(doc.issue((*where, "id"), f"duplicate detector id {did!r}"))
        ids.add(did)
        if model is not None:
            out.append(DetectorSpec(d.type, did, model))
    if not items:  # no detector named: the default ensemble
        out.append(DetectorSpec("auto", "auto", autoparams.Params()))
    return out


def shadow_specs(
    doc: Document,
    cfg: MetricFile,
    dets: tuple[DetectorSpec, ...],
    conditions: Conditions,
    issues: list[ConfigIssue],
) -> tuple[ShadowSpec, ...]:
    """The `shadow:` variants: detectors replace the metric's, conditions' keys given replace
    the metric's ones (the others stay the metric's)."""
    out: list[ShadowSpec] = []
    seen: set[str] = set()
    for i, v in enumerate(cfg.shadow):
        if v.name in seen:
            issues.append(doc.issue(("shadow", i, "name"), f"duplicate shadow variant name {v.name!r}"))
        seen.add(v.name)
        own = v.detector_list()
        key = "detectors" if v.detectors is not None else "detector"
        vdets = (
            dets
            if own is None
            else tuple(detector_specs(doc, own, ("shadow", i, key), key == "detectors", issues))
        )
        cond = conditions
        if v.conditions is not None:
            cond = conditions.model_copy(
                update={k: getattr(v.conditions, k) for k in v.conditions.model_fields_set}
            )
        if cond.peers != "any" and cfg.peers is None:
            why = f"`peers: {cond.peers}` needs a top-level `peers:` block (who the peers are)"
            issues.append(doc.issue(("shadow", i, "conditions", "peers"), why))
        fingerprint = digest(
            [
                [[d.type, d.id, d.params.model_dump(mode="json")] for d in vdets],
                cond.model_dump(mode="json"),
                cfg.collector.series_columns,
                cfg.schedule.interval.total_seconds(),
                cfg.schedule.timezone,
            ]
        )
        out.append(ShadowSpec(v.name, vdets, cond, fingerprint))
    return tuple(out)


def digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]

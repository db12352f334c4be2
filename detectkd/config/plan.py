"""Reload as a pure function: old metric set + new load result -> a plan.

A file that fails to load keeps whatever metric it defined before running
(its previous version). Everything else is diffed by content fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from detectkd.config.loader import LoadResult, MetricSpec


@dataclass
class Plan:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # broken file: previous version keeps running
    target: dict[str, MetricSpec] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "unchanged": len(self.unchanged),
            "kept_previous": len(self.kept),
        }


def make_plan(old: dict[str, MetricSpec], new: LoadResult) -> Plan:
    plan = Plan()
    target = dict(new.metrics)
    broken = set(new.errors)
    for name, spec in old.items():
        if spec.file in broken and name not in target:
            target[name] = spec
            plan.kept.append(name)
    for name, spec in sorted(target.items()):
        before = old.get(name)
        if before is None:
            plan.added.append(name)
        elif before.fingerprint != spec.fingerprint:
            plan.changed.append(name)
        else:
            plan.unchanged.append(name)
    plan.removed = sorted(set(old) - set(target))
    plan.target = target
    return plan

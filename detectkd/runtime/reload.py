"""Reload as a pure function: running metric set + new load result -> a plan.

A file that fails to load keeps whatever metric it defined before running
(its previous version). Everything else is diffed by fingerprint:

- `fingerprint` (everything resolved: collector, detectors, alerters,
  storage, schedule): unchanged -> the metric keeps running untouched;
- `detector_fingerprint` (detectors, series columns, interval, timezone:
  what alert state and stored windows mean): unchanged -> the metric is
  restarted keeping its alert state; changed -> restarted with its alert
  state reset (the old state judged other numbers on another grid).

The daemon applies a plan atomically (`Daemon._apply`): a failure leaves
the previous set running.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from detectkd.specs.loader import LoadResult, MetricSpec


class Action(StrEnum):
    ADD = "add"
    REMOVE = "remove"
    KEEP = "keep"  # unchanged: keeps running untouched
    RESTART_KEEPING_STATE = "restart_keeping_state"
    RESTART_RESETTING_STATE = "restart_resetting_state"


@dataclass
class Plan:
    actions: dict[str, Action] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)  # broken file: previous version keeps running
    target: dict[str, MetricSpec] = field(default_factory=dict)
    # Restarted metrics whose alerters were edited in place: old channel id -> new one.
    renames: dict[str, dict[str, str]] = field(default_factory=dict)

    def names(self, *actions: Action) -> list[str]:
        return sorted(n for n, a in self.actions.items() if a in actions)

    @property
    def added(self) -> list[str]:
        return self.names(Action.ADD)

    @property
    def removed(self) -> list[str]:
        return self.names(Action.REMOVE)

    @property
    def changed(self) -> list[str]:
        return self.names(Action.RESTART_KEEPING_STATE, Action.RESTART_RESETTING_STATE)

    @property
    def unchanged(self) -> list[str]:
        return self.names(Action.KEEP)

    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "unchanged": len(self.unchanged),
            "kept_previous": len(self.kept),
            "state_reset": len(self.names(Action.RESTART_RESETTING_STATE)),
        }


def make_plan(old: Mapping[str, MetricSpec], new: LoadResult) -> Plan:
    plan = Plan()
    target = dict(new.metrics)
    broken = set(new.errors)
    for name, spec in old.items():
        if spec.file in broken and name not in target:
            target[name] = spec
            plan.kept.append(name)
    for name, spec in sorted(target.items()):
        before = old.get(name)
        plan.actions[name] = _action(before, spec)
        if before is not None and (moved := channel_renames(before, spec)):
            plan.renames[name] = moved
    for name in set(old) - set(target):
        plan.actions[name] = Action.REMOVE
    plan.target = target
    return plan


def _action(before: MetricSpec | None, after: MetricSpec) -> Action:
    if before is None:
        return Action.ADD
    if before.fingerprint == after.fingerprint:
        return Action.KEEP
    if before.detector_fingerprint == after.detector_fingerprint:
        return Action.RESTART_KEEPING_STATE
    return Action.RESTART_RESETTING_STATE


def channel_renames(before: MetricSpec, after: MetricSpec) -> dict[str, str]:
    """Alerters edited in place, so their pending outbox rows follow them: an old id that is
    gone and a new id that is new, both the k-th (among the gone and the new ones) alerter of
    one type. Reordered alerters keep their ids; a removed one has no counterpart."""
    old_ids = {a.id for a in before.alerters}
    new_ids = {a.id for a in after.alerters}
    out: dict[str, str] = {}
    for kind in {a.type for a in before.alerters}:
        gone = [a.id for a in before.alerters if a.type == kind and a.id not in new_ids]
        fresh = [a.id for a in after.alerters if a.type == kind and a.id not in old_ids]
        if len(gone) == len(fresh):
            out.update(zip(gone, fresh, strict=True))
    return out

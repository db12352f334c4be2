"""Reload as a pure function: running metric set + new load result -> a plan.

A file that fails to load keeps whatever metric it defined before running
(its previous version). Everything else is diffed by fingerprint:

- `fingerprint` (everything resolved: collector, detectors, alerters,
  storage, schedule): unchanged -> the metric keeps running untouched;
- `detector_fingerprint` (detectors, series columns, interval, timezone:
  what alert state and stored windows mean): unchanged -> the metric is
  restarted keeping its alert state; changed -> restarted with its alert
  state reset (the old state judged other numbers on another grid).

The daemon applies a plan atomically (`MetricSet.apply`): a failure leaves
the previous set running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog

from detectkd.errors import error_line
from detectkd.specs.loader import LoadResult, MetricSpec
from detectkd.telemetry import Telemetry

log = structlog.get_logger("detectkd")


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


class ReloadQueue:
    """Reload requests. One reload runs at a time (under `lock`); requests that arrive while
    a reload waits for its turn merge into it, so a storm of SIGHUPs is one reload after the
    one running. Every task is kept until done; its failure is logged and counted."""

    def __init__(
        self, run: Callable[[str], Awaitable[dict[str, Any]]], lock: asyncio.Lock, telemetry: Telemetry
    ) -> None:
        self._run = run
        self._lock = lock
        self._telemetry = telemetry
        self.tasks: set[asyncio.Task[dict[str, Any]]] = set()
        self._waiting: asyncio.Task[dict[str, Any]] | None = None

    def request(self, reason: str) -> asyncio.Task[dict[str, Any]]:
        if self._waiting is not None and not self._waiting.done():
            self._telemetry.reloads_merged.inc()
            return self._waiting
        task = self._waiting = asyncio.ensure_future(self._in_turn(reason))
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def _in_turn(self, reason: str) -> dict[str, Any]:
        async with self._lock:
            self._waiting = None  # requests from now on wait for the next reload
            return await self._run(reason)

    def _done(self, task: asyncio.Task[dict[str, Any]]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("reload failed", error=error_line(exc))
            self._telemetry.reload_ok.set(0)

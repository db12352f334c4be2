"""Which config a snapshot part was written for (`snapshot.fingerprint`): a start adopts a
metric's part only while nothing that shapes its memory changed. Issue 28's review: the
snapshot's fingerprint ignored calendars (an `exclude` event masks periods out of the
windows and `auto`'s state, a `like` day changes the weekday its history is looked up
by), so a calendar edit followed by a restart or a `kill -9` adopted windows and state built
under the old calendar; and its only version guard was the package version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.resources import Resources
from detectkd.runtime import snapshot
from detectkd.runtime.memory import Saved
from detectkd.runtime.runner import MetricRuntime
from detectkd.specs.loader import load_metrics
from detectkd.storage.sqlite import SqliteStore
from tests.support.files import write
from tests.support.runtimes import runtime

QUERY = "SELECT period_time, value FROM t WHERE period_time >= '{{ period_start }}'"
BASE = {
    "schedule": "schedule: {interval: 1h}\n",
    "collector": f'collector: {{type: sqlite, params: {{database: /nonexistent.db, query: "{QUERY}"}}}}\n',
    "detector": "detector: {type: auto}\n",
    "alerter": "alerter: {type: log}\n",
}
EXCLUDE = "calendars:\n  - {name: batch, weekdays: [mon-fri], times: ['01:00-03:00'], mode: exclude}\n"
LIKE = (
    "calendars:\n  - {name: batch, weekdays: [mon-fri], times: ['01:00-03:00'], mode: like, like: sunday}\n"
)
EVENTS = "calendars:\n  - {file: events.yaml, mode: exclude}\n"


class Specs:
    def __init__(self, tmp: Path, store: SqliteStore, resources: Resources) -> None:
        self.tmp, self.store, self.resources, self.n = tmp, store, resources, 0

    def runtime(
        self, extra: str = "", files: dict[str, str] | None = None, keys: dict[str, str] | None = None
    ) -> MetricRuntime:
        """The metric `orders` with `keys` replacing the base file's blocks and `extra` added."""
        self.n += 1
        d = self.tmp / f"m{self.n}"
        for name, text in (files or {}).items():
            write(d / name, text)
        write(d / "orders.yaml", "name: orders\n" + "".join({**BASE, **(keys or {})}.values()) + extra)
        result = load_metrics([d], None, env={})
        assert result.ok, result.all_errors()
        return runtime(result.metrics["orders"], self.store, self.resources)


@pytest.fixture
async def specs(tmp_path: Path) -> AsyncIterator[Specs]:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    resources = Resources()
    yield Specs(tmp_path, store, resources)
    await store.close()
    await resources.close()


async def test_a_calendar_edit_changes_the_snapshot_fingerprint(specs: Specs) -> None:
    plain, excluding, like = specs.runtime(), specs.runtime(EXCLUDE), specs.runtime(LIKE)
    assert excluding.memory.mask is not None and like.memory.like is not None  # they shape memory
    fps = [snapshot.fingerprint(rt) for rt in (plain, excluding, like)]
    assert len(set(fps)) == 3
    assert snapshot.fingerprint(specs.runtime("calendars: []\n")) == fps[0]  # no calendar is none
    one = specs.runtime(EVENTS, {"events.yaml": "- {name: a, date: 2025-01-01}\n"})
    two = specs.runtime(EVENTS, {"events.yaml": "- {name: a, date: 2025-01-02}\n"})
    assert snapshot.fingerprint(one) != snapshot.fingerprint(two)  # the event file's content counts
    # and a part saved under the old calendar is not taken by the metric under the new one
    parts = {"orders": Saved(fps[0], 3600)}
    assert snapshot.take(parts, excluding) is None


@pytest.mark.parametrize(
    "edit",
    [
        {"detector": "detector: {type: auto, params: {sustain: 12}}\n"},
        {"detector": "detector: {type: mad, params: {window_size: 100}}\n"},
        {"schedule": "schedule: {interval: 30m}\n"},
        {"schedule": "schedule: {interval: 1h, timezone: Europe/Berlin}\n"},
        {"extra": "completeness: {settle: 5m, recheck: 2h}\n"},
        {"collector": BASE["collector"][:-2] + ", series_columns: [region]}\n"},
        {"extra": "storage: {enabled: false}\n"},
    ],
    ids=["params", "detector", "interval", "timezone", "completeness", "series", "storage"],
)
async def test_what_shapes_memory_changes_the_snapshot_fingerprint(
    specs: Specs, edit: dict[str, str]
) -> None:
    """What a rebuild from the store depends on changes the snapshot's fingerprint."""
    base = specs.runtime()
    extra = edit.pop("extra", "")
    changed = specs.runtime(extra, keys=edit)
    assert changed.spec.fingerprint != base.spec.fingerprint
    assert snapshot.fingerprint(changed) != snapshot.fingerprint(base)
    again = specs.runtime()
    assert snapshot.fingerprint(again) == snapshot.fingerprint(base)  # stable across processes' builds


async def test_a_state_version_bump_refuses_the_part_a_build_before_wrote(
    specs: Specs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build that changes what `auto`'s state means without changing its parameters bumps
    `AutoDetector.STATE_VERSION` (a window's meaning: `snapshot.MEMORY_VERSION`): the part
    written before is rebuilt from the store, not adopted."""
    rt = specs.runtime()
    before = snapshot.fingerprint(rt)
    assert snapshot.take({"orders": Saved(before, 3600)}, rt) is not None
    monkeypatch.setattr(AutoDetector, "STATE_VERSION", AutoDetector.STATE_VERSION + 1)
    assert snapshot.fingerprint(rt) != before
    assert snapshot.take({"orders": Saved(before, 3600)}, rt) is None
    monkeypatch.undo()
    assert snapshot.fingerprint(rt) == before
    monkeypatch.setattr(snapshot, "MEMORY_VERSION", snapshot.MEMORY_VERSION + 1)
    assert snapshot.fingerprint(rt) != before


@pytest.mark.parametrize(
    "edit",
    [
        {"alerter": "alerter: {type: webhook, params: {url: 'http://127.0.0.1:9/new-token'}}\n"},
        {"extra": "description: the shop's orders\n"},
        {"collector": BASE["collector"].replace("/nonexistent.db", "/elsewhere.db")},
    ],
    ids=["alerter", "description", "connection"],
)
async def test_what_does_not_shape_memory_keeps_the_snapshot(specs: Specs, edit: dict[str, str]) -> None:
    """An alerter, a description or the source's connection (a secret rotated through `${VAR}`
    at each start) changes the metric's fingerprint, not what memory holds: the snapshot is
    still taken (review: every such restart rebuilt from the store)."""
    base = specs.runtime()
    extra = edit.pop("extra", "")
    changed = specs.runtime(extra, keys=edit)
    assert changed.spec.fingerprint != base.spec.fingerprint
    assert snapshot.fingerprint(changed) == snapshot.fingerprint(base)

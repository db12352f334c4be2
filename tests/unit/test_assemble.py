"""`assemble()` all or nothing: when a part built after the metric's collector fails, the
collector (which may hold a connection or a pool of its own) is closed, not left open; so
are the collectors `MetricRuntime` (the `explain:` query's) and `Lateness` (the
`complete_when` probe's) build themselves when a later part of their own fails."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from detectkd.collectors import registry
from detectkd.collectors.base import Row, Window
from detectkd.resources import Resources
from detectkd.runtime import lateness, runner, slot
from detectkd.runtime.slot import Deps, assemble
from detectkd.specs.loader import MetricSpec, load_metrics
from detectkd.storage.memory import MemoryStore
from tests.support.files import write
from tests.support.metrics import constant_metric


class HeldCollector:
    """A collector that holds something until closed."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def collect(self, window: Window) -> list[Row]:
        return []

    async def close(self) -> None:
        self.closed.set()


def spec(tmp_path: Path) -> MetricSpec:
    write(tmp_path / "m" / "a.yaml", constant_metric("a", tmp_path / "src.db"))
    return load_metrics([tmp_path / "m"], None, env={}).metrics["a"]


def held_kinds(monkeypatch: pytest.MonkeyPatch) -> list[HeldCollector]:
    """Every collector kind builds a `HeldCollector`; the list of those built."""
    built: list[HeldCollector] = []

    class Kind:
        def build(self, *_: Any, **__: Any) -> HeldCollector:
            built.append(HeldCollector())
            return built[-1]

    monkeypatch.setattr(registry, "lookup", lambda _: Kind())
    return built


async def all_closed(built: list[HeldCollector]) -> None:
    """Every collector in `built` closed: in the background (building is synchronous)."""
    async with asyncio.timeout(10):
        for collector in built:
            await collector.closed.wait()


def fail(*_: Any, **__: Any) -> Any:
    raise ValueError("this part cannot be built")


@pytest.mark.parametrize("part", ["build_detectors", "MetricRuntime", "build_channels", "Lateness"])
async def test_a_slot_that_cannot_be_built_leaves_no_collector_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: str
) -> None:
    built: list[HeldCollector] = []

    def build_collector(*_: Any) -> HeldCollector:
        built.append(HeldCollector())
        return built[-1]

    monkeypatch.setattr(slot, "build_collector", build_collector)
    monkeypatch.setattr(slot, part, fail)
    with pytest.raises(ValueError, match="cannot be built"):
        assemble(spec(tmp_path), Deps(MemoryStore(), Resources()))
    await all_closed(built)


async def test_an_assembled_slot_keeps_its_collector_open_until_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldCollector()
    monkeypatch.setattr(slot, "build_collector", lambda *_: held)
    built = assemble(spec(tmp_path), Deps(MemoryStore(), Resources()))
    assert built.runtime.collector is held and not held.closed.is_set()
    await built.stop()
    assert held.closed.is_set()


def test_without_a_running_loop_the_collector_is_closed_before_assemble_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldCollector()
    monkeypatch.setattr(slot, "build_collector", lambda *_: held)
    monkeypatch.setattr(slot, "MetricRuntime", fail)
    with pytest.raises(ValueError, match="cannot be built"):
        assemble(spec(tmp_path), Deps(MemoryStore(), Resources()))
    assert held.closed.is_set()


OWN_PARTS = """\
explain:
  query: "SELECT 'eu' AS region, 1 AS value"
  dimensions: [region]
completeness:
  complete_when: "SELECT 1"
"""


def own_parts(tmp_path: Path) -> MetricSpec:
    """A metric whose runtime and lateness build collectors of their own (`OWN_PARTS`)."""
    write(tmp_path / "m" / "a.yaml", constant_metric("a", tmp_path / "src.db") + OWN_PARTS)
    return load_metrics([tmp_path / "m"], None, env={}).metrics["a"]


@pytest.mark.parametrize(
    ("module", "part", "count"),
    [(runner, "ShadowSet", 2), (runner, "Explainer", 2), (runner, "StatusBook", 2), (lateness, "Recheck", 3)],
)
async def test_a_runtime_or_lateness_that_fails_halfway_closes_the_collectors_it_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: Any, part: str, count: int
) -> None:
    """Every collector built (the metric's, its explain query's, its completeness probe's)
    is closed when a part built after it fails."""
    metric = own_parts(tmp_path)  # loaded before the kinds are replaced
    built = held_kinds(monkeypatch)
    monkeypatch.setattr(module, part, fail)
    with pytest.raises(ValueError, match="cannot be built"):
        assemble(metric, Deps(MemoryStore(), Resources()))
    assert len(built) == count
    await all_closed(built)


async def test_a_slot_stopped_closes_the_collectors_its_runtime_and_lateness_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metric = own_parts(tmp_path)  # loaded before the kinds are replaced
    built = held_kinds(monkeypatch)
    made = assemble(metric, Deps(MemoryStore(), Resources()))
    assert len(built) == 3 and not any(c.closed.is_set() for c in built)
    await made.stop()
    assert all(c.closed.is_set() for c in built)

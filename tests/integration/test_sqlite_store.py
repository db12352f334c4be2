"""The SQLite store: idempotency, watermark, windows, NULLs, state, outbox, retention."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from detectkd.alerting.state import SeriesState, Status
from detectkd.collectors.points import Point
from detectkd.detectors.base import Result
from detectkd.storage.base import NewOutboxItem, RunRecord, StoredDetection
from detectkd.storage.sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "state" / "dtk.db")
    await s.open()
    yield s
    await s.close()


def pts(series: str, periods: list[int], values: list[float | None]) -> list[Point]:
    return [Point(series, p, v, {"h": p // 60}) for p, v in zip(periods, values, strict=True)]


async def test_rewrites_are_idempotent_and_nulls_stay_null(store: SqliteStore) -> None:
    run = RunRecord("m", points=pts("", [0, 60, 120], [1.0, None, 3.0]), watermark=120)
    await store.commit(run)
    await store.commit(RunRecord("m", points=pts("", [60], [2.0]), watermark=60))
    got = await store.read_points("m", "", 0, 1000)
    assert [(p.period, p.value) for p in got[""]] == [(0, 1.0), (60, 2.0), (120, 3.0)]
    await store.commit(RunRecord("m", points=pts("", [0], [None])))
    got = await store.read_points("m", None, 0, 1000)
    assert got[""][0].value is None  # NULL, never 0
    assert got[""][1].context == {"h": 1}


async def test_watermark_only_moves_forward(store: SqliteStore) -> None:
    assert await store.watermark("m") is None
    await store.commit(RunRecord("m", watermark=600))
    await store.commit(RunRecord("m", watermark=300))
    assert await store.watermark("m") == 600


async def test_window_reads_by_series_and_range(store: SqliteStore) -> None:
    await store.commit(RunRecord("m", points=pts("a", [0, 60, 120], [1, 2, 3]) + pts("b", [60], [9])))
    await store.commit(RunRecord("other", points=pts("a", [60], [7])))
    all_series = await store.read_points("m", None, 60, 121)
    assert {k: [p.value for p in v] for k, v in all_series.items()} == {"a": [2.0, 3.0], "b": [9.0]}
    assert list(await store.read_points("m", "b", 0, 1000)) == ["b"]


async def test_alert_state_round_trip(store: SqliteStore) -> None:
    st = SeriesState(Status.FIRING, 3, 600, 600, 720, 840)
    await store.commit(RunRecord("m", states={"region=eu": st}))
    assert (await store.load_states())[("m", "region=eu")] == st
    await store.drop_states("m")
    assert await store.load_states() == {}


async def test_outbox_is_unique_per_key_and_channel_and_retries(store: SqliteStore) -> None:
    item = NewOutboxItem("m||firing|0", "m", "", 0, "{}")
    await store.commit(RunRecord("m", outbox=[item, NewOutboxItem(item.key, "m", "", 1, "{}")]))
    await store.commit(RunRecord("m", outbox=[item]))  # the same alert again: ignored
    pending = await store.outbox_pending()
    assert [(p.key, p.channel) for p in pending] == [(item.key, 0), (item.key, 1)]
    first = pending[0]
    await store.outbox_retry(first.id, "boom", first.next_attempt_at + 100, dead=False)
    assert [p.id for p in await store.outbox_due(first.next_attempt_at + 1, 10)] == [pending[1].id]
    await store.outbox_retry(pending[1].id, "gone", 0, dead=True)
    await store.outbox_done(first.id)
    stats = await store.outbox_stats()
    assert (stats.pending, stats.dead) == (0, 1)


async def test_concurrent_commits_do_not_lose_rows(store: SqliteStore) -> None:
    runs = [RunRecord(f"m{i}", points=pts("", [0, 60], [i, i]), watermark=60) for i in range(50)]
    await asyncio.gather(*(store.commit(r) for r in runs))
    for i in (0, 25, 49):
        assert len((await store.read_points(f"m{i}", None, 0, 100))[""]) == 2


async def test_detections_are_stored_and_retention_deletes_old_rows(store: SqliteStore) -> None:
    det = StoredDetection("", 0, Result("mad", 1.0, True, 0.9, 0.5, 0.0, 0.8, "up"))
    await store.commit(RunRecord("m", points=pts("", [0, 86400], [1, 2]), detections=[det]))
    assert await store.delete_before("m", 86400) == 2  # one point, one detection
    left = await store.read_points("m", None, 0, 10**9)
    assert [p.period for p in left[""]] == [86400]


async def test_a_failed_commit_writes_nothing(store: SqliteStore) -> None:
    bad = RunRecord("m", points=pts("", [0], [1.0]), watermark=60)
    bad.points.append(Point("", "not-a-period", 1.0))  # type: ignore[arg-type]
    bad.points.append(Point("", 120, 1.0, {"x": object()}))  # not JSON: the transaction aborts
    with pytest.raises(TypeError):
        await store.commit(bad)
    assert await store.watermark("m") is None
    assert await store.read_points("m", None, 0, 1000) == {}

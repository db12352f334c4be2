"""One contract for every store backend: the same tests against SQLite, PostgreSQL, ClickHouse.

Idempotent re-writes, watermark, window reads with and without series, NULL
values, alert state round trip, outbox claim/ack/retry under concurrency,
retention delete.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from detectkd.alerting.state import SeriesState, Status
from detectkd.collectors.points import Point
from detectkd.detectors.base import Result
from detectkd.storage.base import NewOutboxItem, RunRecord, Store, StoredDetection
from detectkd.storage.clickhouse import ClickhouseStore
from detectkd.storage.memory import MemoryStore
from detectkd.storage.postgres import PostgresStore
from detectkd.storage.sqlite import SqliteStore
from tests.support.clickhouse_server import ClickHouseServer

BACKENDS = ["sqlite", "postgres", "clickhouse"]


@pytest.fixture(params=[*BACKENDS, "memory"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[], Store]]:
    """A factory: each call is another client of the same database (another daemon)."""
    stores: list[Store] = []
    cleanup: list[Callable[[], object]] = []
    if request.param == "sqlite":

        def factory() -> Store:
            s = SqliteStore(tmp_path / "state" / "dtk.db")
            stores.append(s)
            return s
    elif request.param == "memory":

        def factory() -> Store:
            s = MemoryStore(shared=stores[0] if stores else None)  # type: ignore[arg-type]
            stores.append(s)
            return s
    elif request.param == "clickhouse":
        server: ClickHouseServer = request.getfixturevalue("clickhouse")
        database = f"dtk_store_{uuid.uuid4().hex[:10]}"

        def factory() -> Store:
            s = ClickhouseStore(server.url, database)
            stores.append(s)
            return s

        def drop_ch() -> None:
            server.query(f"DROP DATABASE IF EXISTS {database}")

        cleanup.append(drop_ch)
    else:
        name = f"dtk_store_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
        await admin.execute(f"CREATE DATABASE {name}")

        def factory() -> Store:
            s = PostgresStore(host="127.0.0.1", port=5432, user="postgres", database=name)
            stores.append(s)
            return s

        async def drop() -> None:
            await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
            await admin.close()

        cleanup.append(drop)
    yield factory
    for s in stores:
        await s.close()
    for fn in cleanup:
        done = fn()
        if asyncio.iscoroutine(done):
            await done


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> Store:
    s = make_store()
    await s.open()
    return s


def pts(series: str, periods: list[int], values: list[float | None]) -> list[Point]:
    return [Point(series, p, v, {"h": p // 60}) for p, v in zip(periods, values, strict=True)]


async def test_rewrites_are_idempotent_and_nulls_stay_null(store: Store) -> None:
    run = RunRecord("m", points=pts("", [0, 60, 120], [1.0, None, 3.0]), watermark=120)
    await store.commit(run)
    await store.commit(RunRecord("m", points=pts("", [60], [2.0]), watermark=60))
    got = await store.read_points("m", "", 0, 1000)
    assert [(p.period, p.value) for p in got[""]] == [(0, 1.0), (60, 2.0), (120, 3.0)]
    await store.commit(RunRecord("m", points=pts("", [0], [None])))
    got = await store.read_points("m", None, 0, 1000)
    assert got[""][0].value is None  # NULL, never 0
    assert got[""][1].context == {"h": 1}


async def test_watermark_only_moves_forward(store: Store) -> None:
    assert await store.watermark("m") is None
    await store.commit(RunRecord("m", watermark=600))
    await store.commit(RunRecord("m", watermark=300))
    assert await store.watermark("m") == 600


async def test_window_reads_by_series_and_range(store: Store) -> None:
    await store.commit(RunRecord("m", points=pts("a", [0, 60, 120], [1, 2, 3]) + pts("b", [60], [9])))
    await store.commit(RunRecord("other", points=pts("a", [60], [7])))
    all_series = await store.read_points("m", None, 60, 121)
    assert {k: [p.value for p in v] for k, v in all_series.items()} == {"a": [2.0, 3.0], "b": [9.0]}
    assert list(await store.read_points("m", "b", 0, 1000)) == ["b"]


async def test_alert_state_round_trip(store: Store) -> None:
    st = SeriesState(
        Status.FIRING,
        3,
        600,
        600,
        720,
        840,
        clear_streak=1,
        last_sent_at=780,
        repeats=2,
        empty_streak=2,
        empty_since=900,
        flips=(600, 840),
        flapping_since=840,
        flap_notified=840,
    )
    await store.commit(RunRecord("m", states={"region=eu": st}))
    assert (await store.load_states())[("m", "region=eu")] == st
    await store.drop_states("m")
    assert await store.load_states() == {}


async def test_forgotten_series_lose_their_state_row(store: Store) -> None:
    keep, gone = SeriesState(last_period=600), SeriesState(Status.NODATA, empty_streak=9, empty_since=60)
    await store.commit(RunRecord("m", states={"host=a": keep, "host=b": gone, "host=c": gone}))
    await store.commit(RunRecord("m", states={"host=a": keep}, forget=["host=b", "host=c"], watermark=660))
    assert await store.load_states() == {("m", "host=a"): keep}
    assert await store.watermark("m") == 660
    # A series forgotten and later seen again starts from a fresh row.
    await store.commit(RunRecord("m", states={"host=b": keep}))
    assert (await store.load_states())[("m", "host=b")] == keep


async def test_outbox_is_unique_per_key_and_channel_and_retries(store: Store) -> None:
    item = NewOutboxItem("m||firing|0", "m", "", "webhook:a", "{}")
    await store.commit(RunRecord("m", outbox=[item, NewOutboxItem(item.key, "m", "", "slack:b", "{}")]))
    await store.commit(RunRecord("m", outbox=[item]))  # the same alert again: ignored
    pending = await store.outbox_pending()
    assert [(p.key, p.channel) for p in pending] == [(item.key, "webhook:a"), (item.key, "slack:b")]
    now = time.time() + 1
    claimed = await store.outbox_claim(now, 60, 10)
    assert [c.id for c in claimed] == [p.id for p in pending]
    assert await store.outbox_claim(now, 60, 10) == []  # leased
    first, second = claimed
    await store.outbox_retry(first.id, "boom", now + 100, dead=False)
    assert await store.outbox_claim(now + 1, 60, 10) == []  # not due yet; the other is leased
    assert [c.id for c in await store.outbox_claim(now + 61, 60, 10)] == [second.id]  # lease expired
    retried = await store.outbox_claim(now + 101, 60, 10)
    assert [(c.id, c.attempts, c.last_error) for c in retried] == [(first.id, 1, "boom")]
    await store.outbox_retry(second.id, "gone", 0, dead=True)
    await store.outbox_done(first.id)
    stats = await store.outbox_stats()
    assert (stats.pending, stats.dead) == (0, 1)
    (dead,) = await store.outbox_pending("dead")
    assert (dead.id, dead.status, dead.last_error) == (second.id, "dead", "gone")
    # The metric's history: every row whatever its status, oldest first; none of another metric.
    await store.commit(RunRecord("other", outbox=[NewOutboxItem("o||firing|0", "other", "", "log:x", "{}")]))
    history = await store.outbox_history("m", 0)
    assert [(h.id, h.status) for h in history] == [(first.id, "sent"), (second.id, "dead")]
    assert await store.outbox_history("m", time.time() + 5) == []


async def test_outbox_claims_only_queue_heads_in_order(store: Store) -> None:
    rows = [
        NewOutboxItem(f"m|s{i % 2}|{st}|0", "m", f"s{i % 2}", "log:x", "{}")
        for i, st in enumerate(["firing", "firing", "resolved", "resolved"])
    ]
    await store.commit(RunRecord("m", outbox=rows))
    now = time.time() + 1
    heads = await store.outbox_claim(now, 60, 10)
    assert [h.key for h in heads] == ["m|s0|firing|0", "m|s1|firing|0"]
    for h in heads:
        await store.outbox_done(h.id)
    assert [h.key for h in await store.outbox_claim(now, 60, 10)] == ["m|s0|resolved|0", "m|s1|resolved|0"]
    assert await store.outbox_claim(now, 60, 10, metric="other") == []


async def test_outbox_sent_rows_unblock_their_queue_and_owners_release_only_their_leases(
    store: Store,
) -> None:
    rows = [
        NewOutboxItem(f"m|s{i % 2}|{st}|0", "m", f"s{i % 2}", "log:x", "{}")
        for i, st in enumerate(["firing", "firing", "resolved", "resolved"])
    ]
    await store.commit(RunRecord("m", outbox=rows))
    now = time.time() + 1
    f0, _f1 = await store.outbox_claim(now, 60, 10, owner="a")
    # f0 delivered, its done-mark not stored: its RESOLVED may go; f1's queue still waits.
    (r0,) = await store.outbox_claim(now, 60, 10, owner="b", sent={f0.id})
    assert r0.key == "m|s0|resolved|0"
    assert await store.outbox_release("a") == 2  # a restarted "a" ends its own leases ...
    assert await store.outbox_release("a") == 0
    again = await store.outbox_claim(now, 60, 10, owner="c")
    assert [i.key for i in again] == ["m|s0|firing|0", "m|s1|firing|0"]  # ... r0 stays "b"'s
    assert await store.outbox_release("b") == 1
    # Only the rows named (another shard's, handed back at once), only the owner's.
    assert await store.outbox_release("e", [i.id for i in again]) == 0
    assert await store.outbox_release("c", [again[0].id]) == 1
    assert [i.id for i in await store.outbox_claim(now, 60, 10, owner="f")] == [again[0].id]
    assert await store.outbox_release("c", []) == 0


async def test_concurrent_claimers_never_get_the_same_row(
    make_store: Callable[[], Store], store: Store
) -> None:
    await store.commit(
        RunRecord(
            "m", outbox=[NewOutboxItem(f"m|s{i}|firing|0", "m", f"s{i}", "log:x", "{}") for i in range(40)]
        )
    )
    other = make_store()  # a second daemon on the same database
    await other.open()
    now = time.time() + 1
    results = await asyncio.gather(
        *(s.outbox_claim(now, 60, 7) for s in (store, other, store, other, store, other, store))
    )
    ids = [i.id for batch in results for i in batch]
    assert len(ids) == len(set(ids)) == 40


async def test_concurrent_commits_do_not_lose_rows(store: Store) -> None:
    runs = [RunRecord(f"m{i}", points=pts("", [0, 60], [i, i]), watermark=60) for i in range(50)]
    await asyncio.gather(*(store.commit(r) for r in runs))
    for i in (0, 25, 49):
        assert len((await store.read_points(f"m{i}", None, 0, 100))[""]) == 2


async def test_detections_are_stored_and_retention_deletes_old_rows(store: Store) -> None:
    det = StoredDetection("", 0, Result("mad", 1.0, True, 0.9, 0.5, 0.0, 0.8, "up"))
    await store.commit(RunRecord("m", points=pts("", [0, 86400], [1, 2]), detections=[det]))
    assert await store.delete_before("m", 86400) == 2  # one point, one detection
    left = await store.read_points("m", None, 0, 10**9)
    assert [p.period for p in left[""]] == [86400]


async def test_detections_read_back_as_stored(store: Store) -> None:
    up = StoredDetection("host=a", 600, Result("mad", 9.5, True, 0.91, 5.0, 3.5, 6.5, "up"))
    cold = StoredDetection("host=a", 600, Result("zscore", 9.5, False, 0.0, skipped="cold start"))
    other = StoredDetection("host=b", 1200, Result("mad", None, False, 0.0, skipped="missing value"))
    late = StoredDetection("host=a", 7200, Result("mad", 1.0, False, 0.1, 1.0, 0.0, 2.0))
    await store.commit(RunRecord("m", points=pts("host=a", [600], [9.5]), detections=[up, cold, other, late]))
    await store.commit(RunRecord("other", detections=[StoredDetection("", 600, up.result)]))
    got = await store.read_detections("m", 0, 3600)
    assert got == [up, cold, other]


async def test_a_failed_commit_writes_nothing(store: Store) -> None:
    bad = RunRecord("m", points=pts("", [0], [1.0]), watermark=60)
    bad.points.append(Point("", "not-a-period", 1.0))  # type: ignore[arg-type]
    bad.points.append(Point("", 120, 1.0, {"x": object()}))  # not JSON: the transaction aborts
    # SQL stores abort the transaction; ClickHouse (no transactions) rejects the batch before
    # writing anything.
    with pytest.raises((TypeError, ValueError)):
        await store.commit(bad)
    assert await store.watermark("m") is None
    assert await store.read_points("m", None, 0, 1000) == {}


async def test_silences_are_saved_replaced_and_loaded(store: Store) -> None:
    from detectkd.alerting.silences import Silence, make_window, new_silence

    window = make_window(["mon-fri"], ["22:00-02:00"], "Europe/Berlin")
    one = new_silence(["metric=orders", "region=~eu-.*"], 1000.0, 5000.0, "deploy", "ops")
    two = new_silence(["tag=shop"], 1000.0, None, "nightly", "ops", window)
    await store.silence_save(one.id, one.to_json(), one.ends_at)
    await store.silence_save(two.id, two.to_json(), two.ends_at)
    loaded = {s.id: s for s in map(Silence.from_json, await store.silences_load())}
    assert loaded == {one.id: one, two.id: two}
    import dataclasses

    expired = dataclasses.replace(one, expired_at=2000.0)
    await store.silence_save(one.id, expired.to_json(), one.ends_at)
    loaded = {s.id: s for s in map(Silence.from_json, await store.silences_load())}
    assert loaded[one.id].expired_at == 2000.0 and len(loaded) == 2


async def test_silences_version_follows_every_write_and_purge_removes_only_ended_ones(
    make_store: Callable[[], Store],
) -> None:
    """Issue 26: the daemon re-reads silences only when the version moved (another client
    writes them), and purges those over before the retention, every version of them."""
    from detectkd.alerting.silences import Silence, make_window, new_silence

    one, other = make_store(), make_store()
    await one.open()
    await other.open()
    empty = await one.silences_version()
    assert await other.silences_version() == empty
    ended = new_silence(["metric=a"], 1000.0, 5000.0)
    running = new_silence(["metric=b"], 1000.0, 90_000.0)
    forever = new_silence(["metric=c"], 1000.0, None, window=make_window(["sat"], [], "UTC"))
    seen = {empty}
    for s in (ended, running, forever):
        await one.silence_save(s.id, s.to_json(), s.over_at)
        version = await other.silences_version()
        assert version not in seen  # another client sees each write
        seen.add(version)
    expired = ended.expire(2000.0)  # over earlier than its end: what purge must read
    await other.silence_save(ended.id, expired.to_json(), expired.over_at)
    assert await one.silences_version() not in seen
    seen.add(await one.silences_version())
    assert await one.silences_version() == await one.silences_version()  # stable when unchanged

    assert await one.silences_purge(1500.0) == 0
    assert await other.silences_purge(3000.0) == 1  # expired at 2000 (its first version ended at 5000)
    assert await one.silences_version() not in seen
    left = {s.id: s for s in map(Silence.from_json, await other.silences_load())}
    assert left == {running.id: running, forever.id: forever}  # no older version came back
    assert await one.silences_purge(10**9) == 1 and len(await one.silences_load()) == 1  # window kept


async def test_history_jobs_are_saved_replaced_deleted_and_seen_by_another_client(
    make_store: Callable[[], Store],
) -> None:
    one, other = make_store(), make_store()
    await one.open()
    await other.open()
    await one.history_save("orders", '{"start": 1}')
    await one.history_save("visits", '{"start": 5}')
    await one.history_save("orders", '{"start": 2}')
    assert await other.history_load() == {"orders": '{"start": 2}', "visits": '{"start": 5}'}
    await other.history_save("visits", None)
    await other.history_save("never-saved", None)  # deleting what is not there is not an error
    assert await one.history_load() == {"orders": '{"start": 2}'}


async def test_feedback_labels_are_saved_replaced_deleted_per_metric(
    make_store: Callable[[], Store],
) -> None:
    from detectkd.alerting.feedback import Feedback

    one, other = make_store(), make_store()
    await one.open()
    await other.open()
    a = Feedback("orders", "region=eu", 600, "incident", 1200, "alice", 1.5, "checkout down")
    b = Feedback("orders", "", 300, "false_alarm", 300, "bob", 2.0)
    elsewhere = Feedback("visits", "", 300, "incident", 300, "bob", 2.0)
    for fb in (a, b, elsewhere):
        await one.feedback_save(fb.metric, fb.series, fb.period, fb.to_json())
    assert [Feedback.from_json(t) for t in await other.feedback_load("orders")] == [b, a]  # series, period
    relabelled = Feedback("orders", "region=eu", 600, "false_alarm", 600, "carol", 3.0)
    await other.feedback_save("orders", "region=eu", 600, relabelled.to_json())
    await other.feedback_save("orders", "", 300, None)
    await other.feedback_save("orders", "", 999, None)  # deleting what is not there is not an error
    assert [Feedback.from_json(t) for t in await one.feedback_load("orders")] == [relabelled]
    assert [Feedback.from_json(t) for t in await one.feedback_load("visits")] == [elsewhere]
    assert await one.feedback_load("nothing") == []


async def test_shadow_variants_states_and_would_be_alerts(make_store: Callable[[], Store]) -> None:
    """A shadow variant's state document is replaced and deleted per (metric, variant); its
    would-be alerts are written once per key (a redone run adds nothing), read by period
    range with a limit, and purged by period."""
    from detectkd.storage.base import ShadowAlert

    one, other = make_store(), make_store()
    await one.open()
    await other.open()

    def alert(variant: str, key: str, period: int, metric: str = "orders") -> ShadowAlert:
        return ShadowAlert(metric, variant, key, "region=eu", period, f'{{"k": "{key}"}}')

    first = [alert("tight", "a|600", 600), alert("tight", "a|1200", 1200)]
    await one.shadow_commit("orders", "tight", '{"v": 1}', first)
    await one.shadow_commit("orders", "tight", '{"v": 2}', first)  # the same run redone
    await one.shadow_commit("orders", "", "{}", [alert("", "a|600", 600)])  # the metric's own
    await one.shadow_commit("visits", "tight", '{"v": 9}', [alert("tight", "v|600", 600, "visits")])
    assert await other.shadow_load("orders") == {"": "{}", "tight": '{"v": 2}'}
    got = await other.shadow_alerts("orders", 0, 10_000, 100)
    assert [(a.variant, a.key, a.period) for a in got] == [
        ("", "a|600", 600),
        ("tight", "a|600", 600),
        ("tight", "a|1200", 1200),
    ]
    assert got[1] == first[0]
    assert [a.key for a in await other.shadow_alerts("orders", 601, 1201, 100)] == ["a|1200"]
    assert len(await other.shadow_alerts("orders", 0, 10_000, 2)) == 2  # the limit holds
    await other.shadow_commit("orders", "tight", None, [])
    await other.shadow_commit("orders", "never-saved", None, [])  # deleting nothing is no error
    assert await one.shadow_load("orders") == {"": "{}"}
    assert await one.shadow_load("visits") == {"tight": '{"v": 9}'}
    assert await one.shadow_purge(1000) == 3  # orders' two of 600, visits' one
    assert [a.key for a in await one.shadow_alerts("orders", 0, 10_000, 100)] == ["a|1200"]
    assert await one.shadow_alerts("visits", 0, 10_000, 100) == []


async def test_feedback_near_reads_one_series_labels_in_a_range_newest_first_up_to_a_limit(
    make_store: Callable[[], Store],
) -> None:
    from detectkd.alerting.feedback import Feedback

    one, other = make_store(), make_store()
    await one.open()
    await other.open()
    labels = [Feedback("orders", "", p, "incident", p, "ops", 1.0) for p in (100, 200, 300, 400)]
    labels += [Feedback("orders", "region=eu", 300, "false_alarm", 300, "ops", 1.0)]
    labels += [Feedback("visits", "", 300, "false_alarm", 300, "ops", 1.0)]
    for fb in labels:
        await one.feedback_save(fb.metric, fb.series, fb.period, fb.to_json())

    async def near(series: str, since: int, until: int, limit: int) -> list[int]:
        return [
            Feedback.from_json(t).period
            for t in await other.feedback_near("orders", series, since, until, limit)
        ]

    assert await near("", 200, 400, 10) == [400, 300, 200]  # both ends in, newest first
    assert await near("", 0, 350, 2) == [300, 200]  # the limit keeps the newest
    assert await near("region=eu", 0, 1000, 10) == [300]  # its own series only
    assert await near("", 401, 1000, 10) == []
    await one.feedback_save("orders", "", 300, None)  # a deleted label is gone from it too
    assert await near("", 0, 1000, 10) == [400, 200, 100]


async def test_clickhouse_store_adds_columns_of_later_releases(clickhouse: ClickHouseServer) -> None:
    """A dtk_alert_state created by the first release (no hysteresis, repeats or extra)."""
    database = f"dtk_old_{uuid.uuid4().hex[:8]}"
    clickhouse.query(f"CREATE DATABASE {database}")
    clickhouse.query(
        f"CREATE TABLE {database}.dtk_alert_state (metric String, series String, status String, "
        "streak UInt32, since Nullable(Int64), notified_since Nullable(Int64), last_fired_at Nullable(Int64), "
        "last_period Nullable(Int64), deleted UInt8, updated_at DateTime('UTC'), version UInt64) "
        "ENGINE = ReplacingMergeTree(version) ORDER BY (metric, series)"
    )
    st = SeriesState(Status.FIRING, 2, 600, clear_streak=1, repeats=3, empty_streak=2, empty_since=900)
    try:
        for _ in range(2):  # the second open finds nothing to add
            store = ClickhouseStore(clickhouse.url, database)
            await store.open()
            await store.commit(RunRecord("m", states={"": st}))
            assert (await store.load_states())[("m", "")] == st
            await store.close()
    finally:
        clickhouse.query(f"DROP DATABASE {database}")


async def test_clickhouse_outbox_of_an_earlier_release_gets_lease_owners(
    clickhouse: ClickHouseServer,
) -> None:
    """A dtk_outbox with text channels but no `leased_by` (before issue 26)."""
    database = f"dtk_old_{uuid.uuid4().hex[:8]}"
    clickhouse.query(f"CREATE DATABASE {database}")
    clickhouse.query(
        f"CREATE TABLE {database}.dtk_outbox (id UInt64, key String, metric String, series String, "
        "channel String, payload String, created_at Float64, attempts UInt32, next_attempt_at Float64, "
        "last_error String, status String, leased_until Float64, version UInt64) "
        "ENGINE = ReplacingMergeTree(version) ORDER BY (key, channel)"
    )
    clickhouse.query(
        f"INSERT INTO {database}.dtk_outbox VALUES (7, 'k', 'm', '', 'log:x', '{{}}', 1, 0, 1, "
        "'', 'pending', 0, 7)"
    )
    store = ClickhouseStore(clickhouse.url, database)
    try:
        await store.open()
        await store.commit(RunRecord("m", outbox=[NewOutboxItem("k2", "m", "b", "log:x", "{}")]))
        claimed = await store.outbox_claim(time.time() + 1, 60, 10, owner="me")
        assert sorted(i.key for i in claimed) == ["k", "k2"]
        assert await store.outbox_release("me") == 2
        assert len(await store.outbox_claim(time.time() + 1, 60, 10, owner="other")) == 2
    finally:
        await store.close()
        clickhouse.query(f"DROP DATABASE {database}")


async def test_pending_rows_follow_a_renamed_channel(store: Store) -> None:
    rows = [NewOutboxItem("m|a|firing|0", "m", "a", ch, "{}") for ch in ("webhook:old", "slack:x")]
    await store.commit(
        RunRecord("m", outbox=[*rows, NewOutboxItem("n|a|firing|0", "n", "a", "webhook:old", "{}")])
    )
    assert await store.outbox_rechannel("m", {"webhook:old": "webhook:new"}) == 1
    got = sorted((i.metric, i.channel) for i in await store.outbox_pending())
    assert got == [("m", "slack:x"), ("m", "webhook:new"), ("n", "webhook:old")]  # other metrics stay
    claimed = await store.outbox_claim(time.time() + 1, 60, 10, metric="m")
    assert sorted(c.channel for c in claimed) == ["slack:x", "webhook:new"]


async def test_recommitting_a_sent_key_never_sends_it_again(store: Store) -> None:
    row = NewOutboxItem("m|a|firing|600", "m", "a", "webhook:x", "{}")
    await store.commit(RunRecord("m", outbox=[row]))
    (claimed,) = await store.outbox_claim(time.time() + 1, 60, 10)
    await store.outbox_done(claimed.id)
    await store.commit(RunRecord("m", outbox=[row]))  # e.g. a run redone after a crash
    assert await store.outbox_pending() == []
    assert await store.outbox_claim(time.time() + 1, 60, 10) == []
    assert (await store.outbox_stats()).pending == 0


async def test_sent_rows_do_not_pile_up(store: Store) -> None:
    """Issue 12, bug 7: ClickHouse kept every sent row forever (and every claim read them)."""
    items = [NewOutboxItem(f"m|s{i}|firing|0", "m", f"s{i}", "log:x", "{}") for i in range(5)]
    await store.commit(RunRecord("m", outbox=items))
    for c in await store.outbox_claim(time.time() + 1, 60, 10):
        await store.outbox_done(c.id)
    await store.commit(
        RunRecord("m", outbox=[NewOutboxItem("m|later|firing|0", "m", "later", "log:x", "{}")])
    )
    assert await store.outbox_purge(time.time() - 3600) == 0  # sent too recently to go
    assert await store.outbox_purge(time.time() + 1) == 5
    assert [i.key for i in await store.outbox_pending()] == ["m|later|firing|0"]  # pending rows stay
    assert (await store.outbox_stats()).pending == 1
    if isinstance(store, ClickhouseStore):
        rows = await store._do(lambda c: c.fetch("SELECT count() AS n FROM dtk_outbox"))
        assert int(rows[0]["n"]) <= 3  # the pending row's versions; nothing of the sent ones


@pytest.mark.parametrize("backend", BACKENDS)
async def test_outbox_channels_of_an_older_release_migrate(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Stores created before stable channel ids have an integer column with the alerter's
    index; after opening, those rows read as "0", "1" (which `ChannelSet` maps to positions)."""
    import sqlite3 as sqlite

    if backend == "sqlite":
        path = tmp_path / "old.db"
        with sqlite.connect(path) as conn:
            conn.execute(
                "CREATE TABLE dtk_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, "
                "metric TEXT NOT NULL, series TEXT NOT NULL, channel INTEGER NOT NULL, payload TEXT NOT NULL, "
                "created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, "
                "last_error TEXT, status TEXT NOT NULL DEFAULT 'pending', UNIQUE (key, channel))"
            )
            conn.execute(
                "INSERT INTO dtk_outbox (key, metric, series, channel, payload, created_at, "
                "next_attempt_at) VALUES ('k', 'm', '', 1, '{}', 1, 1)"
            )
        store: Store = SqliteStore(path)
        cleanup = None
    elif backend == "postgres":
        name = f"dtk_old_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
        await admin.execute(f"CREATE DATABASE {name}")
        conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database=name)
        await conn.execute(
            "CREATE TABLE dtk_outbox (id bigserial PRIMARY KEY, key text NOT NULL, metric text NOT NULL, "
            "series text NOT NULL, channel integer NOT NULL, payload text NOT NULL, "
            "created_at double precision NOT NULL, attempts integer NOT NULL DEFAULT 0, "
            "next_attempt_at double precision NOT NULL, last_error text, "
            "status text NOT NULL DEFAULT 'pending', leased_until double precision, UNIQUE (key, channel));"
            "INSERT INTO dtk_outbox (key, metric, series, channel, payload, created_at, next_attempt_at) "
            "VALUES ('k', 'm', '', 1, '{}', 1, 1)"
        )
        await conn.close()
        store = PostgresStore(host="127.0.0.1", port=5432, user="postgres", database=name)

        async def cleanup() -> None:
            await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
            await admin.close()
    else:
        server: ClickHouseServer = request.getfixturevalue("clickhouse")
        database = f"dtk_old_{uuid.uuid4().hex[:8]}"
        server.query(f"CREATE DATABASE {database}")
        server.query(
            f"CREATE TABLE {database}.dtk_outbox (id UInt64, key String, metric String, series String, "
            "channel UInt32, payload String, created_at Float64, attempts UInt32, next_attempt_at Float64, "
            "last_error String, status String, leased_until Float64, version UInt64) "
            "ENGINE = ReplacingMergeTree(version) ORDER BY (key, channel)"
        )
        server.query(
            f"INSERT INTO {database}.dtk_outbox VALUES (7, 'k', 'm', '', 1, '{{}}', 1, 0, 1, '', "
            "'pending', 0, 7)"
        )
        store = ClickhouseStore(server.url, database)

        async def cleanup() -> None:
            server.query(f"DROP DATABASE {database}")

    try:
        await store.open()
        (item,) = await store.outbox_pending()
        assert (item.key, item.channel) == ("k", "1"), backend
        await store.commit(RunRecord("m", outbox=[NewOutboxItem("k2", "m", "", "webhook:a", "{}")]))
        await store.close()
        store = type(store)(**_same(store))  # a second open finds nothing left to migrate
        await store.open()
        assert [(i.key, i.channel) for i in await store.outbox_pending()] == [
            ("k", "1"),
            ("k2", "webhook:a"),
        ]
        claimed = await store.outbox_claim(time.time() + 1, 60, 10, owner="me")  # leases have an owner now
        assert len(claimed) == 2 and await store.outbox_release("me") == 2
    finally:
        await store.close()
        if cleanup is not None:
            await cleanup()


def _same(store: Store) -> dict[str, object]:
    """Constructor arguments for another client of the same database."""
    if isinstance(store, SqliteStore):
        return {"path": store.path}
    if isinstance(store, ClickhouseStore):
        return {"url": store.url, "database": store.database}
    assert isinstance(store, PostgresStore)
    return {"dsn": None, **store._connect}

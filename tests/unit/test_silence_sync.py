"""The daemon's silences follow the store: read again only when they changed, a document
parsed once, unreadable ones skipped and counted, ended ones purged after the retention."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from detectkd.alerting.silences import RETENTION_S, Silences, make_window, new_silence
from detectkd.runtime.silence_sync import FULL_READ_S, PURGE_EVERY_S, SilenceSync
from detectkd.storage.memory import MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_silences_are_read_again_only_when_they_changed() -> None:
    store, clock, unreadable = MemoryStore(), Clock(), list[int]()
    sync = SilenceSync(Silences(), store, unreadable.append, clock)
    one = new_silence(["metric=~a.*"], 0, 4e9)
    await store.silence_save(one.id, one.to_json(), one.over_at)
    await sync.refresh()
    assert list(sync.silences.items) == [one.id] and sync.reads == 1
    parsed = sync.silences.items[one.id]
    for _ in range(5):
        clock.now += 10
        await sync.refresh()
    assert sync.reads == 1  # unchanged: not read, not parsed

    other = MemoryStore(shared=store)  # another process adds one
    two = new_silence(["metric=b"], 0, 4e9)
    await other.silence_save(two.id, two.to_json(), two.over_at)
    await sync.refresh()
    assert sync.reads == 2 and set(sync.silences.items) == {one.id, two.id}
    assert sync.silences.items[one.id] is parsed  # the unchanged document is not parsed again

    clock.now += FULL_READ_S
    await sync.refresh()
    assert sync.reads == 3  # and now and then a full read, whatever the version says
    await sync.refresh(force=True)
    assert sync.reads == 4 and unreadable == [0, 0, 0, 0]


async def test_an_unreadable_stored_silence_is_skipped_and_counted() -> None:
    store, counts = MemoryStore(), list[int]()
    sync = SilenceSync(Silences(), store, counts.append, Clock())
    good = new_silence(["metric=m"], 0, 4e9)
    bad = {**json.loads(good.to_json()), "id": "0" * 12, "starts_at": math.nan}
    await store.silence_save(good.id, good.to_json(), good.over_at)
    await store.silence_save("0" * 12, json.dumps(bad), None)
    await store.silence_save("1" * 12, "{not json", None)
    await sync.refresh()
    assert list(sync.silences.items) == [good.id] and counts == [2]


async def test_saving_checks_the_count_cap_and_stores_when_it_is_over() -> None:
    store = MemoryStore()
    sync = SilenceSync(Silences(), store, clock=Clock())
    s = new_silence(["metric=m"], 1000.0, 4e9)
    await sync.save(s)
    before = sync.silences.items
    await sync.save(s.expire(2000.0))
    assert sync.silences.items is not before  # replaced, not changed under a judge thread
    assert store._d.silence_ends[s.id] == 2000.0  # expired: over at 2000, what purge reads


async def test_ended_silences_are_purged_after_the_retention_hourly() -> None:
    store, clock = MemoryStore(), Clock()
    sync = SilenceSync(Silences(), store, clock=clock)
    now = time.time()
    old = new_silence(["metric=m"], 0, now - RETENTION_S - 60)
    recent = new_silence(["metric=m"], 0, now - RETENTION_S + 600)
    expired = new_silence(["metric=m"], 0, now + 3600).expire(now - RETENTION_S - 1)
    window = new_silence(["metric=m"], 0, None, window=make_window(["mon-fri"], ["22:00-02:00"], "UTC"))
    for s in (old, recent, expired, window):
        await store.silence_save(s.id, s.to_json(), s.over_at)
    await sync.refresh()
    assert set(sync.silences.items) == {recent.id, window.id}
    await store.silence_save(old.id, old.to_json(), old.over_at)  # back (another writer)
    clock.now += PURGE_EVERY_S - 1
    await sync.refresh()
    assert old.id in sync.silences.items  # not an hour yet
    clock.now += 1
    await sync.refresh()
    assert set(sync.silences.items) == {recent.id, window.id}


def test_the_cli_refuses_over_the_caps_and_absurd_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from detectkd import cli
    from detectkd.alerting import silences as sil

    monkeypatch.setattr(sil, "MAX_SILENCES", 1)
    cfg = tmp_path / "detectkd.yaml"
    cfg.write_text(f"metrics_dir: {tmp_path}/metrics.d\nstorage: {{path: {tmp_path}/dtk.db}}\n")
    add = ["silence", "add", "--config", str(cfg)]
    assert cli.main([*add, "metric=a", "--for", "1h"]) == 0
    assert cli.main([*add, "metric=b", "--for", "1h"]) == 2
    assert "too many silences: 1" in capsys.readouterr().err
    assert cli.main([*add, "metric=~(a)\\1", "--for", "1h"]) == 2
    assert "bad regex" in capsys.readouterr().err
    assert cli.main([*add, "metric=c", "--until", "10000-01-01T00:00:00Z"]) == 2
    assert cli.main([*add, "metric=c", "--for", "900000000 days"]) == 2
    assert "1970 and 9999" in capsys.readouterr().err


async def test_a_failing_purge_does_not_keep_the_silences_from_being_read() -> None:
    from detectkd.errors import StorageError

    class NoPurge(MemoryStore):
        async def silences_purge(self, ended_before: float) -> int:
            raise StorageError("read-only")

    store = NoPurge()
    s = new_silence(["metric=m"], 0, 4e9)
    await store.silence_save(s.id, s.to_json(), s.over_at)
    sync = SilenceSync(Silences(), store, clock=Clock())
    await sync.refresh()
    assert list(sync.silences.items) == [s.id]

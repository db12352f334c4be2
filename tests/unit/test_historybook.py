"""The history loader's record of its jobs (`JobBook`): what is stored, what is shown."""

from __future__ import annotations

from datetime import timedelta

from detectkd.config.settings import HistorySettings
from detectkd.errors import CollectError
from detectkd.runtime.historybook import MAX_RETRY_S, JobBook
from detectkd.runtime.status import StatusBook
from detectkd.storage.memory import MemoryStore
from detectkd.telemetry import Telemetry

DAY = 86400


async def test_jobs_left_by_an_earlier_process_are_read_and_an_unreadable_one_dropped() -> None:
    store = MemoryStore()
    await store.history_save("a", '{"start": 0, "until": 100, "total": 100}')
    await store.history_save("b", "not json")
    telemetry = Telemetry()
    book = JobBook(store, HistorySettings(), telemetry)
    await book.open()
    assert list(book.jobs) == ["a"] and list(await store.history_load()) == ["a"]
    assert telemetry.history_progress.labels("a").get() == 0.0


async def test_a_warm_up_is_not_stored_and_a_job_extended_keeps_its_progress() -> None:
    store = MemoryStore()
    book = JobBook(store, HistorySettings(), None)
    await book.record("warm", 0, DAY, warm=True)
    await book.record("job", 0, DAY, warm=False)
    assert list(await store.history_load()) == ["job"]  # a warm-up is redone after a crash
    job = book.jobs["job"]
    job.start = DAY // 2
    await book.save(job)
    await book.record("job", 0, 2 * DAY, warm=False)  # the live run's first start is later
    assert (job.start, job.until, job.total, job.progress) == (DAY // 2, 2 * DAY, 2 * DAY, 0.25)
    job.start = job.until
    await book.save(job)
    assert await store.history_load() == {}  # done: deleted


async def test_a_failed_batch_is_shown_counted_and_retried_later_each_time_up_to_a_cap() -> None:
    telemetry = Telemetry()
    book = JobBook(MemoryStore(), HistorySettings(retry_after=timedelta(seconds=30)), telemetry)
    await book.record("a", 0, DAY, warm=False)
    job = book.jobs["a"]
    waits = [book.failed(job, CollectError("down"), 60) for _ in range(7)]
    assert waits == [30, 60, 120, 240, 480, MAX_RETRY_S, MAX_RETRY_S]
    assert job.error == "down" and telemetry.history_errors.labels("a").get() == 7
    book.failed(job, TimeoutError(), 60)
    assert job.error == "batch exceeded history.batch_timeout (60s)"
    book.succeeded(job)
    assert job.error is None and job.failures == 0


async def test_until_when_periods_loaded_of_all_the_pace_so_far_and_a_failed_batch_retried_at() -> None:
    """Issue 28, review: "until when" was only a percentage; a failed warm-up left its metric's
    judging unset (null) while it waited to retry."""
    telemetry = Telemetry()
    book = JobBook(MemoryStore(), HistorySettings(), telemetry)
    await book.record("a", 0, 100 * 3600, warm=True)
    job = book.jobs["a"]
    job.seen = (1000.0, 0.0)  # taken up at monotonic 1000
    job.start = 40 * 3600  # 40 of 100 periods loaded, in 20 s
    assert job.periods(3600) == [40, 100] and job.eta(now=1020.0) == 30.0
    api = job.api(3600)
    assert api["periods"] == [40, 100] and api["retry_at"] is None
    assert job.note(3600).startswith(
        "warming up: its history is loading in the background (40 of 100 periods, 40%"
    )
    assert "background (40%" in job.api()["note"] and "periods" not in job.api()  # no interval: no count
    book.failed(job, CollectError("no such table"), 60)
    api = job.api(3600)
    assert api["retry_at"] is not None and api["eta_seconds"] is None  # no pace while it waits
    assert api["note"].endswith(f"its last batch failed: no such table; retried at {api['retry_at']})")
    assert telemetry.metric_judging.labels("a").get() == 0.0  # its live runs judged nothing yet
    book.succeeded(job)
    assert job.retry_at is None and job.api(3600)["retry_at"] is None


async def test_a_warm_up_says_not_judging_from_its_start_and_counts_a_many_series_metrics_series() -> None:
    """Issue 28, left open: a warm-up's live runs wait and set nothing, so the gauges kept an
    earlier runtime's values (or were absent until the first live run, a day for a daily metric)."""
    telemetry = Telemetry()
    telemetry.series_not_judging.labels("m").set(7)  # an earlier runtime's count
    book = JobBook(MemoryStore(), HistorySettings(), telemetry)
    await book.record("m", 0, DAY, warm=True, many=True)
    await book.record("one", 0, DAY, warm=True)
    assert telemetry.metric_judging.labels("m").get() == 0.0
    assert telemetry.series_not_judging.labels("m").get() == 0.0  # none loaded yet
    assert telemetry.metric_judging.labels("one").get() == 0.0
    book.succeeded(book.jobs["m"], ["s=a", "s=b"])
    book.succeeded(book.jobs["m"], ["s=b", "s=c"])
    assert book.jobs["m"].series == {"s=a", "s=b", "s=c"}
    assert telemetry.series_not_judging.labels("m").get() == 3.0
    book.succeeded(book.jobs["one"], [""])
    assert ("one",) not in telemetry.series_not_judging.values  # one series: `judging` says it


def test_a_metric_that_lost_its_series_columns_keeps_no_count_of_its_earlier_runtime() -> None:
    telemetry = Telemetry()
    telemetry.series_not_judging.labels("m").set(4)
    StatusBook("m", telemetry, 60, many=False)
    assert ("m",) not in telemetry.series_not_judging.values
    StatusBook("x", telemetry, 60, many=False)  # none to drop

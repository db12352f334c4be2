"""How rare a score is among its series' last 14 days (alerting.rarity), and the episode
starts a FIRING is compared with (runtime.explain)."""

from __future__ import annotations

import numpy as np

from detectkd.alerting.feedback import Feedback
from detectkd.alerting.rarity import BINS, DAY, LOW, ScoreBook, score_bin, score_bins
from detectkd.runtime.explain import label_of, last_similar, remember

T0 = 1_795_000_000 - 1_795_000_000 % DAY  # a UTC midnight
HOUR = 3600


def test_bins_grow_with_the_score_and_split_at_the_alarm_line() -> None:
    scores = [0.0, 0.1, 0.3, 0.49, 0.5, 0.6, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0]
    bins = [score_bin(s) for s in scores]
    assert bins == sorted(bins) and len(set(bins)) == len(bins)
    assert score_bin(0.49) == LOW - 1 and score_bin(0.5) == LOW and score_bin(1.0) == BINS - 1
    assert score_bin(float("nan")) == 0 and score_bin(-1) == 0


def hourly(book: ScoreBook, start: int, scores: list[float]) -> None:
    for i, s in enumerate(scores):
        book.add("", "mad", start + i * HOUR, s)


def test_rank_counts_only_lower_bins_before_the_period() -> None:
    book = ScoreBook()
    hourly(book, T0, [0.1] * 297 + [0.3, 0.3, 0.7])  # 300 hours: 12.5 days
    at = T0 + 300 * HOUR
    r = book.rank("", "mad", at, 0.7)
    assert r is not None and (r.below, r.total, r.days) == (299, 300, 12)  # the tie is not "below"
    r = book.rank("", "mad", at, 0.9)
    assert r is not None and (r.below, r.total) == (300, 300)
    assert book.rank("other", "mad", at, 0.9) is None and book.rank("", "zscore", at, 0.9) is None


def test_only_the_last_14_days_count_and_the_span_says_14() -> None:
    book = ScoreBook()
    hourly(book, T0, [0.9] * (5 * 24) + [0.1] * (15 * 24))  # 5 days high, then 15 days low
    at = T0 + 20 * DAY
    r = book.rank("", "mad", at, 0.5)
    assert r is not None and r.days == 14 and r.total == 14 * 24 and r.below == r.total


def test_a_redone_batch_replaces_its_scores_instead_of_counting_them_twice() -> None:
    book = ScoreBook()
    hourly(book, T0, [0.1] * 100)
    batch = T0 + 100 * HOUR
    for i in range(10):  # a run judges 10 hours, its commit fails
        book.pend("", "mad", batch + i * HOUR, 0.2)
    r = book.rank("", "mad", batch + 5 * HOUR, 0.9)
    assert r is not None and r.total == 105  # its own earlier periods count, later ones do not
    book.settle(batch)  # redone from the same period: the pending scores are dropped
    for i in range(10):
        book.pend("", "mad", batch + i * HOUR, 0.2)
    book.settle(batch + 10 * HOUR)  # the next run starts after them: counted once
    r = book.rank("", "mad", batch + 10 * HOUR, 0.9)
    assert r is not None and r.total == 110
    book.add("", "mad", batch + 3 * HOUR, 0.2)  # an older period again: ignored
    r = book.rank("", "mad", batch + 10 * HOUR, 0.9)
    assert r is not None and r.total == 110
    book.forget("")
    assert book.rank("", "mad", batch + 10 * HOUR, 0.9) is None and len(book) == 0


def test_episode_starts_are_kept_per_direction_and_the_last_before_is_found() -> None:
    s: tuple[int, ...] = ()
    for at, d in [(100, "up"), (200, "down"), (300, "up"), (400, "up"), (400, "up"), (500, None)]:
        s = remember(s, at, d)
    assert s == (400, 300, -200)  # two per direction, newest first; no direction: not kept
    assert last_similar(s, 400, "up") == 300  # the episode itself is not its own precedent
    assert last_similar(s, 450, "up") == 400
    assert last_similar(s, 450, "down") == 200
    assert last_similar(s, 300, "up") is None and last_similar(s, 450, None) is None


def test_the_label_covering_the_episode_start_names_it() -> None:
    def fb(series: str, period: int, until: int, label: str, at: float) -> Feedback:
        return Feedback("m", series, period, label, until, "ops", at)

    labels = [
        fb("a", 100, 100, "false_alarm", 1.0),
        fb("a", 90, 200, "incident", 2.0),
        fb("b", 300, 300, "incident", 1.0),
    ]
    assert label_of(labels, "a", 100) == "incident"  # the newest of the labels covering it
    assert label_of(labels, "a", 150) == "incident"
    assert label_of(labels, "a", 300) is None and label_of(labels, "b", 300) == "incident"


def test_a_batch_is_counted_as_its_scores_one_by_one() -> None:
    scores = [0.0, 0.05, 0.2, 0.4999, 0.5, 0.55, 0.7, 0.9, 0.97, 0.999, 0.99999, 1.0, float("nan"), -0.1]
    assert score_bins(np.array(scores)).tolist() == [score_bin(s) for s in scores]
    one, many = ScoreBook(), ScoreBook()
    rng = np.random.default_rng(3)
    start = T0 + 10 * DAY
    values = rng.beta(1, 4, 20 * 24).tolist()
    for i, s in enumerate(values):  # 20 days, three days of them in a batch
        one.add("", "mad", start + i * HOUR, s)
        many.pend("", "mad", start + i * HOUR, s)
        if i % 72 == 71:
            many.settle(start + (i + 1) * HOUR)
    many.settle(start + len(values) * HOUR)
    for at in (start + 20 * DAY, start + 20 * DAY + 5 * HOUR):
        for s in (0.3, 0.5, 0.8):
            assert one.rank("", "mad", at, s) == many.rank("", "mad", at, s)

"""The pure decisions of late and incomplete periods: re-judging an alert state
(`alerting.revise`) and reading `complete_when` / `settle` evidence (`runtime.completeness`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from detectkd.alerting.revise import LATE, RETRACTED, revise
from detectkd.alerting.state import Notice, Rules, SeriesState, Status
from detectkd.config.models import Conditions
from detectkd.runtime.completeness import agree, complete
from detectkd.specs.loader import load_metrics
from tests.support.files import write

H = 3600


def rules(**cond: object) -> Rules:
    return Rules.plain(Conditions(**cond), H)  # type: ignore[arg-type]


FIRING = SeriesState(Status.FIRING, streak=1, since=10 * H, notified_since=10 * H, last_period=10 * H)


def test_a_firing_whose_period_is_normal_now_is_retracted() -> None:
    rev = revise(FIRING, {9 * H: False, 10 * H: False}, [10 * H], rules())
    assert rev.notices == [Notice("resolved", 10 * H)] and rev.revised == "retracted"
    assert rev.reason == RETRACTED and rev.period == 10 * H
    assert rev.state.status is Status.OK and rev.state.notified_since is None


def test_a_firing_that_still_holds_is_kept() -> None:
    state = SeriesState(Status.FIRING, streak=2, since=9 * H, notified_since=9 * H, last_period=10 * H)
    rev = revise(state, {9 * H: True, 10 * H: True}, [10 * H], rules())  # 10 changed, still anomalous
    assert rev.notices == [] and rev.state is state
    rev = revise(state, {9 * H: True, 10 * H: False}, [10 * H], rules())  # 9 alone still fires
    assert rev.notices == []


def test_a_for_streak_broken_by_a_correction_retracts_and_keeps_the_pending_tail() -> None:
    state = SeriesState(Status.FIRING, streak=3, since=8 * H, notified_since=8 * H, last_period=10 * H)
    rev = revise(state, {8 * H: False, 9 * H: True, 10 * H: True}, [8 * H], rules(consecutive_anomalies=3))
    assert rev.revised == "retracted"
    assert rev.state.status is Status.PENDING and rev.state.streak == 2 and rev.state.since == 9 * H


def test_an_episode_older_than_the_kept_periods_is_never_retracted() -> None:
    state = SeriesState(Status.FIRING, since=5 * H, notified_since=5 * H, last_period=10 * H)
    assert revise(state, {9 * H: False, 10 * H: False}, [10 * H], rules()).notices == []


def test_an_anomaly_that_appears_late_fires_marked_late() -> None:
    ok = SeriesState(last_period=11 * H)
    rev = revise(ok, {9 * H: False, 10 * H: True, 11 * H: False}, [10 * H], rules())
    assert rev.notices == [Notice("firing", 10 * H)] and rev.revised == "late" and rev.reason == LATE
    assert rev.state.status is Status.FIRING and rev.state.notified_since == 10 * H
    # Hour 11 was normal: with clear_consecutive 2 one more normal hour resolves it.
    rev2 = revise(ok, {9 * H: False, 10 * H: True, 11 * H: False}, [10 * H], rules(clear_consecutive=2))
    assert rev2.state.clear_streak == 1


def test_late_respects_the_streak_silences_and_flapping() -> None:
    ok = SeriesState(last_period=11 * H)
    verdicts = {10 * H: True, 11 * H: False}
    assert revise(ok, verdicts, [10 * H], rules(consecutive_anomalies=2)).notices == []
    assert revise(ok, verdicts, [10 * H], rules(), may_fire=False).notices == []
    flapping = SeriesState(last_period=11 * H, flapping_since=5 * H)
    assert revise(flapping, verdicts, [10 * H], rules()).notices == []
    # an unchanged anomalous period does not fire late: only a changed one
    assert revise(ok, verdicts, [11 * H], rules()).notices == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False), (0, False), (1, True), (True, True), (False, False), ("", False),
        ("false", False), ("0", False), ("yes", True), ("2026-01-01 01:00:00", True),
        ("2026-01-01 00:59:59", False), (datetime(2026, 1, 1, 1), True), ("2026-01-01T01:00:00+01:00", False),
    ],
)  # fmt: skip
def test_complete_when_reads_a_watermark_or_a_truthy_value(value: object, expected: bool) -> None:
    finish = int(datetime.fromisoformat("2026-01-01T01:00:00+00:00").timestamp())
    assert complete(value, finish, "UTC") is expected


def test_two_reads_agree_within_the_relative_tolerance() -> None:
    assert agree({"": 100.0}, {"": 100.5}, 0.01)
    assert not agree({"": 70.0}, {"": 100.0}, 0.01)
    assert not agree({"a": 1.0}, {"a": 1.0, "b": 1.0}, 0.01)  # a series appeared
    assert agree({"": None}, {"": None}, 0.0) and not agree({"": None}, {"": 1.0}, 0.5)


def _load(tmp_path: Path, collector: str, completeness: str) -> list[str]:
    write(
        tmp_path / "metrics" / "m.yaml", f"name: m\ncollector:\n{collector}\ncompleteness:\n{completeness}\n"
    )
    result = load_metrics([tmp_path / "metrics"], None, env={})
    return [str(i) for issues in result.errors.values() for i in issues]


SQL = "  type: sqlite\n  params: {database: /tmp/x.db, query: 'SELECT 1 AS value'}"


def test_a_complete_when_template_is_checked_like_the_query_attack(tmp_path: Path) -> None:
    """A user-supplied template: the same sandbox and render budget as the collector's query."""
    (issue,) = _load(tmp_path, SQL, "  complete_when: \"{{ ''.__class__.__mro__ }}\"")
    assert "m.yaml:6: completeness.complete_when: template does something" in issue
    (issue,) = _load(tmp_path, SQL, '  complete_when: "{% for i in range(10**9) %}x{% endfor %}"')
    assert "completeness.complete_when" in issue
    http = "  type: http\n  params: {url: 'http://127.0.0.1:1/x'}"
    (issue,) = _load(tmp_path, http, "  complete_when: SELECT 1")
    assert "needs a source with a `query`" in issue
    (issue,) = _load(tmp_path, SQL, "  tolerance: 0.1")
    assert "needs `complete_when`, `settle` or `recheck`" in issue
    assert (
        _load(tmp_path, SQL, "  complete_when: \"SELECT 1 WHERE '{{ period_finish }}' > ''\"\n  recheck: 2h")
        == []
    )

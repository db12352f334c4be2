"""The overview says beside each metric's state whether it judges (issue 28): warming up with
its periods loaded, a failed history load, no data in the source, a cold start, or how many of
a many-series metric's series judge. Rendered as the daemon and a `workers:` supervisor do."""

from __future__ import annotations

import html
import re
from typing import Any

from detectkd.http.paging import page
from detectkd.ui import pages
from detectkd.workers.merge import merge_api


def overview(*entries: dict[str, Any]) -> str:
    base = {"file": "f", "state": "ok", "last_value": None}
    metrics = [{"name": f"m{i}", **base, **e} for i, e in enumerate(entries)]
    return pages.render(
        "overview.html",
        page=page(metrics, len(metrics), 0, 100),
        counts={},
        states=pages.STATES,
        filters={"name": "", "tag": "", "state": ""},
        reload={},
        running=len(metrics),
        outbox={"pending": 0, "dead": 0},
        lag=0.0,
    )


def notes(text: str) -> list[tuple[str, str]]:
    """(words, tooltip) of each metric's judging note."""
    found = re.findall(r'<span class="warming" title="([^"]*)">([^<]*)</span>', text)
    return [(html.unescape(words), html.unescape(title)) for title, words in found]


def test_each_reason_not_to_judge_is_said_beside_the_state_with_the_api_reason_as_tooltip() -> None:
    warming = "warming up: its history is loading in the background (40 of 100 periods, 40%)"
    failed = "warming up: ... its last batch failed: no such table; retried at 2026-12-07T07:00:00"
    text = overview(
        {"judging": True, "judging_series": {"judging": 1, "cold": 0, "no_data": 0, "total": 1}},
        {"judging": False, "not_judging": warming, "history": {"progress": 0.4, "periods": [40, 100]}},
        {"judging": False, "not_judging": failed, "history": {"progress": 0.0, "error": "no such table"}},
        {"judging": False, "not_judging": "no data in the source for the newest period"},
        {"judging": False, "not_judging": "cold start: fewer than 10 points (4 of 10 points stored, ...)"},
        {
            "judging": True,
            "judging_series": {"judging": 3, "cold": 1, "no_data": 0, "total": 4},
            "series_not_judging": {"s=new": "cold start: fewer than 10 points (3 of 10 points stored)"},
        },
        {"judging": None},  # not run yet: nothing said
    )
    assert notes(text) == [
        ("not judging yet (40 of 100 periods of its history loaded)", warming),
        ("not judging: loading its history failed", failed),
        ("not judging: no data in the source", "no data in the source for the newest period"),
        ("not judging yet", "cold start: fewer than 10 points (4 of 10 points stored, ...)"),
        ("judging 3 of 4 series", "s=new: cold start: fewer than 10 points (3 of 10 points stored)"),
    ]


def test_a_metric_that_stopped_loading_late_series_says_its_new_series_start_cold() -> None:
    churn = "off: series churn (new series within 10 h of a load, 3 times in a row)"
    text = overview(
        {"judging": True, "late_series": churn},
        {"judging": True, "late_series": "off: schedule.late_series_warmup is false"},  # chosen: not said
    )
    assert notes(text) == [("new series start cold", churn)]


def test_a_workers_supervisor_merges_the_workers_entries_and_says_the_same() -> None:
    cold = {"name": "b", "judging": False, "not_judging": "no data in the source for the newest period"}
    part = {
        "name": "a",
        "judging": True,
        "judging_series": {"judging": 1, "cold": 1, "no_data": 0, "total": 2},
        "series_not_judging": {"s=x": "cold start: fewer than 10 points"},
    }
    merged = merge_api([{"metrics": [cold], "total": 1}, {"metrics": [part], "total": 1}])
    assert [m["name"] for m in merged["metrics"]] == ["a", "b"]
    assert [pages.judging_note(m) for m in merged["metrics"]] == [
        ("judging 1 of 2 series", "s=x: cold start: fewer than 10 points"),
        ("not judging: no data in the source", "no data in the source for the newest period"),
    ]

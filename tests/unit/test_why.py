"""A FIRING's why in words (alerting.why): the baseline, the change, the rarity, the precedent."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from datetime import timedelta
from zoneinfo import ZoneInfo

from detectkd.alerting.alert import Alert, AlertStatus
from detectkd.alerting.channels import alertmanager
from detectkd.alerting.message import MessageRenderer, default_text
from detectkd.alerting.why import basis, change, precedent, rarity
from detectkd.templating import compile_message_template
from tests.support.alerts import make_alert

UTC_Z = ZoneInfo("UTC")


def test_each_kind_says_what_it_compared_with() -> None:
    day = timedelta(days=30)
    assert basis("mad", {"window_size": day}, 600) == "the median of the last 30d"
    seasonal = {"window_size": day, "seasonal_features": ["hour_of_day"]}
    assert basis("mad", seasonal, 600) == "the median of the last 30d at the same hour of the day"
    assert basis("zscore", {"window_size": 100}, 60) == "the mean of the last 100 points (100m)"
    assert basis("seasonal", {"window_size": timedelta(days=21), "season": "day_of_week"}, 3600) == (
        "the median of this day of the week over the last 3w"
    )
    assert str(basis("auto", {"window": 400, "cycles": 3}, 60)).startswith("the level of the last 400 points")
    assert basis("change", {"compare_to": "last_week"}, 60) == "the same period a week earlier"
    assert basis("threshold", {}, 60) == "a fixed threshold"
    assert basis("flatline", {}, 60) is None  # nothing to compare with: no line


def test_the_change_in_words() -> None:
    assert change(820, 1240) == "value 820, 34 % below expected 1,240"
    assert change(1302, 1240) == "value 1,302, 5.0 % above expected 1,240"
    assert change(0.5, 0.25) == "value 0.5, 100 % above expected 0.25"
    assert change(3, 0) == "value 3, above expected 0"
    assert change(7, 7) == "value 7, as expected"
    assert change(None, 7) is None and change(7, None) is None and change(math.nan, 1) is None


def test_rarity_is_rounded_down_and_names_its_span() -> None:
    assert rarity(997, 1000, 14) == ("beyond 99.7 % of its deviations in the last 14 days", 99.7)
    assert rarity(9979, 10000, 14) == (
        "beyond 99.7 % of its deviations in the last 14 days",
        99.7,
    )  # not 99.8
    assert rarity(999, 1000, 3) == ("beyond 99.9 % of its deviations in the last 3 days", 99.9)
    assert rarity(150, 150, 1) == ("larger than any of its deviations in the last day", 100.0)
    assert rarity(60, 120, 2) == ("beyond 50 % of its deviations in the last 2 days", 50.0)
    assert rarity(5, 0, 14) is None and rarity(5, 10, 0) is None and rarity(11, 10, 3) is None


def test_precedent_with_and_without_its_label() -> None:
    at = 1_793_624_400  # 2026-11-02 13:00 UTC
    berlin = ZoneInfo("Europe/Berlin")
    assert precedent(at, "incident", berlin) == "last similar: 2026-11-02 14:00, marked real incident"
    assert precedent(at, "false_alarm", UTC_Z) == "last similar: 2026-11-02 13:00, marked false alarm"
    assert precedent(at, None, UTC_Z) == "last similar: 2026-11-02 13:00, not labelled"
    assert precedent(at, None, UTC_Z, known=False) == "last similar: 2026-11-02 13:00"


WHY = {
    "basis": "the median of the last 30d",
    "change": "value 900, 800 % above expected 100",
    "rarity": "beyond 99.7 % of its deviations in the last 14 days",
    "rarity_percent": 99.7,
    "rarity_days": 14,
    "precedent": "last similar: 2026-11-02 14:00, marked real incident",
    "precedent_at": "2026-11-02T13:00:00Z",
    "precedent_label": "incident",
}


def firing(extra: Mapping[str, object], status: AlertStatus = "firing") -> Alert:
    t = 1_795_000_200
    return make_alert(
        status=status,
        period=t,
        started_at=t,
        value=900.0,
        lower=40.0,
        upper=160.0,
        score=0.9,
        extra=dict(extra),
    )


def test_the_firing_text_says_why_in_one_line_and_the_resolved_does_not() -> None:
    text = default_text(firing(WHY))
    assert (
        "\nWhy: value 900, 800 % above expected 100; beyond 99.7 % of its deviations in the last 14 days; "
        "last similar: 2026-11-02 14:00, marked real incident\n" in text
    )
    assert "Why:" not in default_text(firing(WHY, "resolved"))
    assert "\nWhy: value 900, 800 % above expected 100\n" in default_text(firing({"change": WHY["change"]}))
    assert "Why:" not in default_text(firing({}))


def test_the_why_line_is_escaped_for_its_channel() -> None:
    hostile = {"change": "<b>&</b>", "precedent": "*bold* <!channel>"}
    text = MessageRenderer(None, lambda x: html.escape(str(x))).render(firing(hostile))
    assert "Why: &lt;b&gt;&amp;&lt;/b&gt;; *bold* &lt;!channel&gt;" in text


def test_templates_alertmanager_and_the_webhook_get_the_fields() -> None:
    alert = firing(WHY)
    template = compile_message_template(
        "{{ change }} | {{ rarity }} | {{ precedent }} | {{ extra.rarity_percent }}"
    )
    assert MessageRenderer(template).render(alert) == (
        f"{WHY['change']} | {WHY['rarity']} | {WHY['precedent']} | 99.7"
    )
    notes = alertmanager.payload(alert, alertmanager.Params(url="http://am:9093"))[0]["annotations"]
    assert {k: notes[k] for k in WHY} == {k: str(v) for k, v in WHY.items()}
    assert Alert.from_json(alert.to_json()).extra == WHY  # what the outbox keeps and the webhook sends

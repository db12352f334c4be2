"""An `Alert` built by hand, for the tests of channels, messages and the outbox: a FIRING of
`orders` at 250 against an expected 100 (band 80-120, score 0.93, up, by `mad`) in the
10-minute period at 1200 of an episode that started at 600. A test names what it relies on."""

from __future__ import annotations

from typing import Any

from detectkd.alerting.alert import Alert, AlertStatus


def make_alert(
    series: str = "",
    *,
    status: AlertStatus = "firing",
    period: int = 1200,
    started_at: int = 600,
    **fields: Any,
) -> Alert:
    """`fields`: any other of `Alert`'s, over the defaults above (`labels` default: none)."""
    values: dict[str, Any] = {
        "metric": "orders",
        "labels": {},
        "value": 250.0,
        "expected": 100.0,
        "lower": 80.0,
        "upper": 120.0,
        "score": 0.93,
        "direction": "up",
        "detector": "mad",
        "interval_seconds": 600,
    }
    return Alert(series=series, status=status, period=period, started_at=started_at, **(values | fields))


def make_nodata(series: str = "", **fields: Any) -> Alert:
    """A NO DATA notification: `make_alert`'s, with no value, band, score nor detector."""
    gone: dict[str, Any] = dict.fromkeys(
        ("value", "expected", "lower", "upper", "score", "direction", "detector")
    )
    return make_alert(series, **(gone | {"kind": "nodata"} | fields))

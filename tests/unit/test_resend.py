"""Re-sending active alerts to Alertmanager (`alerting.resend`), as Prometheus does: when,
to whom, with which endsAt; a removed metric's alerts resolve."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from detectkd.alerting import resend
from detectkd.alerting.alert import Alert
from detectkd.alerting.channels import alertmanager
from detectkd.alerting.state import Notice, SeriesState, Status
from detectkd.collectors.points import Point
from detectkd.runtime.judge import judge
from detectkd.runtime.unjudged import resolve_removed
from tests.support.alerts import make_alert
from tests.support.judging import STEP, T0, setup

METRIC = """\
name: orders
schedule: {{interval: {interval}}}
collector:
  type: sqlite
  params: {{database: /nonexistent.db, query: "SELECT 1 AS value"}}
detector:
  type: mad
  params: {{window_size: 100, n_sigma: 4, use_weighted: false, min_samples: 20}}
alerters:
  - {{type: webhook, params: {{url: 'http://a.example/'}}}}
  - {{type: alertmanager, params: {{url: 'http://am.example:9093', resend_delay: {delay}}}}}
"""

FIRING = SeriesState(Status.FIRING, 3, T0, T0, T0, T0, 0, T0)


def test_a_resend_every_is_the_shortest_delay_but_at_least_the_interval(tmp_path: Path) -> None:
    _, ctx = setup(tmp_path, METRIC.format(interval="10m", delay="1m"))
    assert ctx.resend_every == 600  # a run is when it can re-send
    _, ctx = setup(tmp_path, METRIC.format(interval="10s", delay="1m"))
    assert ctx.resend_every == 60
    _, ctx = setup(tmp_path)  # no Alertmanager alerter: nothing is re-sent
    assert ctx.resend_every == 0


def test_due_counts_periods_from_the_last_send() -> None:
    state, owed = resend.due(FIRING, [], T0 + 60, 60)
    assert owed == [Notice("firing", T0)] and state.resent_at == T0 + 60  # never sent: now
    state2, owed = resend.due(state, [], T0 + 90, 60)
    assert owed == [] and state2 is state
    _, owed = resend.due(state, [], T0 + 120, 60)
    assert owed == [Notice("firing", T0)]
    # The period that sent the FIRING is the send; nothing active clears the mark.
    fired, owed = resend.due(SeriesState(Status.FIRING), [Notice("firing", T0)], T0, 60)
    assert owed == [] and fired.resent_at == T0
    ok, owed = resend.due(SeriesState(Status.OK, resent_at=T0), [], T0 + 600, 60)
    assert owed == [] and ok.resent_at is None
    both = SeriesState(Status.NODATA, nodata_notified=T0, flap_notified=T0 - 60)
    assert [n.kind for n in resend.active(both)] == ["nodata", "flapping"]


def test_a_live_run_re_sends_to_alertmanager_only_and_a_replay_never(tmp_path: Path) -> None:
    memory, ctx = setup(tmp_path, METRIC.format(interval="10m", delay="1m"))
    am = [a.id for a in ctx.spec.alerters if a.type == "alertmanager"]
    points = [Point("", T0 + i * STEP, 100.0 + i % 5) for i in range(30)] + [Point("", T0 + 30 * STEP, 900.0)]
    out = judge(points, memory, {}, ctx.run(last=T0 + 30 * STEP, notify=True))
    assert [r.channel for r in out.record.outbox] == [a.id for a in ctx.spec.alerters]  # the FIRING
    assert out.states[""].resent_at == T0 + 30 * STEP
    more = [Point("", T0 + 31 * STEP, 950.0)]
    again = judge(more, memory, out.states, ctx.run(last=T0 + 31 * STEP, notify=True))
    assert again.alerts == []  # no new notification ...
    (row,) = again.record.outbox  # ... but a re-send to Alertmanager
    assert row.channel in am and row.key.endswith(f"|am{T0 + 31 * STEP}")
    sent = Alert.from_json(row.payload)
    assert (sent.status, sent.started_at, sent.value, sent.resent) == (
        "firing",
        T0 + 30 * STEP,
        950.0,
        T0 + 31 * STEP,
    )
    assert again.record.states[""].resent_at == T0 + 31 * STEP
    memory2, ctx2 = setup(tmp_path, METRIC.format(interval="10m", delay="1m"))
    replay = judge(points + more, memory2, {}, ctx2.run(last=T0 + 31 * STEP, notify=False))
    assert replay.record.outbox == []


def test_endsat_is_four_resend_delays_from_each_post_and_the_source_is_a_label() -> None:
    p = alertmanager.Params(url="http://am:9093", resend_delay=timedelta(seconds=30))
    alert = make_alert(
        "region=eu",
        labels={"region": "eu"},
        period=T0,
        started_at=T0,
        value=900.0,
        lower=90.0,
        upper=110.0,
        score=0.9,
        interval_seconds=10,
        source="sqlite:/src.db",
    )
    (body,) = alertmanager.payload(alert, p, now=T0 + 5)
    assert body["endsAt"] == alertmanager._rfc3339(T0 + 5 + 4 * 30)
    assert body["labels"]["source"] == "sqlite:/src.db" and body["labels"]["region"] == "eu"
    slow = Alert(**{**json.loads(alert.to_json()), "interval_seconds": 3600, "tags": ()})
    (body,) = alertmanager.payload(slow, p, now=T0)
    assert body["endsAt"] == alertmanager._rfc3339(T0 + 4 * 3600)  # two missed runs and more
    fixed = alertmanager.Params(url="http://am:9093", ends_after=timedelta(hours=1))
    assert alertmanager.payload(alert, fixed, now=T0)[0]["endsAt"] == alertmanager._rfc3339(T0 + 3600)
    resolved = Alert(**{**json.loads(alert.to_json()), "status": "resolved", "tags": ()})
    assert alertmanager.payload(resolved, p, now=T0 + 999)[0]["endsAt"] == alertmanager._rfc3339(T0 + 10)
    own = Alert(**{**json.loads(alert.to_json()), "labels": {"source": "eu-1"}, "tags": ()})
    assert alertmanager.payload(own, p)[0]["labels"]["source"] == "eu-1"  # the series' own wins


def test_a_removed_metric_resolves_every_active_alert_and_forgets_those_series(tmp_path: Path) -> None:
    _, ctx = setup(tmp_path, METRIC.format(interval="10m", delay="1m"))
    states = {
        "a": FIRING,
        "b": SeriesState(Status.NODATA, last_period=T0, nodata_notified=T0 - STEP),
        "c": SeriesState(Status.OK, last_period=T0),
    }
    record = resolve_removed(states, ctx, T0 + 100)
    alerts = [Alert.from_json(r.payload) for r in record.outbox]
    assert [(a.series, a.kind, a.status, a.started_at) for a in alerts[::2]] == [
        ("a", "anomaly", "resolved", T0),
        ("b", "nodata", "resolved", T0 - STEP),
    ]
    assert len(record.outbox) == 2 * len(ctx.spec.alerters)  # to every alerter
    assert record.forget == ["a", "b"] and not record.save_points


async def test_errors_and_source_down_are_re_sent_to_alertmanager_alerters_only(tmp_path: Path) -> None:
    from detectkd.alerting.outage import Outages
    from detectkd.alerting.silences import Silences
    from detectkd.runtime.outage_alerts import send_due
    from detectkd.storage.memory import MemoryStore

    specs = {}
    for name in ("a", "b", "c"):
        _, ctx = setup(
            tmp_path, METRIC.format(interval="10m", delay="1m").replace("name: orders", f"name: {name}"), name
        )
        specs[name] = ctx.spec
    store = MemoryStore()
    await store.open()
    o = Outages(group_wait=0, min_metrics=2)
    o.track("a", "db-1", notify=True, error_runs=1)  # alone on its source: an ERROR
    for name in ("b", "c"):  # together: a SOURCE DOWN
        o.track(name, "db-2", notify=True, error_runs=1)
    for name in specs:
        o.observe(name, False, T0, "connection refused")

    async def rows() -> list[tuple[str, str, str]]:
        return sorted((r.metric, r.series, r.key) for r in await store.outbox_pending())

    def labels(m: str, s: str) -> dict[str, str]:
        return {"metric": m}

    assert await send_due(o, Silences(), store, specs, labels, T0) == 2  # the FIRINGs
    fired = await rows()
    assert len(fired) == 2 + 2  # ERROR to a's two alerters; SOURCE DOWN once per distinct channel of b, c
    assert await send_due(o, Silences(), store, specs, labels, T0 + 30) == 0  # not due yet
    assert await send_due(o, Silences(), store, specs, labels, T0 + 60) == 2  # both re-sent
    resent = [r for r in await rows() if r not in fired]
    assert sorted(k.rsplit("|am", 1)[1].split("|")[0] for _, _, k in resent) == [str(T0 + 60)] * 2
    am = {a.id for s in specs.values() for a in s.alerters if a.type == "alertmanager"}
    assert {r.channel for r in await store.outbox_pending() if "|am" in r.key} == am  # not the webhook
    err = next(
        Alert.from_json(r.payload) for r in await store.outbox_pending() if r.metric == "a" and "|am" in r.key
    )
    assert (err.kind, err.source, err.extra["error"]) == ("error", "db-1", "connection refused")
    assert await send_due(o, Silences(), store, specs, labels, T0 + 120, resend=False) == 0  # a standby
    await store.close()

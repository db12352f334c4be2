"""Delivery through the outbox to a real HTTP receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from detectkd.alerting.alert import Alert
from detectkd.alerting.channels import chat, webhook
from detectkd.alerting.channels.base import Channel
from detectkd.alerting.channels.common import ChatParams
from detectkd.alerting.outbox import Dispatcher, backoff
from detectkd.resources import Resources
from detectkd.storage.base import NewOutboxItem, RunRecord
from detectkd.storage.sqlite import SqliteStore
from tests.conftest import Receiver


def alert(status: str = "firing", series: str = "region=eu", started: int = 600) -> Alert:
    return Alert(
        metric="orders", series=series, labels={"region": series.split("=")[-1]}, status=status,  # type: ignore[arg-type]
        period=started + 600, started_at=started, value=250.0, expected=100.0, lower=80.0,
        upper=120.0, score=0.93, direction="up", detector="mad", interval_seconds=600,
    )  # fmt: skip


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, Resources]]:
    store = SqliteStore(tmp_path / "dtk.db")
    await store.open()
    resources = Resources()
    yield store, resources
    await resources.close()
    await store.close()


async def enqueue(store: SqliteStore, *alerts: Alert) -> None:
    await store.commit(
        RunRecord("orders", outbox=[NewOutboxItem(a.key, a.metric, a.series, 0, a.to_json()) for a in alerts])
    )


async def test_webhook_receives_the_documented_payload(
    env: tuple[SqliteStore, Resources], receiver: Receiver
) -> None:
    store, resources = env
    channel = webhook.build(webhook.Params(url=receiver.url, headers={"X-Team": "data"}), resources)
    await enqueue(store, alert())
    await Dispatcher(store, lambda m, i: channel).deliver_due()
    (body,) = receiver.received
    assert body["status"] == "firing" and body["metric"] == "orders"
    assert body["labels"] == {"region": "eu"} and body["value"] == 250.0
    assert body["key"] == "orders|region=eu|firing|600"
    assert body["period"] == "1970-01-01T00:20:00Z"
    assert "[FIRING] orders {region=eu}" in body["message"]
    assert receiver.headers[0]["X-Team"] == "data"
    assert receiver.headers[0]["Idempotency-Key"] == body["key"]
    assert await store.outbox_pending() == []


async def test_receiver_down_then_back_delivers_everything_once_in_order(
    env: tuple[SqliteStore, Resources], receiver: Receiver
) -> None:
    store, resources = env
    channel = webhook.build(webhook.Params(url=receiver.url), resources)
    d = Dispatcher(store, lambda m, i: channel)
    await enqueue(store, alert("firing"), alert("resolved"))
    receiver.fail_with = 503
    await d.deliver_due()
    assert receiver.received == [] and receiver.attempts == 1  # the RESOLVED waited behind its FIRING
    (first, _second) = await store.outbox_pending()
    assert first.attempts == 1 and "503" in (first.last_error or "")
    receiver.fail_with = None
    # Pretend the back-off has passed.
    await store.outbox_retry(first.id, first.last_error or "", 0, dead=False)
    await d.deliver_due()
    await d.deliver_due()
    assert [b["status"] for b in receiver.received] == ["firing", "resolved"]
    assert await store.outbox_pending() == []


async def test_a_permanent_error_becomes_a_dead_letter(
    env: tuple[SqliteStore, Resources], receiver: Receiver
) -> None:
    store, resources = env
    channel = webhook.build(webhook.Params(url=receiver.url), resources)
    receiver.fail_with = 400
    await enqueue(store, alert())
    await Dispatcher(store, lambda m, i: channel).deliver_due()
    stats = await store.outbox_stats()
    assert (stats.pending, stats.dead) == (0, 1)


async def test_refused_connection_is_retried_not_lost(env: tuple[SqliteStore, Resources]) -> None:
    store, resources = env
    channel = webhook.build(webhook.Params(url="http://127.0.0.1:9/hook"), resources)
    await enqueue(store, alert())
    await Dispatcher(store, lambda m, i: channel).deliver_due()
    (item,) = await store.outbox_pending()
    assert item.attempts == 1 and "cannot reach 127.0.0.1" in (item.last_error or "")


async def test_slack_and_mattermost_payloads_escape_user_data(
    env: tuple[SqliteStore, Resources], receiver: Receiver
) -> None:
    store, resources = env
    params = ChatParams(webhook_url=receiver.url, channel="#alerts", username="dtk")
    slack = chat.build_slack(params, resources)
    mm = chat.build_mattermost(params, resources)
    nasty = alert(series="host=<!channel> *boom* @all")
    channels: dict[int, Channel] = {0: slack, 1: mm}
    await store.commit(
        RunRecord(
            "orders",
            outbox=[NewOutboxItem(nasty.key, "orders", nasty.series, i, nasty.to_json()) for i in (0, 1)],
        )
    )
    await Dispatcher(store, lambda m, i: channels[i]).deliver_due()
    by_text = sorted(receiver.received, key=lambda b: b["text"])
    assert all(b["channel"] == "#alerts" and b["username"] == "dtk" for b in by_text)
    texts = " ".join(b["text"] for b in by_text)
    assert "<!channel>" not in texts and "&lt;!channel&gt;" in texts
    assert "\\*boom\\*" in texts and "@\u200ball" in texts


async def test_message_template_uses_detectk_variables(
    env: tuple[SqliteStore, Resources], receiver: Receiver
) -> None:
    store, resources = env
    template = (
        "{{ metric_name }} {{ value | round(1) }} in [{{ lower_bound }}, {{ upper_bound }}] {{ status }}"
    )
    channel = chat.build_mattermost(
        ChatParams(webhook_url=receiver.url, message_template=template), resources
    )
    await enqueue(store, alert())
    await Dispatcher(store, lambda m, i: channel).deliver_due()
    assert receiver.received[0]["text"] == "orders 250.0 in [80.0, 120.0] firing"


async def test_dispatcher_loop_wakes_on_new_alerts(
    env: tuple[SqliteStore, Resources], receiver: Receiver
) -> None:
    store, resources = env
    channel = webhook.build(webhook.Params(url=receiver.url), resources)
    d = Dispatcher(store, lambda m, i: channel)
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    await enqueue(store, alert())
    d.wake()
    await receiver.wait_for(lambda b: b["status"] == "firing", timeout=10)
    stop.set()
    await asyncio.wait_for(task, 10)


def test_backoff_grows_and_is_capped() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff(n, rng) for n in range(12)]
    assert 1.6 <= delays[0] <= 2.4
    assert delays[3] > delays[1]
    assert max(delays) <= 360

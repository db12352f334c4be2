"""Delivery through the outbox to a real HTTP receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest

from detectkd.alerting.alert import Alert, AlertStatus
from detectkd.alerting.channels import chat, webhook
from detectkd.alerting.channels.base import Channel
from detectkd.alerting.channels.common import ChatParams
from detectkd.resources import Resources
from detectkd.runtime.outbox import Dispatcher, backoff
from detectkd.storage.base import NewOutboxItem, RunRecord
from detectkd.storage.sqlite import SqliteStore
from tests.support.alerts import make_alert, make_nodata
from tests.support.http import Receiver, http_server


def alert(status: AlertStatus = "firing", series: str = "region=eu", started: int = 600) -> Alert:
    labels = {"region": series.split("=")[-1]}
    return make_alert(series, status=status, period=started + 600, started_at=started, labels=labels)


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
        RunRecord(
            "orders",
            outbox=[NewOutboxItem(a.key, a.metric, a.series, "webhook:0", a.to_json()) for a in alerts],
        )
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
    channels: dict[str, Channel] = {"slack:a": slack, "mattermost:b": mm}
    await store.commit(
        RunRecord(
            "orders",
            outbox=[NewOutboxItem(nasty.key, "orders", nasty.series, i, nasty.to_json()) for i in channels],
        )
    )
    await Dispatcher(store, lambda m, i: channels[i]).deliver_due()
    slack_body = next(b for b in receiver.received if "blocks" in b)
    mm_body = next(b for b in receiver.received if "attachments" in b)
    assert all(b["channel"] == "#alerts" and b["username"] == "dtk" for b in receiver.received)
    slack_text = slack_body["blocks"][0]["text"]["text"]
    assert slack_body["text"] == "FIRING: orders"  # the notification fallback
    assert "<!channel>" not in slack_text and "&lt;!channel&gt;" in slack_text
    attachment = mm_body["attachments"][0]
    assert attachment["color"] == "#d0312d" and attachment["fallback"] == "FIRING: orders"
    assert "\\*boom\\*" in attachment["text"] and "@\u200ball" in attachment["text"]


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
    assert receiver.received[0]["attachments"][0]["text"] == "orders 250.0 in [80.0, 120.0] firing"


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


async def test_the_delivery_loop_outlives_an_error_that_is_not_a_store_failure(
    env: tuple[SqliteStore, Resources], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only `StorageError` was caught: anything else (a driver's `InternalClientError`) ended
    the loop, silently, and nothing was delivered again."""
    store, resources = env
    channel = webhook.build(webhook.Params(url=receiver.url), resources)
    claim, claims = store.outbox_claim, 0

    async def failing_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal claims
        claims += 1
        if claims == 1:
            raise RuntimeError("cannot switch to state 15; another operation (2) is in progress")
        return await claim(*args, **kwargs)

    monkeypatch.setattr(store, "outbox_claim", failing_once)
    await enqueue(store, alert())
    d = Dispatcher(store, lambda m, i: channel)
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    await receiver.wait_for(lambda b: b["status"] == "firing", timeout=15)  # tried again 5 s later
    assert claims >= 2
    stop.set()
    await asyncio.wait_for(task, 10)


def test_backoff_grows_and_is_capped() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff(n, rng) for n in range(12)]
    assert 1.6 <= delays[0] <= 2.4
    assert delays[3] > delays[1]
    assert max(delays) <= 360


async def test_webhook_signature_is_hmac_sha256_of_the_exact_body(env: tuple[SqliteStore, Resources]) -> None:
    import hashlib
    import hmac

    from aiohttp import web

    seen: list[tuple[bytes, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append((await request.read(), request.headers.get("X-Detectk-Signature", "")))
        return web.Response(text="ok")

    store, resources = env
    async with http_server(handle) as base:
        channel = webhook.build(webhook.Params(url=f"{base}/hook", secret="s3cret"), resources)
        await enqueue(store, alert())
        await Dispatcher(store, lambda m, i: channel).deliver_due()
    ((body, signature),) = seen
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"


async def test_alertmanager_v2_fan_out_and_retry_until_every_url_accepts(
    env: tuple[SqliteStore, Resources], receiver: Receiver
) -> None:
    from detectkd.alerting.channels import alertmanager
    from tests.support.http import Receiver as Rec

    store, resources = env
    second = Rec(url="")
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        second.attempts += 1
        if second.fail_with:
            return web.Response(status=second.fail_with)
        second.received.append({"path": request.path, "body": await request.json()})
        return web.Response(text="ok")

    async with http_server(handle) as base_two:
        base_one = receiver.url.rsplit("/", 1)[0]
        params = alertmanager.Params(urls=[base_one, base_two], severity="critical", labels={"team": "data"})
        channel = alertmanager.build(params, resources)
        d = Dispatcher(store, lambda m, i: channel)
        second.fail_with = 503
        import dataclasses

        nasty = dataclasses.replace(alert(series="host.name=web-1"), labels={"host.name": "web-1"})
        await enqueue(store, nasty)
        await d.deliver_due()
        assert len(receiver.received) == 1 and second.attempts == 1
        (item,) = await store.outbox_pending()
        assert item.attempts == 1  # one Alertmanager down: retried, not lost
        second.fail_with = None
        await store.outbox_retry(item.id, "", 0, dead=False)
        await d.deliver_due()
    assert await store.outbox_pending() == []
    (sent,) = second.received[0]["body"]
    assert second.received[0]["path"] == "/api/v2/alerts"
    assert sent["labels"] == {
        "alertname": "orders",
        "metric": "orders",
        "severity": "critical",
        "team": "data",
        "host_name": "web-1",
    }
    assert sent["annotations"]["value"] == "250" and sent["annotations"]["expected"] == "100"
    assert sent["startsAt"] == "1970-01-01T00:10:00Z"
    # endsAt counts from the post (two missed re-sends and more), not from the period.
    horizon = 4 * max(60, nasty.interval_seconds)
    ends = datetime.fromisoformat(sent["endsAt"].replace("Z", "+00:00")).timestamp()
    assert 0 <= time.time() + horizon - ends < 30
    again, first = (cast(Any, receiver.received[k])[0] for k in (1, 0))  # Alertmanager's body: a list
    assert {k: v for k, v in again.items() if k != "endsAt"} == {
        k: v for k, v in first.items() if k != "endsAt"
    }
    assert again["endsAt"] >= first["endsAt"]  # the first Alertmanager got the same alert again, extended


async def test_alertmanager_resolved_sets_ends_at(env: tuple[SqliteStore, Resources]) -> None:
    from detectkd.alerting.channels import alertmanager

    (body,) = alertmanager.payload(alert("resolved"), alertmanager.Params(url="http://am:9093"))
    assert body["endsAt"] == "1970-01-01T00:30:00Z"  # end of the period that resolved it


async def test_telegram_bot_api_with_html_escaping(
    env: tuple[SqliteStore, Resources], receiver: Receiver
) -> None:
    from detectkd.alerting.channels import telegram

    store, resources = env
    base = receiver.url.rsplit("/", 1)[0]
    channel = telegram.build(telegram.Params(bot_token="123:abc", chat_id=-100, base_url=base), resources)
    await enqueue(store, alert(series="host=<b>x</b>"))
    await Dispatcher(store, lambda m, i: channel).deliver_due()
    (body,) = receiver.received
    assert body["chat_id"] == -100 and body["parse_mode"] == "HTML"
    assert "&lt;b&gt;x&lt;/b&gt;" in body["text"] and "<b>x</b>" not in body["text"]


async def test_nodata_notifications_are_their_own_alerts_on_every_channel(
    env: tuple[SqliteStore, Resources], receiver: Receiver
) -> None:
    from detectkd.alerting.channels import alertmanager

    store, resources = env
    base = make_nodata("region=eu", labels={"region": "eu"}, timezone="Europe/Berlin")
    chat_params = ChatParams(webhook_url=receiver.url)
    am_url = receiver.url.rsplit("/", 1)[0]
    channels: dict[str, Channel] = {
        "webhook:a": webhook.build(webhook.Params(url=receiver.url), resources),
        "mattermost:b": chat.build_mattermost(chat_params, resources),
        "alertmanager:c": alertmanager.build(alertmanager.Params(url=am_url), resources),
    }
    items = [NewOutboxItem(base.key, "orders", base.series, i, base.to_json()) for i in channels]
    await store.commit(RunRecord("orders", outbox=items))
    await Dispatcher(store, lambda m, i: channels[i]).deliver_due()
    hook, mm, am = receiver.received
    assert hook["kind"] == "nodata" and hook["key"] == "orders|region=eu|nodata:firing|600"
    assert hook["message"].startswith("[NO DATA] orders {region=eu}\nNo value since 1970-01-01 01:10 CET.")
    attachment = mm["attachments"][0]
    assert attachment["fallback"] == "NO DATA: orders" and attachment["color"] == chat.WARNING_COLOR
    sent: dict[str, Any] = am[0]  # type: ignore[index]
    assert sent["labels"]["kind"] == "nodata"
    assert sent["annotations"]["summary"] == "orders region=eu has no data"
    assert sent["annotations"]["period"] == "1970-01-01 01:20 CET"  # the metric's timezone


async def test_a_receivers_answer_is_kept_short_and_without_secrets(
    env: tuple[SqliteStore, Resources],
) -> None:
    """Issue 13: a receiver echoing the request (URL token, auth header) put secrets and
    megabytes into `last_error` and the logs."""
    from aiohttp import web

    token = "xoxb-very-secret-0123456789"

    async def echo(request: web.Request) -> web.Response:
        body = f"denied {request.url} auth={request.headers.get('Authorization')} " + "x" * 100_000
        return web.Response(status=503, text=body)

    store, resources = env
    async with http_server(echo) as base:
        url = f"{base}/hook?token={token}"
        params = webhook.Params(url=url, headers={"Authorization": f"Bearer {token}"})
        channel = webhook.build(params, resources)
        await enqueue(store, alert())
        await Dispatcher(store, lambda m, i: channel).deliver_due()
    (item,) = await store.outbox_pending()
    error = item.last_error or ""
    assert "HTTP 503" in error and "denied" in error
    assert token not in error and len(error) < 400, error


async def test_a_hanging_receiver_delays_only_its_own_rows(
    env: tuple[SqliteStore, Resources], receiver: Receiver
) -> None:
    """Issue 13: while one receiver hung, deliveries to every other receiver waited for it."""
    from aiohttp import web

    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="ok")

    store, resources = env
    fine = webhook.build(webhook.Params(url=receiver.url), resources)
    async with http_server(hang) as base:
        stuck = webhook.build(webhook.Params(url=f"{base}/hook", timeout="60s"), resources)  # type: ignore[arg-type]
        channels = {"stuck:1": stuck, "fine:1": fine}
        rows = [
            NewOutboxItem(a.key, a.metric, a.series, ch, a.to_json())
            for a in (alert("firing"), alert("resolved"))
            for ch in channels
        ]
        await store.commit(RunRecord("orders", outbox=rows))
        dispatcher = Dispatcher(store, lambda m, c: channels[c])
        stop = asyncio.Event()
        loop = asyncio.create_task(dispatcher.run(stop))
        try:
            # The fine receiver's FIRING, then its RESOLVED (queued behind it), both while the
            # other receiver is still hanging on its FIRING.
            await receiver.wait_for(lambda b: b["status"] == "resolved", timeout=10)
            assert [b["status"] for b in receiver.received] == ["firing", "resolved"]
            assert not release.is_set()
        finally:
            release.set()
            stop.set()
            await loop
        await dispatcher.deliver_due()
    assert await store.outbox_pending() == []  # the stuck one's rows went out once released


async def test_shards_on_one_store_each_send_their_own_rows_at_once(
    env: tuple[SqliteStore, Resources], receiver: Receiver, tmp_path: Path
) -> None:
    """`--shard 0/2` and `1/2` on one store: a shard that claims the other's row hands it
    back at once, without an attempt or a back-off, and never claims it again; the owner
    sends it on its next pass (it used to wait for the failed attempt's back-off)."""
    from detectkd.shard import Shard

    store, resources = env
    other = SqliteStore(tmp_path / "dtk.db")
    await other.open()
    try:
        names = [f"m{i}" for i in range(8)]
        zero, one = Shard(0, 2), Shard(1, 2)
        theirs = next(n for n in names if one.owns(n))
        row = alert()
        row = Alert(**{**row.__dict__, "metric": theirs})
        await store.commit(
            RunRecord(theirs, outbox=[NewOutboxItem(row.key, theirs, row.series, "webhook:0", row.to_json())])
        )
        channel = webhook.build(webhook.Params(url=receiver.url), resources)
        first = Dispatcher(store, lambda m, i: channel if zero.owns(m) else None, owner="zero")
        first.mine = zero.owns
        await first.deliver_due()
        await first.deliver_due()  # not claimed again
        assert receiver.received == []
        (pending,) = await store.outbox_pending()
        assert pending.attempts == 0 and pending.last_error is None
        second = Dispatcher(other, lambda m, i: channel if one.owns(m) else None, owner="one")
        second.mine = one.owns
        await second.deliver_due()
        assert [b["metric"] for b in receiver.received] == [theirs]
        assert await store.outbox_pending() == []
    finally:
        await other.close()

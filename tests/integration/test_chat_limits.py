"""Chat messages fit the service's limit (issue 26, low): a 3.6 KB series key made every Slack
notification a permanent 400 and a dead letter on the first try (and a longer one every
Mattermost and Telegram one). The receivers here refuse what the real services refuse."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from detectkd.alerting.alert import Alert
from detectkd.alerting.channels import chat, telegram
from detectkd.alerting.channels.base import Channel
from detectkd.alerting.channels.common import ChatParams
from detectkd.alerting.channels.limits import fit, fit_telegram_html
from detectkd.resources import Resources
from detectkd.runtime.outbox import Dispatcher
from detectkd.storage.base import NewOutboxItem, RunRecord
from detectkd.storage.sqlite import SqliteStore
from tests.support.alerts import make_alert
from tests.support.http import http_server

LONG_SERIES = "path=" + "/x&y<z>*_" * 1200  # 10.8 KB, with characters every channel escapes


def long_alert(series: str = LONG_SERIES) -> Alert:
    return make_alert(series, labels={"path": series[5:]})


class _TelegramHTML(HTMLParser):
    """Telegram's HTML mode: a few tags, each closed; the length is that of the text."""

    ALLOWED = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in self.ALLOWED:
            raise ValueError(f"Unsupported start tag {tag!r}")
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            raise ValueError(f"Can't find end tag corresponding to start tag {tag!r}")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def refusal(body: dict[str, Any]) -> str | None:
    """What Slack, Mattermost or Telegram would answer 400 for."""
    if "blocks" in body:
        text = body["blocks"][0]["text"]["text"]
        return "invalid_blocks" if len(text) > 3000 else None
    if "attachments" in body:
        return (
            "Maximum attachments length is 7900 characters"
            if len(body["attachments"][0]["text"]) > 7900
            else None
        )
    parser = _TelegramHTML()
    try:
        parser.feed(body["text"])
        parser.close()
        if parser.open:
            raise ValueError(f"Can't find end tag corresponding to start tag {parser.open[-1]!r}")
    except ValueError as exc:
        return f"Bad Request: can't parse entities: {exc}"
    visible = "".join(parser.text)
    return "Bad Request: message is too long" if len(visible.encode("utf-16-le")) // 2 > 4096 else None


@pytest.fixture
async def strict() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    accepted: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if (reason := refusal(body)) is not None:
            return web.Response(status=400, text=reason)
        accepted.append(body)
        return web.Response(text="ok")

    async with http_server(handle) as base:
        yield base, accepted


async def test_long_messages_are_cut_to_each_service_limit_and_delivered(
    tmp_path: Path, strict: tuple[str, list[dict[str, Any]]]
) -> None:
    base, accepted = strict
    store = SqliteStore(tmp_path / "dtk.db")
    await store.open()
    resources = Resources()
    try:
        params = ChatParams(webhook_url=f"{base}/hook")
        bold = "<b>{{ metric_name }}</b> {{ series }}"
        channels: dict[str, Channel] = {
            "slack:a": chat.build_slack(params, resources),
            "mattermost:b": chat.build_mattermost(params, resources),
            "telegram:c": telegram.build(
                telegram.Params(bot_token="1:x", chat_id=1, base_url=base), resources
            ),
            "telegram:d": telegram.build(
                telegram.Params(bot_token="1:x", chat_id=1, base_url=base, message_template=bold), resources
            ),
        }
        a = long_alert()
        items = [NewOutboxItem(a.key, a.metric, a.series, i, a.to_json()) for i in channels]
        await store.commit(RunRecord("orders", outbox=items))
        await Dispatcher(store, lambda m, i: channels[i]).deliver_due()
        assert await store.outbox_pending() == []  # all four delivered, none dead
        assert len(accepted) == 4
        texts = [
            b["blocks"][0]["text"]["text"]
            if "blocks" in b
            else b["attachments"][0]["text"]
            if "attachments" in b
            else b["text"]
            for b in accepted
        ]
        assert all("[truncated: " in t for t in texts), [t[-80:] for t in texts]
        slack, mm, tg, tg_bold = texts
        assert slack.startswith("[FIRING] orders {path=/x&amp;y&lt;z&gt;*_")
        assert mm.startswith("[FIRING] orders {path=/x&y<z\\>\\*\\_")
        assert tg.startswith("[FIRING] orders {path=/x&amp;y&lt;z&gt;*_")
        assert tg_bold.startswith("orders path=/x&amp;y&lt;z&gt;*_")  # the markup dropped, the text kept
    finally:
        await resources.close()
        await store.close()


def test_a_cut_leaves_no_half_entity_escape_or_link() -> None:
    text = "a" * 2990 + "&amp;&lt;" + "b" * 100
    out = fit(text, 3000)
    assert len(out) <= 3000 and out.endswith("the limit is 3,000]")
    head = out.split("\n…")[0]
    assert not head.endswith(("&", "&a", "&am", "&l", "&lt")) and head.count("&") == head.count(";")
    assert fit("short", 3000) == "short"
    out = fit("c" * 2960 + "\\" * 41 + "d" * 50, 3000)  # an odd run of backslashes cut: no escaped note
    head = out.split("\n…")[0]
    assert (len(head) - len(head.rstrip("\\"))) % 2 == 0
    # Telegram: counted as Telegram counts (UTF-16), markup dropped when cut, never a tag left open.
    emoji = "<b>" + "😀" * 3000 + "</b>"
    out = fit_telegram_html(emoji)
    assert "<b>" not in out and len(out.encode("utf-16-le")) // 2 <= 4096 and "[truncated: 6,000" in out
    assert fit_telegram_html("<b>short</b> &amp; fine") == "<b>short</b> &amp; fine"

"""Telegram Bot API `sendMessage` (HTML parse mode; user data is escaped)."""

from __future__ import annotations

import html
from datetime import timedelta
from urllib.parse import urlsplit

from detectkd.alerting.alert import Alert
from detectkd.alerting.channels.base import post_json
from detectkd.alerting.channels.limits import fit_telegram_html
from detectkd.alerting.message import MessageRenderer
from detectkd.config.types import Duration, Frozen
from detectkd.resources import Resources
from detectkd.templating import compile_message_template


class Params(Frozen):
    bot_token: str
    chat_id: str | int
    base_url: str = "https://api.telegram.org"
    message_template: str | None = None
    disable_notification: bool = False
    timeout: Duration = timedelta(seconds=10)


class TelegramChannel:
    kind = "telegram"

    def __init__(self, params: Params, resources: Resources) -> None:
        self._p = params
        self._url = f"{params.base_url.rstrip('/')}/bot{params.bot_token}/sendMessage"
        self.destination = urlsplit(params.base_url).netloc
        self._resources = resources
        template = compile_message_template(params.message_template) if params.message_template else None
        self._renderer = MessageRenderer(template, lambda x: html.escape(str(x)))

    async def send(self, alert: Alert) -> None:
        session = await self._resources.http()
        text = fit_telegram_html(self._renderer.render(alert))  # user data is escaped by the renderer
        body = {
            "chat_id": self._p.chat_id,
            "text": text,
            "parse_mode": "HTML",
            "disable_notification": self._p.disable_notification,
        }
        await post_json(session, self._url, body, self._p.timeout.total_seconds())


def build(params: Params, resources: Resources) -> TelegramChannel:
    return TelegramChannel(params, resources)

"""Slack and Mattermost incoming webhooks: same payload shape, different escaping."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from detectkd.alerting.alert import Alert
from detectkd.alerting.channels.base import post_json
from detectkd.alerting.channels.common import ChatParams
from detectkd.alerting.channels.limits import MATTERMOST_TEXT, SLACK_SECTION, fit
from detectkd.alerting.message import MessageRenderer
from detectkd.resources import Resources
from detectkd.templating import compile_message_template

FIRING_COLOR = "#d0312d"
RESOLVED_COLOR = "#2eb886"
WARNING_COLOR = "#e8a317"  # NO DATA, FLAPPING, ERROR, SOURCE DOWN
_MD_SPECIAL = re.compile(r"([\\`*_~\[\]()#>|])")


def escape_slack(text: Any) -> str:
    """Slack mrkdwn: only &, < and > are control characters (links, mentions)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_markdown(text: Any) -> str:
    """Mattermost Markdown: escape formatting and break @mentions."""
    out = _MD_SPECIAL.sub(r"\\\1", str(text))
    return out.replace("@", "@\u200b")


class ChatChannel:
    def __init__(self, kind: str, params: ChatParams, resources: Resources) -> None:
        self.kind = kind
        self.destination = urlsplit(params.webhook_url).netloc
        self._p = params
        self._resources = resources
        escape = escape_slack if kind == "slack" else escape_markdown
        template = compile_message_template(params.message_template) if params.message_template else None
        self._renderer = MessageRenderer(template, escape)

    def payload(self, alert: Alert) -> dict[str, Any]:
        text = self._renderer.render(alert)
        head = fit(f"{alert.headline}: {alert.metric}", SLACK_SECTION)
        body: dict[str, Any]
        if self.kind == "slack":
            # Block Kit, with `text` as the notification fallback.
            section = {"type": "mrkdwn", "text": fit(text, SLACK_SECTION)}
            body = {"text": head, "blocks": [{"type": "section", "text": section}]}
        else:
            color = RESOLVED_COLOR
            if alert.status == "firing":
                color = FIRING_COLOR if alert.kind == "anomaly" else WARNING_COLOR
            body = {"attachments": [{"fallback": head, "color": color, "text": fit(text, MATTERMOST_TEXT)}]}
        for key in ("channel", "username", "icon_url", "icon_emoji"):
            value = getattr(self._p, key)
            if value:
                body[key] = value
        return body

    async def send(self, alert: Alert) -> None:
        session = await self._resources.http()
        await post_json(session, self._p.webhook_url, self.payload(alert), self._p.timeout.total_seconds())


def build_slack(params: ChatParams, resources: Resources) -> ChatChannel:
    return ChatChannel("slack", params, resources)


def build_mattermost(params: ChatParams, resources: Resources) -> ChatChannel:
    return ChatChannel("mattermost", params, resources)

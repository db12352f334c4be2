"""Channel types by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from detectkd.alerting.channels import alertmanager, chat, email, log, telegram, webhook
from detectkd.alerting.channels.base import Channel
from detectkd.alerting.channels.common import ChatParams
from detectkd.resources import Resources


@dataclass(frozen=True)
class ChannelType:
    params: type[BaseModel]
    build: Callable[[Any, Resources], Channel]


CHANNELS: dict[str, ChannelType] = {
    "webhook": ChannelType(webhook.Params, webhook.build),
    "slack": ChannelType(ChatParams, chat.build_slack),
    "mattermost": ChannelType(ChatParams, chat.build_mattermost),
    "log": ChannelType(log.Params, log.build),
    "alertmanager": ChannelType(alertmanager.Params, alertmanager.build),
    "telegram": ChannelType(telegram.Params, telegram.build),
    "email": ChannelType(email.Params, email.build),
}


def lookup(kind: str) -> ChannelType | None:
    return CHANNELS.get(kind)

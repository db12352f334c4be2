"""Parameters every chat-style channel shares (DetectK's alerter keys)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import field_validator

from detectkd.config.types import Duration, Frozen
from detectkd.templating import check_template


class ChatParams(Frozen):
    webhook_url: str
    channel: str | None = None
    username: str | None = "detectkd"
    icon_url: str | None = None
    icon_emoji: str | None = None
    message_template: str | None = None
    timeout: Duration = timedelta(seconds=10)

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("webhook_url must start with http:// or https://")
        return value

    @field_validator("message_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None and (problem := check_template(value)):
            raise ValueError(problem)
        return value

"""Generic JSON webhook. The payload is documented in docs/alerting.md."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from detectkd.alerting.alert import Alert
from detectkd.alerting.channels.base import encode, post_json
from detectkd.alerting.message import MessageRenderer
from detectkd.config.types import Duration, Frozen
from detectkd.resources import Resources
from detectkd.templating import compile_message_template

SIGNATURE_HEADER = "X-Detectk-Signature"


class Params(Frozen):
    url: str | None = None
    webhook_url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    secret: str | None = None  # signs the body: X-Detectk-Signature: sha256=<hex HMAC-SHA256>
    message_template: str | None = None
    timeout: Duration = timedelta(seconds=10)

    @model_validator(mode="after")
    def _one_url(self) -> Params:
        target = self.url or self.webhook_url
        if not target:
            raise ValueError("webhook needs `url` (or `webhook_url`)")
        if not target.startswith(("http://", "https://")):
            raise ValueError("webhook url must start with http:// or https://")
        return self


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def payload(alert: Alert, message: str) -> dict[str, Any]:
    return {
        "version": 1,
        "key": alert.key,
        "status": alert.status,
        "kind": alert.kind,
        "metric": alert.metric,
        "series": alert.series,
        "labels": alert.labels,
        "period": _iso(alert.period),
        "started_at": _iso(alert.started_at),
        "value": alert.value,
        "expected": alert.expected,
        "lower": alert.lower,
        "upper": alert.upper,
        "score": alert.score,
        "direction": alert.direction,
        "detector": alert.detector,
        "deviation_percent": alert.deviation_percent,
        "description": alert.description,
        "tags": list(alert.tags),
        "url": alert.url,
        "extra": alert.extra,
        "revised": alert.revised,  # retracted | late | null (runtime.recheck)
        "message": message,
    }


class WebhookChannel:
    kind = "webhook"

    def __init__(self, params: Params, resources: Resources) -> None:
        self._url = params.url or params.webhook_url or ""
        self.destination = urlsplit(self._url).netloc
        self._headers = dict(params.headers)
        self._secret = params.secret.encode() if params.secret else None
        self._timeout = params.timeout.total_seconds()
        self._resources = resources
        template = compile_message_template(params.message_template) if params.message_template else None
        self._renderer = MessageRenderer(template)

    async def send(self, alert: Alert) -> None:
        session = await self._resources.http()
        raw = encode(payload(alert, self._renderer.render(alert)))
        headers = {"Idempotency-Key": alert.key, **self._headers}
        if self._secret is not None:
            digest = hmac.new(self._secret, raw, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        await post_json(session, self._url, None, self._timeout, headers, body=raw)


def build(params: Params, resources: Resources) -> WebhookChannel:
    return WebhookChannel(params, resources)

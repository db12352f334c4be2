"""Alerts as log lines: the channel of the embedded default, and a safe fallback."""

from __future__ import annotations

import structlog

from detectkd.alerting.alert import Alert
from detectkd.alerting.message import MessageRenderer
from detectkd.config.types import Frozen
from detectkd.resources import Resources
from detectkd.templating import compile_message_template

log = structlog.get_logger("detectkd.alert")


class Params(Frozen):
    message_template: str | None = None
    level: str = "warning"


class LogChannel:
    kind = "log"

    def __init__(self, params: Params) -> None:
        template = compile_message_template(params.message_template) if params.message_template else None
        self._renderer = MessageRenderer(template)
        self._level = params.level

    async def send(self, alert: Alert) -> None:
        text = self._renderer.render(alert)
        log.log(
            _LEVELS.get(self._level, 30),
            "alert " + alert.headline,
            metric=alert.metric,
            series=alert.series,
            status=alert.headline,
            value=alert.value,
            expected=alert.expected,
            lower=alert.lower,
            upper=alert.upper,
            score=None if alert.score is None else round(alert.score, 3),
            key=alert.key,
            message=text,
        )


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def build(params: Params, resources: Resources) -> LogChannel:
    return LogChannel(params)

"""structlog setup: JSON lines for machines, readable lines on a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from detectkd.redact import redact_text

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            # `message`: the `log` alerter's text, rendered from the operator's template for
            # this channel: its links keep their path (credentials are still hidden).
            event[key] = redact_text(value, urls=key != "message")
    return event


class Console:
    """structlog's console renderer, with a multi-line `message` (an alert's text) printed
    below the line, indented, instead of one string of `\\n` escapes."""

    def __init__(self, colors: bool) -> None:
        self._inner = structlog.dev.ConsoleRenderer(colors=colors)

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        text = event.get("message")
        if not (isinstance(text, str) and "\n" in text):
            return str(self._inner(logger, name, event))
        del event["message"]
        return str(self._inner(logger, name, event)) + "\n    " + text.replace("\n", "\n    ")


def configure(fmt: str = "auto", level: str = "info") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    if use_json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors.append(Console(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, 20)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (aiohttp, APScheduler, asyncio) log through the stdlib: the same renderer, so
    # a traceback is one JSON line (`exception`) in JSON mode, never loose text.
    renderer = processors[-1]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _redact,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.ERROR)
    # APScheduler logs every job start at INFO; its warnings we count as metrics instead.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

"""Process entry for `detectkd run`: logging, HTTP listener, daemon, exit code."""

from __future__ import annotations

import structlog

from detectkd import logs
from detectkd.config.settings import Settings
from detectkd.errors import ConfigError, StorageError
from detectkd.http.app import start_server
from detectkd.runtime.daemon import Daemon


async def run_daemon(settings: Settings) -> int:
    logs.configure(settings.log_format, settings.log_level)
    log = structlog.get_logger("detectkd")
    daemon = Daemon(settings)
    daemon.install_signals()
    try:
        # Listen first: /healthz answers and /readyz says "starting" while configs load.
        web = await start_server(daemon)
    except OSError as exc:
        log.error("cannot listen", listen=settings.listen, error=str(exc))
        return 1
    except ConfigError as exc:
        for issue in exc.issues:
            log.error(
                "web config error", file=issue.file, line=issue.line, key=issue.key, error=issue.message
            )
        return 2
    try:
        await daemon.start()
        if daemon.stop_event.is_set():
            log.info("stop requested during startup")
    except StorageError as exc:
        log.error("cannot open storage", error=str(exc))
        await web.cleanup()
        return 1
    log.info("listening", listen=settings.listen)
    try:
        await daemon.serve()
    finally:
        await web.cleanup()
    log.info("stopped")
    return 0

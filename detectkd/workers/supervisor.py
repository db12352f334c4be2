"""`workers: N`: one systemd unit and one :9100, N worker processes, one shard each.

The supervisor starts `detectkd run --shard i/N` N times (each worker listens on a private
port on 127.0.0.1, keeps its state in `data_dir/worker-i`, and never talks to systemd),
and serves the daemon's endpoints itself: `/metrics` and `/api/v1/metrics` merged from the
workers (`detectkd.workers.merge`), `/healthz` while every worker is alive, `/readyz` once every
worker is ready. SIGHUP and SIGTERM are forwarded. A worker that dies is restarted after
1 s, doubling to 60 s while it keeps dying, and counted in
`detectk_worker_restarts_total{worker}`. systemd hears READY=1 once every worker is ready
and WATCHDOG=1 only while every worker is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time

import bcrypt
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Info, generate_latest

from detectkd import __version__
from detectkd.config.settings import Settings
from detectkd.http.auth import SUPERVISOR_USER
from detectkd.http.edge import LISTEN_FD_ENV, edge_app, serve
from detectkd.http.paging import page, page_args
from detectkd.http.webconfig import WebConfig, load_web_config
from detectkd.sdnotify import Notifier
from detectkd.workers.merge import merge_api, merge_expositions
from detectkd.workers.pool import Worker, WorkerPool
from detectkd.workers.ui import WorkersUI

log = structlog.get_logger("detectkd.supervisor")
MAX_BACKOFF = 60.0


def worker_count(value: int | str) -> int:
    """`workers: N` or `auto` (the machine's cores)."""
    return max(1, os.cpu_count() or 1) if value == "auto" else int(value)


def _die_with_parent() -> None:
    """In the worker, before exec: SIGTERM when the supervisor dies (even by SIGKILL), so a
    killed supervisor never leaves workers holding the metrics (Linux's PR_SET_PDEATHSIG)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


class Supervisor:
    def __init__(self, settings: Settings, config: str | None) -> None:
        self.settings, self.config = settings, config
        self.count = worker_count(settings.workers)
        self.pool = WorkerPool(self.count)
        self.workers = self.pool.workers
        self.stop_event = asyncio.Event()
        self.notifier = Notifier()
        r = self.registry = CollectorRegistry(auto_describe=True)
        Info("detectk_build", "detectkd version.", registry=r).info({"version": __version__})
        Gauge("detectk_workers", "Worker processes configured (workers: N).", registry=r).set(self.count)
        self.restarts = Counter(
            "detectk_worker_restarts", "Workers restarted after they died.", ["worker"], registry=r
        )

    # -- workers -------------------------------------------------------------------------

    def _env(self, w: Worker, listen_fd: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        return env | {
            "DETECTK_WORKERS": "1",
            "DETECTK_SHARD": f"{w.index}/{self.count}",
            "DETECTK_LISTEN": f"127.0.0.1:{w.port}",  # its name (in logs); it listens on:
            LISTEN_FD_ENV: str(listen_fd),
            "DETECTK_DATA_DIR": str(self.settings.data_dir / f"worker-{w.index}"),
            # Workers listen on 127.0.0.1 only; TLS and basic auth are the supervisor's.
            "DETECTK_WEB_CONFIG_FILE": str(self.settings.data_dir / "workers-web.yml"),
        }

    async def _spawn(self, w: Worker) -> None:
        """Start worker `w` on a listening socket of its port (`Worker.listener`): the port
        stays the supervisor's between starts. Raises OSError (it could not be started)."""
        args = [sys.executable, "-m", "detectkd", "run"] + (["--config", self.config] if self.config else [])
        with w.listener() as sock:  # the worker's own copy outlives this one
            fd = sock.fileno()
            w.proc = await asyncio.create_subprocess_exec(
                *args, env=self._env(w, fd), pass_fds=(fd,), preexec_fn=_die_with_parent
            )
        w.started = time.monotonic()
        log.info("worker started", worker=w.index, pid=w.proc.pid, shard=f"{w.index}/{self.count}")

    async def _keep(self, w: Worker) -> None:
        """Run worker `w` until stop; restart it with back-off when it dies."""
        while not self.stop_event.is_set():
            try:
                await self._spawn(w)
            except OSError as exc:
                log.error("cannot start worker", worker=w.index, error=str(exc))
                code: int | None = None
            else:
                assert w.proc is not None
                code = await w.proc.wait()
            if self.stop_event.is_set():
                return
            if time.monotonic() - w.started > 5 * MAX_BACKOFF:
                w.backoff = 1.0  # it had been running fine: the next death starts over
            log.error("worker died", worker=w.index, exit_code=code, restart_in=w.backoff)
            self.restarts.labels(str(w.index)).inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=w.backoff)
            w.backoff = min(MAX_BACKOFF, w.backoff * 2)

    def forward(self, sig: int) -> None:
        for w in self.workers:
            if w.alive and w.proc is not None:
                w.proc.send_signal(sig)

    # -- HTTP ------------------------------------------------------------------------------

    async def metrics(self, _: web.Request) -> web.Response:
        texts = [body for status, body in await self.pool.all_workers("/metrics") if status == 200]
        own = generate_latest(self.registry).decode()
        body = merge_expositions(texts, own)
        return web.Response(text=body, content_type="text/plain", charset="utf-8")

    async def api_metrics(self, request: web.Request) -> web.Response:
        """The workers' entries with the same filters, merged by name, then paged: each
        worker is asked for its first `offset + limit` (in pages of at most 10,000)."""
        try:
            limit, offset = page_args(request.query)
        except ValueError:
            return web.json_response({"error": "limit and offset must be integers"}, status=400)
        filters = {k: v for k, v in request.query.items() if k in ("name", "tag", "state")}
        got = await asyncio.gather(
            *(self.pool.first_entries(w, filters, offset + limit) for w in self.workers)
        )
        pages = [p for p in got if p is not None]
        merged = merge_api(pages)
        merged |= page(merged["metrics"], merged["total"], offset, limit) | {"workers": self.count}
        return web.json_response(merged, status=200 if len(pages) == self.count else 503)

    async def healthz(self, _: web.Request) -> web.Response:
        dead = [w.index for w in self.workers if not w.alive]
        return web.json_response({"workers": self.count, "dead": dead}, status=503 if dead else 200)

    async def readyz(self, _: web.Request) -> web.Response:
        ok = await self.pool.ready()
        return web.Response(text="ready" if ok else "starting", status=200 if ok else 503)

    def app(self, config: WebConfig) -> web.Application:
        # The daemon's own edge (auth, the write rule, the cross-site guard, headers): the
        # workers trust what the supervisor forwards, so it is checked here first.
        app = edge_app(config, self.settings.lifecycle_api)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/api/v1/metrics", self.api_metrics)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        WorkersUI(self.pool, self.settings.lifecycle_api).routes(
            app
        )  # the web UI: merged pages, a metric's answered by its worker
        return app

    # -- lifecycle ---------------------------------------------------------------------

    async def _systemd(self) -> None:
        """READY=1 once every worker is ready; WATCHDOG=1 only while every worker lives."""
        while not self.stop_event.is_set() and not await self.pool.ready():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=0.2)
        self.notifier.ready(self.status_line())
        period = self.notifier.watchdog_seconds
        while not self.stop_event.is_set():
            self.notifier.status(self.status_line())
            if period and all(w.alive for w in self.workers):
                self.notifier.watchdog()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=period / 2 if period else 10.0)

    def status_line(self) -> str:
        alive = sum(w.alive for w in self.workers)
        return f"{self.count} workers, {alive} alive"

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self.forward(signal.SIGHUP))
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        # The workers listen on 127.0.0.1 without TLS, and answer only the supervisor: one
        # user with a password made for this start (so their write API works through it).
        password = secrets.token_urlsafe(24)
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
        web_yml = self.settings.data_dir / "workers-web.yml"
        web_yml.touch(mode=0o600)
        web_yml.chmod(0o600)
        users = f"basic_auth_users:\n  {SUPERVISOR_USER}: '{hashed}'\n"
        web_yml.write_text("# workers: no TLS, the supervisor's user only (made at each start)\n" + users)
        path = self.settings.web_config_file
        config = load_web_config(path)
        self.pool.connect(SUPERVISOR_USER, password)
        host, port = self.settings.listen_host_port()
        try:
            runner = await serve(self.app(config), host, port, config, path)
        except OSError as exc:
            log.error("cannot listen", listen=self.settings.listen, error=str(exc))
            await self.pool.close()
            return 1
        log.info("supervisor started", workers=self.count, listen=self.settings.listen)
        keepers = [asyncio.create_task(self._keep(w)) for w in self.workers]
        notify = asyncio.create_task(self._systemd())
        await self.stop_event.wait()
        self.notifier.stopping()
        self.forward(signal.SIGTERM)
        grace = self.settings.shutdown_grace.total_seconds() + 30
        await asyncio.wait(keepers, timeout=grace)
        for w in self.workers:
            if w.alive and w.proc is not None:
                w.proc.kill()
        await notify
        await runner.cleanup()
        await self.pool.close()
        log.info("stopped")
        return 0


async def run_supervisor(settings: Settings, config: str | None) -> int:
    from detectkd import logs

    logs.configure(settings.log_format, settings.log_level)
    return await Supervisor(settings, config).run()

"""A private Prometheus for the tests: own port, own TSDB directory, stopped afterwards.

The samples are known in advance: `promtool tsdb create-blocks-from openmetrics` writes them
as blocks into the empty TSDB directory before the server starts, so every query has one
right answer (no scrape timing involved). Debian's `prometheus` package has both binaries.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port
from tests.support.subprocs import stop, wait_started

CONFIG = "global:\n  scrape_interval: 1m\nscrape_configs: []\n"


def installed() -> bool:
    return shutil.which("prometheus") is not None and shutil.which("promtool") is not None


@dataclass
class PrometheusServer:
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def backfill(self, openmetrics: str) -> None:
        """Write samples (OpenMetrics text, ending in `# EOF`) as TSDB blocks; before start()."""
        source = self.root / "samples.om"
        source.write_text(openmetrics)
        (self.root / "data").mkdir(exist_ok=True)
        subprocess.run(
            [
                "promtool",
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "-q",
                str(source),
                str(self.root / "data"),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self, timeout: float = 60, scrape: str | None = None) -> None:
        """`scrape`: a host:port whose /metrics is scraped every second (job `shop`)."""
        config = CONFIG
        if scrape is not None:
            config = (
                "global:\n  scrape_interval: 1s\nscrape_configs:\n"
                f"  - job_name: shop\n    static_configs: [{{targets: ['{scrape}']}}]\n"
            )
        (self.root / "prometheus.yml").write_text(config)
        (self.root / "data").mkdir(exist_ok=True)
        out = (self.root / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={self.root / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.root / 'data'}",
                "--storage.tsdb.retention.time=3650d",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=out,
        )
        log = self.root / "server.log"
        wait_started(self.proc, self.ready, timeout, "prometheus", lambda: log.read_text(errors="replace"))

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        stop(self.proc, grace=30)
        self.proc = None


def start_server(openmetrics: str) -> PrometheusServer:
    server = PrometheusServer(Path(tempfile.mkdtemp(prefix="dtk-prometheus-")))
    server.backfill(openmetrics)
    server.start()
    return server


def remove(server: PrometheusServer) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)

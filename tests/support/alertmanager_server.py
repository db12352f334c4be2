"""A private Alertmanager for the tests (Debian's `prometheus-alertmanager`): own port, own
storage path, no clustering, stopped afterwards. Its one receiver is a webhook the test
runs, so what Alertmanager itself notifies (firing, resolved, silenced or not) is seen."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.net import free_port
from tests.support.subprocs import stop, wait_started

CONFIG = """\
route:
  receiver: hook
  group_by: [alertname, metric, series, kind]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: "{url}"
        send_resolved: true
"""


def binary() -> str | None:
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@dataclass
class AlertmanagerServer:
    root: Path
    webhook: str  # where Alertmanager sends its notifications
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        exe = binary()
        if exe is None:
            raise RuntimeError("Alertmanager is not installed (scripts/test installs Debian's package)")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "alertmanager.yml").write_text(CONFIG.format(url=self.webhook))
        out = (self.root / "alertmanager.log").open("ab")
        self.proc = subprocess.Popen(
            [
                exe,
                f"--config.file={self.root / 'alertmanager.yml'}",
                f"--storage.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=debug",
            ],
            stdout=out,
            stderr=out,
        )
        wait_started(self.proc, self.alive, timeout, "Alertmanager", self.log)

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def log(self) -> str:
        path = self.root / "alertmanager.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alerts(self, active: bool = True) -> list[dict[str, Any]]:
        """`GET /api/v2/alerts` (active ones, silenced included)."""
        q = "?active=true&silenced=true&inhibited=true" if active else ""
        with urllib.request.urlopen(self.url + "/api/v2/alerts" + q, timeout=5) as r:
            result: list[dict[str, Any]] = json.loads(r.read())
            return result

    def silence(self, matchers: dict[str, str], minutes: int = 60) -> str:
        """A silence through Alertmanager's API; its id."""
        now = time.time()
        body = {
            "matchers": [
                {"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in matchers.items()
            ],
            "startsAt": _iso(now - 1),
            "endsAt": _iso(now + minutes * 60),
            "createdBy": "tests",
            "comment": "test",
        }
        req = urllib.request.Request(
            self.url + "/api/v2/silences", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return str(json.loads(r.read())["silenceID"])

    def stop(self) -> None:
        stop(self.proc)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"

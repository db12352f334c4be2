"""A private ClickHouse server for the tests: own ports, own data dir, stopped afterwards.

Debian's `clickhouse-server` (18.16 here) runs in the foreground with
`--config-file`; the config below sets every path so nothing touches /var.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port
from tests.support.subprocs import stop, wait_started

CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/err.log</errorlog>
        <size>10M</size><count>1</count></logger>
    <http_port>{http}</http_port>
    <tcp_port>{tcp}</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>{d}/data/</path>
    <tmp_path>{d}/tmp/</tmp_path>
    <user_files_path>{d}/user_files/</user_files_path>
    <format_schema_path>{d}/format_schemas/</format_schema_path>
    <users_config>{d}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>536870912</mark_cache_size>
    <uncompressed_cache_size>536870912</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <timezone>UTC</timezone>
</yandex>
"""

USERS = """<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
    <users><default><password></password><networks><ip>::/0</ip></networks>
        <profile>default</profile><quota>default</quota></default></users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
"""


def binary() -> str | None:
    found = shutil.which("clickhouse-server")
    if found:
        return found
    return "/usr/sbin/clickhouse-server" if Path("/usr/sbin/clickhouse-server").exists() else None


@dataclass
class ClickHouseServer:
    root: Path
    http_port: int = field(default_factory=free_port)
    tcp_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    def start(self, timeout: float = 60) -> None:
        exe = binary()
        if exe is None:
            raise RuntimeError("clickhouse-server is not installed (scripts/test installs Debian's package)")
        (self.root / "config.xml").write_text(
            CONFIG.format(d=self.root, http=self.http_port, tcp=self.tcp_port)
        )
        (self.root / "users.xml").write_text(USERS)
        out = (self.root / "stdout.log").open("ab")
        self.proc = subprocess.Popen(
            [exe, f"--config-file={self.root / 'config.xml'}"], stdout=out, stderr=out
        )
        err = self.root / "err.log"
        wait_started(
            self.proc,
            self.alive,
            timeout,
            "clickhouse-server",
            lambda: err.read_text() if err.exists() else "",
        )

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "ping", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def query(self, sql: str) -> str:
        req = urllib.request.Request(self.url, data=sql.encode(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return str(r.read().decode())
        except urllib.error.HTTPError as e:  # ClickHouse says why in the body
            raise RuntimeError(f"ClickHouse {e.code}: {e.read().decode(errors='replace')[:500]}") from e

    def stop(self) -> None:
        stop(self.proc, grace=30)
        self.proc = None


def start_server() -> ClickHouseServer:
    server = ClickHouseServer(Path(tempfile.mkdtemp(prefix="dtk-clickhouse-")))
    server.start()
    return server


def remove(server: ClickHouseServer) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)

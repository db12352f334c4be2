"""A private PgBouncer in front of the machine's PostgreSQL (127.0.0.1:5432, trust): own port,
own config under a temp dir, stopped afterwards.

Debian's `pgbouncer` (1.18 on bookworm; scripts/lib/services.sh installs it) runs in the
foreground with its config file as argument. It refuses to run as root: as root it is started
with `-u postgres`, the user Debian's PostgreSQL runs as. Any database name is passed through
to the server (`* =`); the `postgres` user logs in without a password, as on the server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port
from tests.support.subprocs import stop, wait_started

CONFIG = """[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {root}/users.txt
pool_mode = {pool_mode}
{ignore}
"""


def installed() -> bool:
    return shutil.which("pgbouncer") is not None or Path("/usr/sbin/pgbouncer").exists()


@dataclass
class PgBouncer:
    root: Path
    pool_mode: str = "session"
    ignore_startup_parameters: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 10) -> None:
        exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not installed():
            raise RuntimeError("pgbouncer is not installed (scripts/test installs Debian's package)")
        ignore = self.ignore_startup_parameters
        (self.root / "pgbouncer.ini").write_text(
            CONFIG.format(
                port=self.port,
                root=self.root,
                pool_mode=self.pool_mode,
                ignore=f"ignore_startup_parameters = {','.join(ignore)}" if ignore else "",
            )
        )
        (self.root / "users.txt").write_text('"postgres" ""\n')
        as_user: list[str] = []
        if os.geteuid() == 0:  # "PgBouncer should not run as root"
            as_user = ["-u", "postgres"]
            self.root.chmod(0o755)  # it reads its auth file after giving up root
        out = (self.root / "pgbouncer.log").open("ab")
        self.proc = subprocess.Popen(
            [exe, *as_user, str(self.root / "pgbouncer.ini")], stdout=out, stderr=out
        )
        wait_started(self.proc, self.listening, timeout, "pgbouncer", self.log)

    def listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None


@contextmanager
def running(
    pool_mode: str = "session", ignore_startup_parameters: tuple[str, ...] = ()
) -> Iterator[PgBouncer]:
    """A started PgBouncer, stopped and its directory removed afterwards."""
    bouncer = PgBouncer(Path(tempfile.mkdtemp(prefix="dtk-pgbouncer-")), pool_mode, ignore_startup_parameters)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(bouncer.root, ignore_errors=True)

"""What a daemon keeps in its own `data_dir` so that a crash sends nothing twice.

- **Its lease owner id** (`data_dir/instance-id`): outbox claims record it, and a restarted
  daemon ends its own previous leases at once (`StateStore.outbox_release`) instead of
  waiting for them to expire. It is the same across restarts of one daemon and differs
  between replicas and workers (each has its own `data_dir`), so no one ends a lease that
  a live daemon holds.
- **The sent log** (`data_dir/outbox-sent.log`): a row the receiver accepted is appended
  here, one `write(2)` of a line, before anything else happens, and the log is emptied once
  every such row's done-mark is stored. A process killed between the receiver's answer and
  the stored done-mark (or while the store is down) leaves the row here; the next start
  marks it done instead of sending it again. It survives the process, not the machine (no
  fsync: it is microseconds on the delivery path, and a machine crash loses the receiver's
  connection too).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("detectkd.outbox")

ID_FILE = "instance-id"
LOG_FILE = "outbox-sent.log"


def owner_id(data_dir: Path) -> str:
    """This daemon's lease owner id, created once in `data_dir` (a process-own id, with a
    warning, when `data_dir` cannot keep it: its leases then only expire)."""
    path = data_dir / ID_FILE
    try:
        return path.read_text().strip() or _create(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("instance id unreadable", path=str(path), error=str(exc))
        return _fresh()
    try:
        return _create(path)
    except OSError as exc:
        log.warning(
            "instance id not kept: a restart waits for its outbox leases", path=str(path), error=str(exc)
        )
        return _fresh()


def _fresh() -> str:
    return f"{socket.gethostname()}-{secrets.token_hex(6)}"


def _create(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    ident = _fresh()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(ident + "\n")
    os.replace(tmp, path)
    return ident


@dataclass(frozen=True)
class SentEntry:
    id: int
    key: str
    channel: str


class SentLog:
    """Opened for each line (no descriptor to close): an append is about 10 µs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._failed = False

    def add(self, entry: SentEntry) -> None:
        """Record a delivered row (never raises: the store's done-mark still follows)."""
        line = json.dumps([entry.id, entry.key, entry.channel], ensure_ascii=False) + "\n"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning("sent log not written", path=str(self.path), error=str(exc))

    def clear(self) -> None:
        """Every recorded row's done-mark is stored."""
        try:
            if self.path.exists():
                os.truncate(self.path, 0)
        except OSError as exc:
            log.warning("sent log not emptied", path=str(self.path), error=str(exc))

    def load(self) -> list[SentEntry]:
        """What a previous process recorded (a torn last line is skipped)."""
        try:
            text = self.path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("sent log unreadable", path=str(self.path), error=str(exc))
            return []
        out = []
        for line in text.splitlines():
            try:
                ident, key, channel = json.loads(line)
                out.append(SentEntry(int(ident), str(key), str(channel)))
            except (ValueError, TypeError):
                continue
        return out

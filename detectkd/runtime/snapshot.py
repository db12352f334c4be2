"""What memory a next start takes instead of rebuilding it: every metric's windows and its
detectors' derived state, so a restart does not read every window from the store and
rebuild `auto`'s state point by point (minutes of one core for 10,000 metrics).

The daemon writes `data_dir/memory.snapshot` at SIGTERM, after the runs in flight finished
(`write`), and every `snapshot_interval` in the background (`runtime.snapshots`, through
`SnapshotFile`: a slice of metrics at a time). The next start reads it (`load`; the file
stays) and hands each metric its part (`take`), which the metric's first run adopts
instead of reading its window from the store, but only if the config that shapes memory is
the same (`fingerprint`: detectors and their parameters, interval, timezone, window span,
features, where the points are stored) and detectkd is the same version. A part older than
the store's watermark (a crash after it was written) is caught up from the store's points
(`runtime.catchup`).

Anything else (no file, another version, a torn or foreign file, arrays whose length or type
disagrees with the index) falls back to the store, which is always right, only slower. The
format is the daemon's own (raw little-endian arrays and a JSON index, no pickle): it is
read only by the version that wrote it.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from detectkd import __version__
from detectkd.runtime.memory import Saved

if TYPE_CHECKING:
    from detectkd.runtime.runner import MetricRuntime

log = structlog.get_logger("detectkd")
MAGIC = b"DTKSNAP3"  # 2: auto keeps its rest period (6 numbers per series); 3: its |z| in <f4
FILE = "memory.snapshot"
_DTYPES = {"<i8", "<f8", "<f4"}


def fingerprint(rt: MetricRuntime) -> str:
    """What memory depends on besides the stored points."""
    spec, st = rt.spec, rt.spec.storage
    doc = [
        [[d.type, d.id, d.params.model_dump(mode="json")] for d in spec.detectors],
        [rt.grid.step, str(rt.tz), rt.memory.span, list(rt.memory.features)],
        [st.enabled, st.type, st.params],
    ]
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def collect(runtimes: Iterable[MetricRuntime]) -> dict[str, Saved]:
    """Each metric's memory where it is in step with the store; a part taken at start that
    no run adopted yet (a daily metric) is passed on as it was."""
    return dict(_parts(runtimes))


def _parts(runtimes: Iterable[MetricRuntime]) -> Iterator[tuple[str, Saved]]:
    """`collect`, one metric at a time (a window's times are a copy: not all at once)."""
    for rt in runtimes:
        if rt.lock.locked():  # a run cancelled at the stop whose judge still runs in its thread
            continue  # memory is changing: read from the store at the next start
        watermark = rt.settled
        if watermark is not None:
            yield rt.name, rt.memory.save(fingerprint(rt), watermark)
        elif rt.memory.saved is not None and not rt.memory.loaded:
            yield rt.name, rt.memory.saved


class SnapshotFile:
    """A snapshot written part by part (the periodic writer adds a slice of metrics at a
    time, from a thread): a temporary file, then `finish` (the index, fsync, rename, the
    directory fsynced) or `abort`. Until `finish` the previous snapshot stays whole."""

    SYNC_EVERY = 8 << 20  # written bytes between fdatasyncs: dirty pages stay bounded

    def __init__(self, path: Path) -> None:
        self.path, self.tmp = path, path.with_name(path.name + ".tmp")
        self.f = self.tmp.open("wb")
        self.f.write(MAGIC)
        self.metrics: dict[str, Any] = {}
        self._unsynced = 0

    @property
    def size(self) -> int:
        return self.f.tell()

    def _put(self, a: np.ndarray) -> list[Any]:
        a = np.ascontiguousarray(a, a.dtype.newbyteorder("<"))
        at = self.f.tell()
        self.f.write(a.data)
        self._unsynced += a.nbytes
        return [at, int(a.size), a.dtype.str]

    def add(self, name: str, s: Saved) -> None:
        put = self._put
        windows = {
            k: [put(t), put(v), {c: put(x) for c, x in f.items()}] for k, (t, v, f) in s.windows.items()
        }
        states = {d: {k: [put(a), list(sc)] for k, (a, sc) in per.items()} for d, per in s.states.items()}
        self.metrics[name] = {
            "fingerprint": s.fingerprint,
            "watermark": s.watermark,
            "windows": windows,
            "states": states,
        }
        if self._unsynced >= self.SYNC_EVERY:
            self.f.flush()
            os.fdatasync(self.f.fileno())
            self._unsynced = 0

    def finish(self) -> int:
        """The index written, the file made durable and renamed over the previous one."""
        body = json.dumps({"version": __version__, "metrics": self.metrics}).encode()
        self.f.write(body)
        self.f.write(struct.pack("<Q", len(body)) + MAGIC)
        self.f.flush()
        os.fsync(self.f.fileno())
        size = self.f.tell()
        self.f.close()
        os.replace(self.tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:  # the rename itself survives a power loss
            os.fsync(fd)
        finally:
            os.close(fd)
        return size

    def abort(self) -> None:
        self.f.close()
        self.tmp.unlink(missing_ok=True)


def save(path: Path, parts: dict[str, Saved] | Iterable[tuple[str, Saved]]) -> int:
    """Write the snapshot (a temporary file, fsynced, then renamed). Returns its size."""
    out = SnapshotFile(path)
    try:
        for name, s in parts.items() if isinstance(parts, dict) else parts:
            out.add(name, s)
        return out.finish()
    except BaseException:
        out.abort()
        raise


def write(path: Path, runtimes: list[MetricRuntime]) -> int | None:
    """At a graceful stop, with no run in flight: each metric's part written as it is
    collected (`save`), logged. The bytes written; None when it was not."""
    began = time.monotonic()
    written: list[str] = []

    def parts() -> Iterator[tuple[str, Saved]]:
        for name, part in _parts(runtimes):
            written.append(name)
            yield name, part

    try:
        size = save(path, parts())
    except OSError as exc:
        log.warning("restart snapshot not written", path=str(path), error=str(exc))
        return None
    log.info(
        "restart snapshot written",
        metrics=len(written),
        mib=round(size / 2**20, 1),
        seconds=round(time.monotonic() - began, 2),
    )
    return size


def load(path: Path) -> dict[str, Saved]:
    """The parts a previous process left; {} when there is none or it cannot be used (logged,
    and the file removed). A usable file stays: memory older than the store is caught up
    from the store's points (`runtime.catchup`), so a crash right after this start still
    finds it."""
    if not path.exists():
        return {}
    try:
        return _read(path)
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
        log.warning("restart snapshot not used", path=str(path), error=str(exc) or type(exc).__name__)
        path.unlink(missing_ok=True)
        return {}


def take(parts: dict[str, Saved], rt: MetricRuntime) -> Saved | None:
    """The metric's part, if it was saved for the config it runs now."""
    part = parts.pop(rt.name, None)
    return part if part is not None and part.fingerprint == fingerprint(rt) else None


def taken(offered: int, runtimes: list[MetricRuntime]) -> dict[str, Saved]:
    """After the start installed the metrics: log how many took their part; nothing is left
    to take (returns the empty set of parts)."""
    if offered:
        n = sum(rt.memory.saved is not None for rt in runtimes)
        log.info("restart snapshot taken", metrics=n, offered=offered)
    return {}


def _read(path: Path) -> dict[str, Saved]:
    """Read with plain reads (not a mapping: the file's pages do not count as the daemon's
    memory on top of the arrays it becomes)."""
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size < 24:
            raise ValueError("not a detectkd snapshot (or a torn one)")
        f.seek(size - 16)
        tail = f.read(16)
        f.seek(0)
        head = f.read(8)
        if head[:7] == MAGIC[:7] and head != MAGIC and tail[8:] == head:
            raise ValueError(f"an older snapshot format ({head.decode()}, this is {MAGIC.decode()})")
        if head != MAGIC or tail[8:] != MAGIC:
            raise ValueError("not a detectkd snapshot (or a torn one)")
        (length,) = struct.unpack("<Q", tail[:8])
        limit = size - 16 - length
        if limit < 8:
            raise ValueError("index length beyond the file")
        f.seek(limit)
        index = json.loads(f.read(length))
        if index.get("version") != __version__:
            raise ValueError(f"written by detectkd {index.get('version')}, this is {__version__}")

        def get(block: list[Any], want: str, where: str) -> np.ndarray:
            """The block's array, which must be `want` (`<i8`, `<f8` or `<f4`) and inside the file."""
            at, count, dtype = int(block[0]), int(block[1]), str(block[2])
            if dtype not in _DTYPES or at < 8 or count < 0 or at + count * int(dtype[2:]) > limit:
                raise ValueError(f"{where}: bad block {block}")
            if dtype != want:
                raise ValueError(f"{where}: {dtype} array where {want} belongs")
            f.seek(at)
            a = np.fromfile(f, np.dtype(dtype), count).astype(dtype[1:], copy=False)
            if a.size != count:
                raise ValueError(f"{where}: {a.size} values where the index says {count}")
            return a

        out: dict[str, Saved] = {}
        for name, m in index["metrics"].items():
            part = Saved(str(m["fingerprint"]), int(m["watermark"]))
            for series, (t, v, cols) in m["windows"].items():
                at = f"metric {name!r} series {series!r}"
                times, values = get(t, "<i8", at + " times"), get(v, "<f8", at + " values")
                features = {c: get(x, "<f8", f"{at} feature {c!r}") for c, x in cols.items()}
                if any(len(a) != len(times) for a in (values, *features.values())):
                    raise ValueError(f"{at}: its arrays' lengths disagree ({len(times)} times)")
                part.windows[series] = (times, values, features)
            for det, per in m["states"].items():
                part.states[det] = {  # floats, single (auto's |z|) or double precision
                    k: (get(a, "<f4" if a[2] == "<f4" else "<f8", f"metric {name!r} {det} state of {k!r}"),
                        tuple(float(x) for x in sc))
                    for k, (a, sc) in per.items()
                }  # fmt: skip
            out[name] = part
        return out

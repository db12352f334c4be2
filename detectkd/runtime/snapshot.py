"""What memory a next start takes instead of rebuilding it: every metric's windows and its
detectors' derived state, so a restart does not read every window from the store and
rebuild `auto`'s state point by point (minutes of one core for 10,000 metrics).

The daemon writes `data_dir/memory.snapshot` at SIGTERM, after the runs in flight finished
(`write`), and every `snapshot_interval` in the background (`runtime.snapshots`, through
`SnapshotFile`: a slice of metrics at a time). The next start reads it (`load`; the file
stays) and hands each metric its part (`take`), which the metric's first run adopts
instead of reading its window from the store, but only if the metric's config is the same
(`fingerprint`: the metric's own, which a reload compares, and what the code derives from
the points: `MEMORY_VERSION`, each stateful detector's `STATE_VERSION`) and detectkd is the
same version. A part older than
the store's watermark (a crash after it was written) is caught up from the store's points
(`runtime.catchup`).

Anything else (no file, another version, a torn or foreign file, an index whose checksum or
arrays' length or type disagree with it) falls back to the store, which is always right,
only slower. Each array has a CRC-32 of its bytes as written in the index, checked when its
metric's part is read (at the metric's first run, not at the start: the start reads only
the index): a garbled array makes that metric read its window from the store (logged,
`restart snapshot part not read`), the other metrics' parts are still taken. The format is
the daemon's own (raw little-endian arrays and a JSON index, no pickle): it is read only by
the version that wrote it.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from detectkd import __version__
from detectkd.runtime.memory import Saved, States, Windows

if TYPE_CHECKING:
    from detectkd.runtime.runner import MetricRuntime

log = structlog.get_logger("detectkd")
# 2: auto keeps its rest period (6 numbers per series); 3: its |z| in <f4; 4: a window's
# times as it keeps them (seconds from `windows.EPOCH`, <i4 where they fit); 5: a CRC-32 per
# array and one of the index
MAGIC = b"DTKSNAP5"
FILE = "memory.snapshot"
_DTYPES = {"<i4", "<i8", "<f8", "<f4"}
Block = tuple[int, int, str, int]  # where an array is in the file: offset, count, dtype, CRC-32
TAIL = struct.Struct("<QI")  # before the closing magic: the index's length and CRC-32


# What a window holds for the same stored points (features computed from them, masked periods,
# gaps): bump it with a change of detectkd that builds another window from the same points,
# so a snapshot written before is rebuilt from the store, not adopted (a stateful detector's
# own state has its `STATE_VERSION`).
MEMORY_VERSION = 1


def fingerprint(rt: MetricRuntime) -> str:
    """What memory depends on besides the stored points (what a rebuild from the store would
    make of them): the detectors and their parameters, series columns, interval and timezone
    (`detector_fingerprint`), the calendars and their event files, completeness, the peers,
    the metric's `storage:`,
    the `shadow:` variants, the collector's settings but its `params`, the store; what the
    runtime derives from them (grid, window span, features); and the versions of what the
    code derives from the points (`MEMORY_VERSION`, each stateful detector's
    `STATE_VERSION`). Not the alerters, the description or the query and its connection: an
    edit there (a secret rotated through `${VAR}`) keeps the snapshot."""
    spec, cfg = rt.spec, rt.spec.config
    versions = [[d.id, getattr(d, "STATE_VERSION", None)] for d in rt.memory.detectors]
    doc = [
        spec.detector_fingerprint,
        spec.calendar.digest if spec.calendar is not None else None,
        cfg.model_dump(mode="json", include={"completeness", "peers", "storage"}),
        cfg.collector.model_dump(mode="json", exclude={"params"}),
        [s.fingerprint for s in spec.shadows],
        [spec.storage.type, spec.storage.params],
        [rt.grid.step, str(rt.tz), rt.memory.span, list(rt.memory.features)],
        [MEMORY_VERSION, versions],
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
            yield rt.name, rt.memory.save(fingerprint(rt), watermark, rt.fresh.unread())
        elif (part := unadopted(rt)) is not None:
            yield rt.name, part


def unadopted(rt: MetricRuntime) -> Saved | None:
    """The part the metric took at start and no run adopted yet (a daily metric), read from
    the file now (None if it cannot be: the store is read at its first run)."""
    part = rt.memory.saved
    if part is None or rt.memory.loaded:
        return None
    try:
        return part.read()
    except (OSError, ValueError) as exc:
        log.warning("restart snapshot part not read", metric=rt.name, error=str(exc) or type(exc).__name__)
        rt.memory.saved = None
        return None


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
        return [at, int(a.size), a.dtype.str, zlib.crc32(a.data)]

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
        self.f.write(TAIL.pack(len(body), zlib.crc32(body)) + MAGIC)
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
    """The index, checked (its checksum, every array inside the file, of its type, the
    lengths of a window's arrays agreeing); the arrays are read by each part when its
    metric's first run adopts it (`Saved.read`, `_File`, each checked against its CRC-32),
    from this file even after a newer one replaced it."""
    file = _File(path)
    size = os.fstat(file.fd).st_size
    end = 8 + TAIL.size + 8  # the magics and the tail around an empty index
    if size < end:
        raise ValueError("not a detectkd snapshot (or a torn one)")
    head, magic = os.pread(file.fd, 8, 0), os.pread(file.fd, 8, size - 8)
    if head[:7] == MAGIC[:7] and head != MAGIC and magic == head:
        raise ValueError(f"an older snapshot format ({head.decode()}, this is {MAGIC.decode()})")
    if head != MAGIC or magic != MAGIC:
        raise ValueError("not a detectkd snapshot (or a torn one)")
    length, crc = TAIL.unpack(os.pread(file.fd, TAIL.size, size - 8 - TAIL.size))
    limit = size - 8 - TAIL.size - length
    if limit < 8:
        raise ValueError("index length beyond the file")
    body = os.pread(file.fd, length, limit)
    if zlib.crc32(body) != crc:
        raise ValueError("the index is garbled (its checksum disagrees)")
    index = json.loads(body)
    if index.get("version") != __version__:
        raise ValueError(f"written by detectkd {index.get('version')}, this is {__version__}")

    def block(b: list[Any], want: set[str], where: str) -> Block:
        """The block, which must be of a type in `want` and inside the file."""
        at, count, dtype, crc = int(b[0]), int(b[1]), str(b[2]), int(b[3])
        if dtype not in _DTYPES or at < 8 or count < 0 or at + count * int(dtype[2:]) > limit:
            raise ValueError(f"{where}: bad block {b}")
        if dtype not in want:
            raise ValueError(f"{where}: {dtype} array where {' or '.join(sorted(want))} belongs")
        return at, count, dtype, crc

    out: dict[str, Saved] = {}
    for name, m in index["metrics"].items():
        windows: dict[str, tuple[Block, Block, dict[str, Block]]] = {}
        for series, (t, v, cols) in m["windows"].items():
            at = f"metric {name!r} series {series!r}"
            times, values = block(t, {"<i4", "<i8"}, at + " times"), block(v, {"<f8"}, at + " values")
            features = {c: block(x, {"<f8"}, f"{at} feature {c!r}") for c, x in cols.items()}
            if any(b[1] != times[1] for b in (values, *features.values())):
                raise ValueError(f"{at}: its arrays' lengths disagree ({times[1]} times)")
            windows[series] = (times, values, features)
        states = {  # floats, single (auto's |z|) or double precision
            det: {k: (block(a, {"<f4", "<f8"}, f"metric {name!r} {det} state of {k!r}"),
                      tuple(float(x) for x in sc))
                  for k, (a, sc) in per.items()}
            for det, per in m["states"].items()
        }  # fmt: skip
        out[name] = Saved(str(m["fingerprint"]), int(m["watermark"]), _Part(file, windows, states))
    return out


class _File:
    """A snapshot file open for its parts' reads (plain reads into the arrays a window
    keeps, not a mapping: the file's pages do not count as the daemon's memory); closed
    when the last part that may read it is gone."""

    def __init__(self, path: Path) -> None:
        self.fd = -1
        self.fd = os.open(path, os.O_RDONLY)
        if hasattr(os, "posix_fadvise"):  # the parts are read soon, in the metrics' order
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_WILLNEED)

    def __del__(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)

    def array(self, b: Block) -> np.ndarray:
        at, count, dtype, crc = b
        a = np.empty(count, np.dtype(dtype))
        if count and _read_into(self.fd, a, at) != a.nbytes:
            raise ValueError(f"snapshot file shorter than its index ({count} {dtype} at {at})")
        if zlib.crc32(a.data) != crc:
            raise ValueError(f"snapshot data garbled: the checksum of {count} {dtype} at {at} disagrees")
        return a.astype(dtype[1:], copy=False)  # (native: no copy on a little-endian machine)


def _read_into(fd: int, a: np.ndarray, at: int) -> int:
    """Bytes read from `fd` at `at` into `a` (no copy where the system has `preadv`)."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [a.data.cast("B")], at)
    data = os.pread(fd, a.nbytes, at)
    a.data.cast("B")[: len(data)] = data
    return len(data)


class _Part:
    """A metric's arrays in the file (`Saved`'s source)."""

    __slots__ = ("file", "states", "windows")

    def __init__(
        self,
        file: _File,
        windows: dict[str, tuple[Block, Block, dict[str, Block]]],
        states: dict[str, dict[str, tuple[Block, tuple[float, ...]]]],
    ) -> None:
        self.file, self.windows, self.states = file, windows, states

    def __call__(self) -> tuple[Windows, States]:
        get = self.file.array
        windows = {
            s: (get(t), get(v), {c: get(x) for c, x in f.items()}) for s, (t, v, f) in self.windows.items()
        }
        states = {d: {k: (get(a), sc) for k, (a, sc) in per.items()} for d, per in self.states.items()}
        return windows, states

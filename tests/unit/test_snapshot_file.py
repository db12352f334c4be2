"""The restart snapshot's file: what `save` writes `load` reads back exactly; anything else
(torn, foreign, another version) is refused, logged, and left to the store."""

from __future__ import annotations

import json
import os
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog

from detectkd.runtime import snapshot
from detectkd.runtime.memory import Saved
from detectkd.runtime.windows import EPOCH, SeriesWindow


def part() -> Saved:
    """Times as a window keeps them (seconds from `EPOCH`): 4 bytes, and 8 for a window that
    holds a time beyond 2106."""
    t = (1_795_000_000 - EPOCH + np.arange(5) * 60).astype(np.int32)
    wide = np.array([0, 2**33], np.int64)
    v = np.array([1.0, np.nan, 3.0, -4.0, 5.0])
    s = Saved("fp", 240)
    s.windows = {
        "": (t, v, {"hour": v * 2}),
        "eu/x": (t[:0], v[:0], {"hour": v[:0]}),
        "far": (wide, v[:2], {"hour": v[:2]}),
    }
    s.states = {"auto": {"": (np.array([0.5, np.nan, 2.0], np.float32), (240.0, 1.25, 2.0, 7.0, 3.5, 1.0))}}
    return s


def test_what_is_saved_is_read_back_exactly_and_the_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / snapshot.FILE
    size = snapshot.save(path, {"orders": part(), "other": Saved("fp2", 60)})
    assert size == path.stat().st_size and not path.with_name(path.name + ".tmp").exists()
    back = snapshot.load(path)
    assert path.exists()  # kept: a crash soon after the start catches up from it (runtime.catchup)
    assert set(back) == {"orders", "other"}
    got, want = back["orders"], part()
    assert (got.fingerprint, got.watermark) == ("fp", 240)
    for series, (t, v, f) in want.windows.items():
        gt, gv, gf = got.windows[series]
        assert gt.dtype == t.dtype and np.array_equal(gt, t)
        assert np.array_equal(gv, v, equal_nan=True) and np.array_equal(gf["hour"], f["hour"], equal_nan=True)
    data, scalars = got.states["auto"][""]
    assert data.dtype == np.float32  # auto's |z| ring, single precision as it is kept (issue 28)
    assert np.array_equal(data, want.states["auto"][""][0], equal_nan=True) and scalars == (
        240.0,
        1.25,
        2.0,
        7.0,
        3.5,
        1.0,
    )
    assert back["other"].windows == {} and back["other"].states == {}


@pytest.mark.parametrize("damage", ["torn", "foreign", "version", "bad block", "garbled index"])
def test_an_unusable_file_is_refused_logged_and_removed(tmp_path: Path, damage: str) -> None:
    path = tmp_path / snapshot.FILE
    snapshot.save(path, {"orders": part()})
    raw = path.read_bytes()
    if damage == "torn":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "foreign":
        path.write_bytes(b"PK\x03\x04" + raw[4:])
    elif damage == "version":
        rewrite_index(path, lambda index: index.update(version="0.0.0-other"))
    elif damage == "bad block":
        rewrite_index(path, lambda index: index["metrics"]["orders"]["windows"][""][0].__setitem__(1, 99999))
    else:  # a digit of the watermark changed, the index still valid JSON: its checksum says so
        assert raw.count(b'"watermark": 240') == 1
        path.write_bytes(raw.replace(b'"watermark": 240', b'"watermark": 241'))
    why = {"version": "written by detectkd", "bad block": "bad block", "garbled index": "garbled"}
    with structlog.testing.capture_logs() as logs:
        assert snapshot.load(path) == {}
    assert not path.exists()
    (event,) = logs
    assert event["event"] == "restart snapshot not used" and why.get(damage, "") in event["error"]


def test_a_garbled_array_is_refused_when_its_part_is_read_and_the_others_are_taken(tmp_path: Path) -> None:
    """Issue 28's review: a value garbled in the data region (the index intact) was adopted
    silently. Each array's CRC-32 is checked when its part is read (at its metric's first
    run): that part raises (its metric reads the store, `catchup`), the others are read."""
    path = tmp_path / snapshot.FILE
    s = Saved("fp", 240)
    s.windows = {"": (np.arange(10, dtype=np.int32), np.linspace(1, 10, 10), {})}
    s.states = {"auto": {"": (np.ones(5, np.float32), (0.0, 1.0))}}
    snapshot.save(path, {"m": s, "other": part()})
    raw = bytearray(path.read_bytes())
    raw[8 + 40 : 8 + 48] = b"\xff" * 8  # the first value of m's window (after its 10 times)
    path.write_bytes(bytes(raw))
    parts = snapshot.load(path)  # the index is intact: the start takes it
    with pytest.raises(ValueError, match="checksum"):
        parts["m"].read()
    assert parts["m"].unread
    assert np.array_equal(parts["other"].windows[""][1], part().windows[""][1], equal_nan=True)


@pytest.mark.parametrize("older", [b"DTKSNAP2", b"DTKSNAP3", b"DTKSNAP4"])
def test_a_snapshot_of_an_older_format_is_refused_by_name_and_removed(tmp_path: Path, older: bytes) -> None:
    """Format 2 kept auto's |z| ring in doubles; format 3 in singles and a window's times in 8
    bytes; format 4 in the 4 bytes a window keeps (issue 28); format 5 adds a checksum to every
    array and to the index. An older file (left by a build before) is not read: one log line
    says why, the store is read."""
    path = tmp_path / snapshot.FILE
    snapshot.save(path, {"orders": part()})
    raw = path.read_bytes()
    assert raw[:8] == raw[-8:] == b"DTKSNAP5"
    path.write_bytes(older + raw[8:-8] + older)
    with structlog.testing.capture_logs() as logs:
        assert snapshot.load(path) == {}
    assert not path.exists()
    (event,) = logs
    assert event["event"] == "restart snapshot not used"
    assert event["error"] == f"an older snapshot format ({older.decode()}, this is DTKSNAP5)"


def big(n: int, points: int = 2000) -> dict[str, Saved]:
    """`n` metrics of one `auto` series: a window of `points` and a ring of as many |z|."""
    out = {}
    for i in range(n):
        s = Saved("fp", 240)
        t = (1_795_000_000 - EPOCH + np.arange(points) * 60).astype(np.int32)
        s.windows = {"": (t, np.full(points, float(i)), {})}
        s.states = {"auto": {"": (np.ones(points, np.float32), (0.0,) * 6)}}
        out[f"m{i}"] = s
    return out


def test_a_start_reads_the_index_and_each_part_when_it_is_adopted_into_the_arrays_its_window_keeps(
    tmp_path: Path,
) -> None:
    """Issue 28: the parts of every metric are not all in memory at once beside the windows
    that take them (they were: 40 KB a metric, 390 MiB for 10,000 `auto` metrics); a part is
    read at its metric's first run straight into the arrays its window keeps (4-byte times,
    no 8-byte copy on the way), once, also after a newer snapshot replaced the file."""
    path = tmp_path / snapshot.FILE
    snapshot.save(path, big(200))  # 200 x (8 + 16 + 8) KB of arrays
    tracemalloc.start()
    try:
        parts = snapshot.load(path)
        loaded, _ = tracemalloc.get_traced_memory()
        assert loaded < 1 << 20, loaded  # the index: no array (6.3 MiB of them) read yet
        snapshot.save(path, big(1, 10))  # a newer snapshot replaces the file: the old one is read
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        window = SeriesWindow(10**9, ())
        part = parts.pop("m7")
        times, values, _ = part.windows[""]
        window.take(times, values, {})
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    arrays = 2000 * (4 + 8 + 4)  # times, values, the |z| ring: held once
    assert after - before < arrays + 4096, after - before  # + the window and the part objects
    assert peak - after < 12_000, (
        peak - after
    )  # no second copy on the way: `take`'s order check (10 KB, freed)
    assert np.shares_memory(window.saved()[0], times) and times.dtype == np.int32  # kept as read
    assert float(window.history().values[0]) == 7.0 and window.last_time == 1_795_000_000 + 1999 * 60
    assert part.windows[""][0] is times  # read once
    assert float(parts["m199"].states["auto"][""][0][0]) == 1.0


def test_a_part_that_cannot_be_read_any_more_says_so_and_stays_unread(tmp_path: Path) -> None:
    path = tmp_path / snapshot.FILE
    snapshot.save(path, big(3, 10))
    parts = snapshot.load(path)
    with path.open("r+b") as f:  # cut in place (not replaced): the reads find less than the index
        f.truncate(64)
    with pytest.raises(ValueError, match="shorter than its index"):
        parts["m2"].read()
    with pytest.raises(ValueError, match="shorter than its index"):
        parts["m2"].read()  # still not read: the store is read instead (`catchup`)


def test_no_file_is_no_snapshot(tmp_path: Path) -> None:
    assert snapshot.load(tmp_path / snapshot.FILE) == {}


def rewrite_index(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Change the JSON index of a snapshot file and write it back (a crafted file)."""
    raw = path.read_bytes()
    tail = len(raw) - 8 - snapshot.TAIL.size
    length, _ = snapshot.TAIL.unpack(raw[tail:-8])
    index = json.loads(raw[tail - length : tail])
    edit(index)
    body = json.dumps(index).encode()
    path.write_bytes(raw[: tail - length] + body + snapshot.TAIL.pack(len(body), zlib.crc32(body)) + raw[-8:])


@pytest.mark.parametrize(
    "craft",
    ["short values", "short feature", "float times", "integer values", "integer state"],
)
def test_arrays_that_disagree_with_their_index_are_refused(tmp_path: Path, craft: str) -> None:
    path = tmp_path / snapshot.FILE
    snapshot.save(path, {"orders": part()})

    def edit(index: dict[str, Any]) -> None:
        t, v, cols = index["metrics"]["orders"]["windows"][""]
        state = index["metrics"]["orders"]["states"]["auto"][""][0]
        if craft == "short values":
            v[1] = 3  # inside the file, but 3 values for 5 times
        elif craft == "short feature":
            cols["hour"][1] = 4
        elif craft == "float times":
            t[2] = "<f8"
        elif craft == "integer values":
            v[2] = "<i8"
        else:
            state[2] = "<i8"

    rewrite_index(path, edit)
    with structlog.testing.capture_logs() as logs:
        assert snapshot.load(path) == {}  # the store is read instead
    (event,) = logs
    assert event["event"] == "restart snapshot not used" and "'orders'" in event["error"]


def test_a_system_without_preadv_reads_the_parts_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / snapshot.FILE
    want = big(2, 10)
    snapshot.save(path, want)
    monkeypatch.delattr(os, "preadv", raising=False)
    parts = snapshot.load(path)
    times, values, _ = parts["m1"].windows[""]
    assert np.array_equal(times, want["m1"].windows[""][0]) and values.tolist() == [1.0] * 10
    assert parts["m1"].states["auto"][""][0].tolist() == [1.0] * 10

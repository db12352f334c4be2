"""`detectkd silence add | list | expire`: silences in the daemon's store.

The CLI writes to the same store the daemon reads (detectkd.yaml
`storage`); the daemon picks changes up within `silence_refresh` (10 s).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

from detectkd.alerting.silences import (
    Silence,
    SilenceError,
    Silences,
    load_silences,
    make_window,
    new_silence,
)
from detectkd.config.settings import Settings
from detectkd.durations import parse_moment
from detectkd.errors import StorageError
from detectkd.storage.base import Store
from detectkd.storage.factory import daemon_store


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sil = sub.add_parser("silence", help="add, list or expire silences and maintenance windows")
    ops = sil.add_subparsers(dest="op", required=True)
    add = ops.add_parser("add", help="add a silence; prints its id")
    add.add_argument("matchers", nargs="+", help="metric=orders, tag=shop, region=~eu-.*, host!=db1")
    add.add_argument("--for", dest="duration", help="how long, from now or --start (e.g. 2h)")
    add.add_argument("--start", help="start time (ISO 8601; default: now)")
    add.add_argument("--until", help="end time (ISO 8601)")
    add.add_argument("--weekdays", help="recurring window: days (mon-fri, sat,sun)")
    add.add_argument(
        "--times", action="append", default=[], help="recurring window: HH:MM-HH:MM (repeatable)"
    )
    add.add_argument("--timezone", default="UTC", help="IANA timezone of --weekdays/--times")
    add.add_argument("--comment", default="")
    add.add_argument("--author", default=None, help="default: the current user")
    add.add_argument("--config")
    lst = ops.add_parser("list", help="list silences that are not over (with --all: every one)")
    lst.add_argument("--all", action="store_true")
    lst.add_argument("--config")
    exp = ops.add_parser("expire", help="end silences now")
    exp.add_argument("ids", nargs="+")
    exp.add_argument("--config")


def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    try:
        return asyncio.run(_run(args, settings, out))
    except (SilenceError, ValueError) as exc:
        print(f"detectkd silence: {exc}", file=sys.stderr)
        return 2
    except StorageError as exc:
        print(f"detectkd silence: store: {exc}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    store = daemon_store(settings)
    await store.open()
    try:
        if args.op == "add":
            s = build(args, time.time())
            Silences({x.id: x for x in await load(store)}).admit(s, time.time())  # the caps
            await store.silence_save(s.id, s.to_json(), s.over_at)
            print(s.id, file=out)
            return 0
        if args.op == "list":
            for s in await load(store):
                if args.all or s.current(time.time()):
                    print(describe(s), file=out)
            return 0
        return await expire(store, args.ids, out)
    finally:
        await store.close()


def build(args: argparse.Namespace, now: float) -> Silence:
    start = parse_moment(args.start) if args.start else now
    end = parse_moment(args.until) if args.until else None
    window = None
    if args.weekdays or args.times:
        window = make_window([args.weekdays] if args.weekdays else [], args.times, args.timezone)
    author = args.author if args.author is not None else getpass.getuser()
    return new_silence(args.matchers, start, end, args.comment, author, window, args.duration)


async def load(store: Store) -> list[Silence]:
    silences, problems = load_silences(await store.silences_load())
    for problem in problems:
        print(f"detectkd silence: unreadable silence skipped: {problem}", file=sys.stderr)
    return silences


async def expire(store: Store, ids: list[str], out: TextIO) -> int:
    known = {s.id: s for s in await load(store)}
    missing = [i for i in ids if i not in known]
    now = time.time()
    for i in ids:
        if i in known:
            s = known[i].expire(now)
            await store.silence_save(s.id, s.to_json(), s.over_at)
            print(f"expired {i}", file=out)
    for i in missing:
        print(f"detectkd silence: no silence {i!r}", file=sys.stderr)
    return 1 if missing else 0


def describe(s: Silence) -> str:
    def iso(ts: float | None) -> str:
        return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    parts = [s.id, " ".join(map(str, s.matchers)), f"from {iso(s.starts_at)}", f"until {iso(s.ends_at)}"]
    if s.window is not None:
        w = s.window
        times = ",".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in w.times) or "all day"
        parts.append(f"every {','.join(w.weekdays)} {times} {w.timezone}")
    if s.expired_at is not None:
        parts.append(f"expired {iso(s.expired_at)}")
    if s.comment:
        parts.append(f"# {s.comment}")
    if s.created_by:
        parts.append(f"by {s.created_by}")
    return "  ".join(parts)

"""The daemon's silences, kept in step with the store.

Others write silences into the store too (`detectkd silence`, another replica, the
supervisor through every worker), so the daemon looks every `silence_refresh` (10 s).
Looking is one cheap query (`silences_version`); only when the set changed are the
documents read, and only a document not seen before is parsed and its regexes compiled,
in a thread (`asyncio.to_thread`): 2,000 unchanged silences cost the event loop nothing,
where reading and compiling them all on it stalled it 2.4 s every 10 s. A full read
happens anyway every `FULL_READ_S` (a writer whose clock is behind keeps the newest
`updated_at` as it was). Silences over for longer than `RETENTION_S` are purged hourly.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Mapping

import structlog

from detectkd.alerting.silences import RETENTION_S, Silence, Silences, load_silences
from detectkd.errors import StorageError
from detectkd.storage.base import StateStore

log = structlog.get_logger("detectkd")

FULL_READ_S = 300.0
PURGE_EVERY_S = 3600.0


def parse_new(
    texts: Iterable[str], known: Mapping[str, Silence | None]
) -> tuple[dict[str, Silence | None], list[str]]:
    """Each stored document -> its silence (None: unreadable), the ones in `known` reused;
    and the problems of the unreadable documents not seen before."""
    parsed: dict[str, Silence | None] = {}
    problems: list[str] = []
    for text in texts:
        if text in known:
            parsed[text] = known[text]
            continue
        loaded, bad = load_silences([text])
        parsed[text] = loaded[0] if loaded else None
        problems.extend(bad)
    return parsed, problems


class SilenceSync:
    def __init__(
        self,
        silences: Silences,
        store: StateStore,
        on_unreadable: Callable[[int], object] = lambda n: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.silences = silences
        self.store = store
        self.on_unreadable = on_unreadable  # how many stored silences are skipped (a gauge)
        self.clock = clock
        self._known: dict[str, Silence | None] = {}  # by stored document
        self._version: str | None = None
        self._read_at = -math.inf
        self._purged_at = -math.inf
        self.reads = 0  # full reads of the documents (a test counts them)

    async def refresh(self, force: bool = False) -> None:
        """Read the silences again if they changed (or `force`). A store error is logged and
        the silences the daemon has are kept."""
        now = self.clock()
        if now - self._purged_at >= PURGE_EVERY_S:
            self._purged_at = now
            try:
                await self.purge(time.time())
            except StorageError as exc:  # the silences are read all the same
                log.warning("ended silences not purged", error=str(exc))
        try:
            version = await self.store.silences_version()
            if not force and version == self._version and now - self._read_at < FULL_READ_S:
                return
            texts = await self.store.silences_load()
        except StorageError as exc:
            log.warning("silences not refreshed", error=str(exc))
            return
        known, problems = await asyncio.to_thread(parse_new, texts, self._known)
        for problem in problems:
            log.warning("unreadable silence skipped", error=problem[:500])
        self._known, self._version, self._read_at = known, version, now
        self.reads += 1
        self.on_unreadable(sum(1 for s in known.values() if s is None))
        self.silences.replace_all(s for s in known.values() if s is not None)

    async def save(self, s: Silence) -> None:
        """Saved and in use at once. Raises SilenceLimitError (nothing saved) for a new silence
        when MAX_SILENCES are not over yet, or StorageError."""
        self.silences.admit(s, time.time())
        await self.store.silence_save(s.id, s.to_json(), s.over_at)
        self.silences.put(s)

    async def purge(self, wall_now: float) -> int:
        """Delete the silences over before `wall_now - RETENTION_S`. Raises StorageError."""
        gone = await self.store.silences_purge(wall_now - RETENTION_S)
        if gone:
            log.info("ended silences purged", count=gone, retention_days=RETENTION_S / 86400)
        return gone

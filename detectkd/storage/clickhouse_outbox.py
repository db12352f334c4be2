"""The ClickHouse store's outbox: a queue on a ReplacingMergeTree (no row locks, no UPDATE).

Every change of a row (a claim's lease, a retry, `sent`) is a newer version of it, read with
FINAL; a channel change is a new row, the old one marked `moved`. Claims are exclusive per
database within one process (a lock): several daemons sharing one ClickHouse keep their
outbox in PostgreSQL. Sent and moved rows are kept a week so a re-run never writes a key
again, then deleted with every version (`outbox_purge`). The store's `_do` maps errors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from detectkd.storage.base import OutboxItem, OutboxStats, OutboxStatus, RunRecord, eligible
from detectkd.storage.clickhouse_docs import wait_for_mutations
from detectkd.storage.clickhouse_schema import ALL_OUTBOX_COLS, OUTBOX_COLS

# Claims are exclusive per database within this process (ClickHouse has no row locks).
_CLAIM_LOCKS: dict[str, asyncio.Lock] = {}


def claim_lock(path: str) -> asyncio.Lock:
    """The one claim lock of the store at `path` in this process."""
    return _CLAIM_LOCKS.setdefault(path, asyncio.Lock())


def _or_none(text: str) -> str | None:
    return text or None


class ClickhouseOutbox:
    _do: Callable[..., Awaitable[Any]]  # the store's: fn(client), errors mapped
    _version: Callable[[], int]
    _claim_lock: asyncio.Lock
    database: str
    path: str

    async def _insert_outbox(self, run: RunRecord) -> None:
        keys = [o.key for o in run.outbox]
        existing = await self._do(
            lambda c: c.fetch(
                "SELECT key, channel FROM dtk_outbox FINAL WHERE has({keys}, key)", params={"keys": keys}
            )
        )
        have = {(r["key"], r["channel"]) for r in existing}
        now = time.time()
        rows = []
        for o in run.outbox:
            if (o.key, o.channel) in have:
                continue
            item_id = self._version()
            row = (item_id, o.key, o.metric, o.series, o.channel, o.payload, now, 0, now, "", "pending", 0.0)
            rows.append((*row, item_id, ""))  # version, leased_by
        if rows:
            await self._do(lambda c: c.execute("INSERT INTO dtk_outbox VALUES", *rows))

    async def _outbox_rows(self, where: str, params: dict[str, Any] | None = None) -> list[Any]:
        rows: list[Any] = await self._do(
            lambda c: c.fetch(
                f"SELECT {OUTBOX_COLS}, leased_by FROM dtk_outbox FINAL WHERE {where} ORDER BY id",
                params=params or {},
            )
        )
        return rows

    @staticmethod
    def _item(r: Any) -> OutboxItem:
        return OutboxItem(
            int(r["id"]),
            r["key"],
            r["metric"],
            r["series"],
            str(r["channel"]),
            r["payload"],
            int(r["attempts"]),
            r["created_at"],
            r["next_attempt_at"],
            _or_none(r["last_error"]),
            r["status"],
        )

    async def _update(self, item_id: int, **changes: Any) -> None:
        (row,) = await self._outbox_rows("id = {i}", {"i": item_id})
        values = {**dict(row.items()), **changes, "version": self._version()}
        record = tuple(values[c] for c in ALL_OUTBOX_COLS)
        await self._do(lambda c: c.execute("INSERT INTO dtk_outbox VALUES", record))

    async def outbox_claim(
        self,
        now: float,
        lease_s: float,
        limit: int,
        metric: str | None = None,
        owner: str = "",
        sent: Collection[int] = (),
    ) -> list[OutboxItem]:
        async with self._claim_lock:
            where = "status = 'pending'" + (" AND metric = {m}" if metric is not None else "")
            rows = await self._outbox_rows(where, {"m": metric} if metric is not None else None)
            leases = [(self._item(r), r["leased_until"] or None) for r in rows]
            items = eligible(leases, now, limit, sent)
            for item in items:
                await self._update(item.id, leased_until=now + lease_s, leased_by=owner)
            return items

    async def outbox_release(self, owner: str, ids: Collection[int] | None = None) -> int:
        async with self._claim_lock:
            rows = await self._outbox_rows(
                "status = 'pending' AND leased_by = {o} AND leased_until > 0", {"o": owner}
            )
            rows = [r for r in rows if ids is None or int(r["id"]) in ids]
            for r in rows:
                await self._update(int(r["id"]), leased_until=0.0)
            return len(rows)

    async def outbox_pending(self, status: str = OutboxStatus.PENDING) -> list[OutboxItem]:
        status = OutboxStatus(status).value  # a plain str for the driver
        return [self._item(r) for r in await self._outbox_rows("status = {s}", {"s": status})]

    async def outbox_history(self, metric: str, since: float) -> list[OutboxItem]:
        where = "metric = {m} AND created_at >= {t} AND status != 'moved'"  # moved: re-written as another
        rows = await self._outbox_rows(where, {"m": metric, "t": since})
        return [self._item(r) for r in rows]

    async def outbox_done(self, item_id: int) -> None:
        # Kept as `sent` (a re-run of the same periods must not write it again) until
        # `outbox_purge`; next_attempt_at records when it was sent.
        await self._update(
            item_id, status=OutboxStatus.SENT.value, leased_until=0.0, next_attempt_at=time.time()
        )

    async def outbox_rechannel(self, metric: str, renames: dict[str, str]) -> int:
        """The channel is in the sorting key: each moved row is written anew under the new
        channel (a new id) and its old version is marked `moved` (purged like `sent`)."""
        rows = await self._outbox_rows(
            "status = 'pending' AND metric = {m} AND has({old}, channel)", {"m": metric, "old": list(renames)}
        )
        for r in rows:
            item_id = self._version()
            values = {**dict(r.items()), "id": item_id, "channel": renames[r["channel"]], "version": item_id}
            record = tuple(values[c] for c in ALL_OUTBOX_COLS)
            await self._do(lambda c, record=record: c.execute("INSERT INTO dtk_outbox VALUES", record))
            await self._update(int(r["id"]), status=OutboxStatus.MOVED.value, next_attempt_at=time.time())
        return len(rows)

    async def outbox_purge(self, sent_before: float) -> int:
        """Delete the rows sent before `sent_before`, every version of them (a mutation that
        matched only the `sent` version would bring the older `pending` one back)."""
        rows = await self._do(
            lambda c: c.fetch(
                "SELECT id FROM dtk_outbox FINAL WHERE status IN ('sent', 'moved') AND next_attempt_at < {b}",
                params={"b": sent_before},
            )
        )
        ids = [int(r["id"]) for r in rows]
        for lo in range(0, len(ids), 2_000):  # well under max_query_size (256 KiB)
            chunk = ids[lo : lo + 2_000]
            await self._do(
                lambda c, chunk=chunk: c.execute(
                    "ALTER TABLE dtk_outbox DELETE WHERE has({ids}, id)", params={"ids": chunk}
                )
            )
        if ids:
            await wait_for_mutations(self._do, self.database, ["dtk_outbox"], self.path)
        return len(ids)

    async def outbox_retry(self, item_id: int, error: str, next_attempt_at: float, dead: bool) -> None:
        (row,) = await self._outbox_rows("id = {i}", {"i": item_id})
        await self._update(
            item_id,
            attempts=int(row["attempts"]) + 1,
            last_error=error,
            next_attempt_at=next_attempt_at,
            status=(OutboxStatus.DEAD if dead else OutboxStatus.PENDING).value,
            leased_until=0.0,
        )

    async def outbox_stats(self) -> OutboxStats:
        rows = await self._do(
            lambda c: c.fetch(
                "SELECT countIf(status = 'pending') AS pending, countIf(status = 'dead') AS dead, "
                "minIf(created_at, status = 'pending') AS oldest, "
                "minIf(greatest(next_attempt_at, leased_until), status = 'pending') AS due "
                "FROM dtk_outbox FINAL"
            )
        )
        r = rows[0]
        pending = int(r["pending"])
        return OutboxStats(
            pending, int(r["dead"]), r["oldest"] if pending else None, r["due"] if pending else None
        )

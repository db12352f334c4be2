"""A metric's channels, and which of them an outbox row goes to.

Outbox rows name their channel by the alerter's stable id (`type:digest`
of its parameters, see `AlerterSpec.id`), never by its position, so
reordering a metric's alerters sends nothing to the wrong channel.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from detectkd.alerting.channels.base import Channel


@dataclass(frozen=True)
class Bound:
    id: str
    type: str
    channel: Channel


class ChannelSet:
    def __init__(self, bound: Iterable[Bound] = ()) -> None:
        self.bound = list(bound)  # in file order
        self._by_id = {b.id: b.channel for b in self.bound}

    def __len__(self) -> int:
        return len(self.bound)

    def get(self, row: str) -> Channel | None:
        """The channel for an outbox row's channel id: the alerter with that id; for a row
        written before ids existed (`"0"`, `"1"`), the alerter at that position. Otherwise
        none (the alerter was removed or edited across a restart; a reload carries rows to
        an alerter edited in place, see `runtime.reload.channel_renames`): the row waits and
        is dead-lettered after `alert_retry_for`."""
        found = self._by_id.get(row)
        if found is None and row.isdigit() and int(row) < len(self.bound):
            return self.bound[int(row)].channel
        return found

"""Shards: which metrics a replica runs, by a stable hash of the metric's name.

`shard: I/N` (`detectkd run --shard I/N`, `DETECTK_SHARD=I/N`) runs the metrics whose
hash falls in shard I of N. The hash is Prometheus's `hashmod`: the MD5 of the name, its
last 8 bytes read as a big-endian unsigned 64-bit integer, modulo N. It depends on the
name only, so every replica, every restart and every release agrees on the split; a
metric moves only when N changes (then about (N-1)/N of them do, as with hashmod).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_FORM = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def name_hash(name: str) -> int:
    """Prometheus's hashmod sum: MD5, low 8 bytes, big-endian."""
    return int.from_bytes(hashlib.md5(name.encode()).digest()[8:], "big")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @staticmethod
    def parse(text: str) -> Shard:
        """`I/N` with 0 <= I < N; raises ValueError naming the accepted form."""
        m = _FORM.match(text)
        if m is None:
            raise ValueError(f"not a shard: {text!r} (use I/N, e.g. 0/2: the first of two shards)")
        index, count = int(m[1]), int(m[2])
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"shard {text!r}: I must be 0 <= I < N (0/{max(count, 1)} is the first)")
        return Shard(index, count)

    def owns(self, name: str) -> bool:
        return name_hash(name) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


ALL = Shard(0, 1)

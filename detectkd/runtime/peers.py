"""Peer verification: is an anomaly this series' own (isolated) or shared with its peers?

Each series' deviation at a period is read from its own detector result, in
units of its alarm line: d = (x - expected) / (upper - expected) above the
expectation, (x - expected) / (expected - lower) below it, so |d| = 1 on the
band and the sign is the direction. Comparing deviations, not raw values,
lets a station at 1,500 m and one at the coast, or a big host and a small
one, be peers.

For an anomalous series, among its peers that have a deviation this period:
share = (peers with the same sign and |d| >= `deviation`) / (peers judged).
`shared` when share >= `shared_share`, `isolated` below it, `unknown` when
fewer than `min_peers` peers could be judged.

Peers: every other series of the metric (`mode: all`), or the `k` nearest by
great-circle distance (`mode: nearest`), within `radius_km`, and with
|attribute difference| <= `max_attribute_difference` when an attribute is set.
Coordinates come from the query's latitude/longitude columns or a static
`entities` CSV file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from detectkd.config.models import Peers
from detectkd.detectors.base import Result
from detectkd.specs.entities import Entity, number

PeerClass = Literal["isolated", "shared", "unknown"]
EARTH_KM = 6371.0088


@dataclass(frozen=True)
class Classification:
    kind: PeerClass
    share: float  # of judged peers deviating the same way
    peers: int  # judged peers

    def as_extra(self) -> dict[str, Any]:
        return {"peers": self.kind, "peer_share": round(self.share, 3), "peers_judged": self.peers}


def deviation(results: list[Result]) -> float | None:
    """The largest signed deviation, in alarm lines, of the results that carry bounds."""
    best: float | None = None
    for r in results:
        if r.skipped is not None or r.value is None or r.expected is None:
            continue
        x, e = r.value, r.expected
        edge = r.upper if x >= e else r.lower
        if edge is None:
            continue
        width = abs(edge - e)
        d = (x - e) / width if width > 0 else (0.0 if x == e else math.copysign(math.inf, x - e))
        if best is None or abs(d) > abs(best):
            best = d
    return best


def classify(own: float, others: list[float], p: Peers) -> Classification:
    """`own`: the anomalous series' deviation; `others`: its peers' deviations this period."""
    if len(others) < p.min_peers:
        return Classification("unknown", 0.0, len(others))
    same = sum(1 for d in others if d * own > 0 and abs(d) >= p.deviation)
    share = same / len(others)
    return Classification("shared" if share >= p.shared_share else "isolated", share, len(others))


def passes(c: Classification | None, required: str) -> bool:
    return required == "any" or c is None or c.kind in (required, "unknown")


class PeerGraph:
    """Who is whose peer; the neighbour lists are recomputed only when coordinates change."""

    def __init__(self, p: Peers, entities: dict[str, Entity] | None = None) -> None:
        self.p = p
        self.entities: dict[str, Entity] = dict(entities or {})
        self._static = entities is not None
        self._neighbours: dict[str, list[str]] | None = None

    def observe(self, series: str, context: dict[str, Any]) -> None:
        """Coordinates (and the attribute) from a row's columns, when no entity file is used."""
        if self._static or self.p.mode != "nearest":
            return
        lat, lon = number(context.get(self.p.latitude_column)), number(context.get(self.p.longitude_column))
        attrs = {}
        if self.p.attribute is not None and (a := number(context.get(self.p.attribute))) is not None:
            attrs[self.p.attribute] = a
        entity = Entity(lat, lon, attrs)
        if self.entities.get(series) != entity:
            self.entities[series] = entity
            self._neighbours = None

    def forget(self, series: str) -> None:
        if not self._static and self.entities.pop(series, None) is not None:
            self._neighbours = None

    def peers_of(self, series: str, present: list[str]) -> list[str]:
        if self.p.mode == "all":
            return [s for s in present if s != series]
        if self._neighbours is None:
            self._neighbours = self._nearest()
        return self._neighbours.get(series, [])

    def _nearest(self) -> dict[str, list[str]]:
        located = [
            (k, e.latitude, e.longitude)
            for k, e in sorted(self.entities.items())
            if e.latitude is not None and e.longitude is not None
        ]
        if not located:
            return {}
        keys = [k for k, _, _ in located]
        lat = np.radians(np.array([la for _, la, _ in located], dtype=np.float64))
        lon = np.radians(np.array([lo for _, _, lo in located], dtype=np.float64))
        attr = self.p.attribute
        values = np.array(
            [self.entities[k].attributes.get(attr, math.nan) if attr else 0.0 for k in keys], dtype=np.float64
        )
        out: dict[str, list[str]] = {}
        for i, key in enumerate(keys):  # one row at a time: memory O(N), not O(N^2)
            dist = _haversine_km(lat[i], lon[i], lat, lon)
            ok = np.ones(len(keys), bool)
            ok[i] = False
            if self.p.radius_km is not None:
                ok &= dist <= self.p.radius_km
            if attr is not None and self.p.max_attribute_difference is not None:
                ok &= np.abs(values - values[i]) <= self.p.max_attribute_difference  # NaN: never a peer
            idx = np.flatnonzero(ok)
            nearest = idx[np.argsort(dist[idx], kind="stable")[: self.p.k]]
            out[key] = [keys[j] for j in nearest]
        return out


def _haversine_km(lat0: float, lon0: float, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    a = np.sin((lat - lat0) / 2) ** 2 + np.cos(lat0) * np.cos(lat) * np.sin((lon - lon0) / 2) ** 2
    return np.asarray(2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))

"""Generated weather-station data: a 4 x 4 grid of stations, hourly temperatures with a daily
cycle and weather shared by the region, sensor faults on single stations and a cold front
that crosses the whole grid. Used by the peer-verification tests."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HOUR = 3600
DAYS = 10
T0 = 1_790_000_000 - 1_790_000_000 % 86400  # midnight UTC
LAST_DAY = (DAYS - 1) * 24  # index of the first hour of the last day


@dataclass(frozen=True)
class Station:
    name: str
    row: int
    col: int  # 0 = west

    @property
    def latitude(self) -> float:
        return 50.0 + 0.2 * self.row

    @property
    def longitude(self) -> float:
        return 8.0 + 0.3 * self.col


@dataclass
class Scenario:
    """Which station has which fault, and the hours (indexes) each event covers."""

    stations: list[Station]
    spike: tuple[str, range] = ("s03", range(LAST_DAY + 2, LAST_DAY + 4))
    stuck: tuple[str, range] = ("s30", range(LAST_DAY + 5, LAST_DAY + 13))
    drift: tuple[str, range] = ("s11", range(LAST_DAY + 2, LAST_DAY + 11))
    front_start: int = LAST_DAY + 14  # column 0 is hit then, column c c hours later
    values: dict[str, list[float]] = field(default_factory=dict)

    def front_hits(self, s: Station) -> int:
        return self.front_start + s.col

    def faulty(self) -> set[str]:
        return {self.spike[0], self.stuck[0], self.drift[0]}


def generate(seed: int = 7) -> Scenario:
    rng = np.random.default_rng(seed)
    stations = [Station(f"s{r}{c}", r, c) for r in range(4) for c in range(4)]
    sc = Scenario(stations)
    n = DAYS * 24
    weather = np.repeat(rng.normal(0, 0.5, DAYS), 24)  # a warmer or colder day, for everyone
    for s in stations:
        base = 9.0 + 0.4 * s.row + rng.normal(0, 0.5)
        hours = np.arange(n)
        temp = base + 6 * np.sin(2 * math.pi * (hours - 9) / 24) + weather + rng.normal(0, 0.3, n)
        if s.name == sc.spike[0]:
            temp[list(sc.spike[1])] += 12.0
        if s.name == sc.stuck[0]:
            temp[list(sc.stuck[1])] = temp[sc.stuck[1].start - 1]
        if s.name == sc.drift[0]:
            temp[list(sc.drift[1])] += 1.2 * (np.arange(len(sc.drift[1])) + 1)
        temp[sc.front_hits(s) :] -= 9.0  # the cold front arrives and stays
        sc.values[s.name] = [round(float(v), 2) for v in temp]
    return sc


def write_sqlite(sc: Scenario, path: Path, hours: int | None = None) -> None:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS obs (period_time TEXT, station TEXT, latitude REAL, "
        "longitude REAL, value REAL)"
    )
    rows = [
        (T0 + i * HOUR, s.name, s.latitude, s.longitude, v)
        for s in sc.stations
        for i, v in enumerate(sc.values[s.name][:hours])
    ]
    conn.executemany("INSERT INTO obs VALUES (datetime(?, 'unixepoch'), ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()

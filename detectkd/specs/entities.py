"""Static coordinates and attributes per series for peer verification (`peers.entities`)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detectkd.collectors.points import series_key
from detectkd.config.models import Peers


@dataclass(frozen=True)
class Entity:
    latitude: float | None
    longitude: float | None
    attributes: dict[str, float]


def load_entities(path: Path, series_columns: tuple[str, ...], p: Peers) -> dict[str, Entity]:
    """Series key -> coordinates and attributes, from a CSV with a header row."""
    out: dict[str, Entity] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in series_columns if c not in header]
        if missing:
            raise ValueError(f"{path}: no column {missing[0]!r} (the metric's series columns)")
        for line, row in enumerate(reader, start=2):
            key = series_key({c: row[c] for c in series_columns})
            try:
                out[key] = Entity(
                    number(row.get(p.latitude_column)),
                    number(row.get(p.longitude_column)),
                    {k: v for k, raw in row.items() if k and (v := number(raw)) is not None},
                )
            except ValueError as exc:
                raise ValueError(f"{path}:{line}: {exc}") from None
    return out


def number(raw: Any) -> float | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None

"""A metric's detectors built under its calendar (`detectkd.detectors.calendared`): the one
place the daemon, `detectkd check`, backtests and replays build them, so a calendar means
the same everywhere."""

from __future__ import annotations

from detectkd.detectors import registry
from detectkd.detectors.base import Detector
from detectkd.detectors.calendared import calendared
from detectkd.specs.loader import MetricSpec


def build_detectors(spec: MetricSpec, step: int) -> list[Detector]:
    out: list[Detector] = []
    for d in spec.detectors:
        kind = registry.lookup(d.type)
        assert kind is not None  # validated at load
        out.append(calendared(kind.build(d.params, step, d.id), spec.calendar))
    return out

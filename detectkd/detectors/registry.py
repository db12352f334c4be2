"""Detector types by name: params model and constructor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from detectkd.detectors import robust, threshold
from detectkd.detectors.base import Detector

Builder = Callable[[Any, int, str], Detector]


@dataclass(frozen=True)
class DetectorType:
    params: type[BaseModel]
    build: Builder


DETECTORS: dict[str, DetectorType] = {
    "threshold": DetectorType(threshold.Params, lambda p, interval, did: threshold.ThresholdDetector(p, did)),
    "zscore": DetectorType(
        robust.Params, lambda p, interval, did: robust.RobustDetector("zscore", p, interval, did)
    ),
    "mad": DetectorType(
        robust.Params, lambda p, interval, did: robust.RobustDetector("mad", p, interval, did)
    ),
}


def lookup(kind: str) -> DetectorType | None:
    return DETECTORS.get(kind)

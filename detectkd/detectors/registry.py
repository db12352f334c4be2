"""Detector types by name: params model and constructor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from detectkd.detectors import auto, autoparams, forecast, robust, simple, threshold
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
    "seasonal": DetectorType(robust.SeasonalParams, robust.build_seasonal),
    "auto": DetectorType(autoparams.Params, auto.build),
    "forecast": DetectorType(forecast.Params, forecast.build),
    "iqr": DetectorType(simple.IqrParams, lambda p, interval, did: simple.IqrDetector(p, did)),
    "change": DetectorType(
        simple.ChangeParams, lambda p, interval, did: simple.ChangeDetector(p, interval, did)
    ),
    "flatline": DetectorType(simple.FlatlineParams, lambda p, interval, did: simple.FlatlineDetector(p, did)),
    "missing_data": DetectorType(
        simple.MissingParams, lambda p, interval, did: simple.MissingDataDetector(p, interval, did)
    ),
}


def lookup(kind: str) -> DetectorType | None:
    return DETECTORS.get(kind)

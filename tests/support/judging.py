"""The judging core set up from a metric file: its memory and its context, no store."""

from __future__ import annotations

from pathlib import Path

from detectkd.detectors import registry
from detectkd.runtime.judge import JudgeContext
from detectkd.runtime.memory import SeriesMemory
from detectkd.specs.loader import load_metrics
from detectkd.timegrid import Grid
from tests.support.files import write

STEP = 600
T0 = 1_795_000_000 - 1_795_000_000 % STEP

METRIC = """\
name: orders
schedule: {interval: 10m}
collector:
  type: sqlite
  params: {database: /nonexistent.db, query: "SELECT 1 AS value"}
detector:
  type: mad
  params: {window_size: 100, n_sigma: 4, use_weighted: false, min_samples: 20}
alerters:
  - {type: webhook, params: {url: 'http://a.example/'}}
  - {type: log}
"""


def setup(tmp_path: Path, text: str = METRIC, name: str = "orders") -> tuple[SeriesMemory, JudgeContext]:
    write(tmp_path / "m" / f"{name}.yaml", text)
    spec = load_metrics([tmp_path / "m"], None, env={}).metrics[name]
    grid = Grid(spec.config.schedule.interval)
    detectors = [registry.DETECTORS[d.type].build(d.params, grid.step, d.id) for d in spec.detectors]
    memory = SeriesMemory(detectors, grid, grid.tz)
    return memory, JudgeContext.of(spec, detectors, grid)

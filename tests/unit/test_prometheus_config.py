"""A `prometheus` metric file resolves like any other: series keyed by labels unless
`series_columns` names them, peers allowed, and an entity file needs named columns."""

from __future__ import annotations

from pathlib import Path

from detectkd.collectors.promapi import LABELS
from detectkd.specs.loader import load_metrics
from tests.support.files import write

BASE = """name: orders
schedule: {interval: 1h}
collector:
  type: prometheus
  params: {url: "http://prom:9090", query: "sum by (region) (increase(orders_total[{{ interval }}]))"}
"""


def test_series_are_keyed_by_labels_unless_named(tmp_path: Path) -> None:
    loaded = load_metrics([write(tmp_path / "a.yaml", BASE)])
    assert not loaded.errors
    spec = loaded.metrics["orders"]
    assert spec.collector.points.series_columns == (LABELS,)
    assert spec.collector.multi_period is True
    named = BASE.replace("collector:\n", "collector:\n  series_columns: [region]\n")
    loaded = load_metrics([write(tmp_path / "b.yaml", named)])
    assert loaded.metrics["orders"].collector.points.series_columns == ("region",)


def test_victoriametrics_is_an_alias_and_peers_work(tmp_path: Path) -> None:
    text = BASE.replace("type: prometheus", "type: victoriametrics") + "peers: {mode: all}\n"
    loaded = load_metrics([write(tmp_path / "a.yaml", text)])
    assert not loaded.errors, loaded.errors


def test_an_entity_file_needs_named_series_columns(tmp_path: Path) -> None:
    write(tmp_path / "e.csv", "region,latitude,longitude\neu,50,10\n")
    text = BASE + "peers: {mode: nearest, entities: e.csv}\n"
    loaded = load_metrics([write(tmp_path / "a.yaml", text)])
    (issues,) = loaded.errors.values()
    assert any("entity file matches series on `collector.series_columns`" in str(i) for i in issues)


def test_bad_params_are_config_errors(tmp_path: Path) -> None:
    text = BASE.replace(
        'url: "http://prom:9090"', 'url: "prom:9090", bearer_token: t, basic_auth: {username: u}'
    )
    loaded = load_metrics([write(tmp_path / "a.yaml", text)])
    (issues,) = loaded.errors.values()
    assert "http:// or https://" in " ".join(str(i) for i in issues)


def test_credentials_in_the_url_are_refused_without_being_shown(tmp_path: Path) -> None:
    text = BASE.replace("http://prom:9090", "http://ops:hunter2-secret@prom:9090")
    loaded = load_metrics([write(tmp_path / "a.yaml", text)])
    (issues,) = loaded.errors.values()
    shown = " ".join(str(i) for i in issues)
    assert "put credentials in basic_auth" in shown and "hunter2" not in shown

"""detectkd's own observability: /metrics through promtool, the alert rules through
`promtool test rules`, and the Grafana dashboard's model and queries."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from detectkd.telemetry import Telemetry
from tests.support.files import REPO

PROMETHEUS = REPO / "etc" / "prometheus"
DASHBOARD = REPO / "etc" / "grafana" / "detectkd-dashboard.json"


def promtool() -> str:
    tool = shutil.which("promtool")
    assert tool, "promtool comes with Debian's prometheus package (installed by scripts/test)"
    return tool


def run(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd
    )


def families() -> set[str]:
    """Every series name detectkd can expose, with the suffixes Prometheus sees."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "info": ("_info",)}
    names: set[str] = set()
    t = Telemetry()
    for metric in t.registry.collect():
        names.update(metric.name + s for s in suffixes.get(metric.type, ("",)))
    return names | {f.name for f in t.families}


def test_metrics_exposition_passes_promtool_check_metrics() -> None:
    t = Telemetry()
    t.checks.labels("orders", "ok").inc()
    t.check_duration.labels("collect").observe(0.004)
    t.lag.observe(0.2)
    t.series_nodata.labels("orders").set(1)
    t.metric_interval.labels("orders").set(60)
    t.missed.labels('we"ird\\name').inc(2)  # label values are escaped
    t.forget("gone")  # forgetting a metric without samples is fine
    text = t.exposition().decode()
    done = run("check", "metrics", stdin=text)
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'detectk_checks_total{metric="orders",result="ok"} 1.0\n' in text
    assert 'detectk_missed_runs_total{metric="we\\"ird\\\\name"} 2.0\n' in text
    assert text.count("# TYPE detectk_checks_total counter\n") == 1
    # Buckets that suit checks from 1 ms to 60 s.
    assert 'detectk_check_duration_seconds_bucket{le="0.001",stage="collect"}' in text
    assert 'detectk_check_duration_seconds_bucket{le="60.0",stage="collect"}' in text


def test_alert_rules_check_and_unit_tests_pass() -> None:
    checked = run("check", "rules", "detectkd-rules.yml", cwd=PROMETHEUS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    tested = run("test", "rules", "detectkd-rules.test.yml", cwd=PROMETHEUS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    rules = (PROMETHEUS / "detectkd-rules.yml").read_text()
    for alert in (
        "DetectkdDown",
        "DetectkdReloadFailed",
        "DetectkdChecksFailing",
        "DetectkdOutboxBackingUp",
        "DetectkdSchedulerLag",
        "DetectkdMetricNoData",
    ):
        assert (
            f"alert: {alert}" in rules
            and f"alertname: {alert}" in (PROMETHEUS / "detectkd-rules.test.yml").read_text()
        ), alert


def exprs(dashboard: dict[str, object]) -> list[str]:
    out = []
    for panel in dashboard["panels"]:  # type: ignore[attr-defined]
        for target in panel.get("targets", []):
            out.append(target["expr"])
    return out


def test_grafana_dashboard_model_and_queries(tmp_path: Path) -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] == "detectkd" and isinstance(dash["schemaVersion"], int)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 15
    for panel in dash["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
    queries = exprs(dash)
    known = families() | {"up"}
    for q in queries:
        for name in re.findall(r"\b(detectk_[a-z_]+)", q):
            assert name in known, (name, q)
    # Every query parses as PromQL: promtool checks them as recording rules.
    concrete = [q.replace("$__rate_interval", "5m").replace("$instance", ".*") for q in queries]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(concrete)],
            }
        ]
    }
    (tmp_path / "queries.yml").write_text(json.dumps(rules))
    done = run("check", "rules", str(tmp_path / "queries.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    covered = " ".join(queries)
    for topic in (
        "detectk_checks_total",
        "detectk_scheduler_lag_seconds_bucket",
        "detectk_alerts_sent_total",
        "detectk_outbox_pending",
        "detectk_metric_up",
        "detectk_check_duration_seconds_bucket",
    ):
        assert topic in covered, topic


@pytest.mark.parametrize(
    "name", ["detectk_checks_total", "detectk_series_nodata", "detectk_metric_interval_seconds"]
)
def test_families_exist(name: str) -> None:
    assert name in families()


def test_the_series_dashboard_overlays_a_metrics_exported_band(tmp_path: Path) -> None:
    """etc/grafana/detectkd-series.json: value, expected, band, anomalies and episodes of the
    chosen metric from `export: true`'s detectk_series_* (every query valid PromQL)."""
    from detectkd.exposition import SERIES_FAMILIES

    dash = json.loads((REPO / "etc" / "grafana" / "detectkd-series.json").read_text())
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource", "instance", "metric"}
    queries = exprs(dash) + [a["expr"] for a in dash["annotations"]["list"]]
    known = families() | {name for name, _ in SERIES_FAMILIES}
    used = {name for q in queries for name in re.findall(r"\b(detectk_[a-z_]+)", q)}
    assert used <= known and {name for name, _ in SERIES_FAMILIES} <= used | {"detectk_series_score"}
    assert {"detectk_series_lower", "detectk_series_upper", "detectk_series_firing"} <= used
    concrete = [q.replace("$instance", ".*").replace("$metric", "orders") for q in queries]
    rules = {
        "groups": [
            {
                "name": "series",
                "rules": [{"record": f"series:query_{i}", "expr": q} for i, q in enumerate(concrete)],
            }
        ]
    }
    (tmp_path / "series.yml").write_text(json.dumps(rules))
    done = run("check", "rules", str(tmp_path / "series.yml"))
    assert done.returncode == 0, done.stdout + done.stderr

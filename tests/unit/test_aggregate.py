"""Merging the workers' expositions: disjoint families concatenated, daemon-wide samples
summed, flags and ages not summed, HELP/TYPE once, the supervisor's identity kept."""

from __future__ import annotations

from detectkd.workers.merge import merge_api, merge_expositions

W0 = """\
# HELP detectk_checks_total Metric runs by result.
# TYPE detectk_checks_total counter
detectk_checks_total{metric="a",result="ok"} 3.0
# HELP detectk_outbox_pending Alerts waiting.
# TYPE detectk_outbox_pending gauge
detectk_outbox_pending 2.0
# HELP detectk_config_last_reload_successful 1 when the last reload worked.
# TYPE detectk_config_last_reload_successful gauge
detectk_config_last_reload_successful 1.0
# HELP detectk_lag_seconds Lag.
# TYPE detectk_lag_seconds histogram
detectk_lag_seconds_bucket{le="1.0"} 4.0
detectk_lag_seconds_bucket{le="+Inf"} 5.0
detectk_lag_seconds_count 5.0
detectk_lag_seconds_sum 0.5
# HELP detectk_build_info detectkd version.
# TYPE detectk_build_info gauge
detectk_build_info{version="0.0.1"} 1.0
"""
W1 = (
    W0.replace('metric="a"', 'metric="b"')
    .replace("pending 2.0", "pending 5.0")
    .replace("successful 1.0", "successful 0.0")
)
OWN = '# HELP detectk_build_info detectkd version.\n# TYPE detectk_build_info gauge\ndetectk_build_info{version="9"} 1.0\n'


def test_workers_merge_into_one_exposition() -> None:
    text = merge_expositions([W0, W1], OWN)
    assert text.count("# TYPE detectk_checks_total counter") == 1
    assert 'detectk_checks_total{metric="a",result="ok"} 3.0' in text
    assert 'detectk_checks_total{metric="b",result="ok"} 3.0' in text
    assert "detectk_outbox_pending 7.0" in text  # summed
    assert "detectk_config_last_reload_successful 0.0" in text  # one failed: not 1
    assert 'detectk_lag_seconds_bucket{le="+Inf"} 10.0' in text and "detectk_lag_seconds_sum 1.0" in text
    assert 'detectk_build_info{version="9"} 1.0' in text and 'version="0.0.1"' not in text


def test_api_pages_merge_sorted_with_every_config_error() -> None:
    pages = [
        {"metrics": [{"name": "b"}], "sources": {"s1": {}}, "config": {"errors": ["x.yaml:1: bad"]}},
        {"metrics": [{"name": "a"}], "sources": {"s2": {}}, "config": {"errors": []}},
    ]
    merged = merge_api(pages)
    assert [m["name"] for m in merged["metrics"]] == ["a", "b"] and merged["total"] == 2
    assert merged["config"] == {"errors": ["x.yaml:1: bad"], "successful": False}
    assert set(merged["sources"]) == {"s1", "s2"}

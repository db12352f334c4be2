"""The `explain:` block (file/line/key errors) and the "Where:" lines of a message."""

from __future__ import annotations

from pathlib import Path

from detectkd.alerting.alert import Alert
from detectkd.alerting.channels.alertmanager import Params, payload
from detectkd.alerting.message import default_text, where_lines
from detectkd.specs.loader import load_metrics
from tests.support.alerts import make_alert
from tests.support.files import write

BASE = """\
name: orders
schedule: {interval: 1h}
collector:
  type: sqlite
  params:
    database: /tmp/x.db
    query: "SELECT count(*) AS value FROM orders"
"""


def load(tmp_path: Path, explain: str):  # type: ignore[no-untyped-def]
    write(tmp_path / "metrics" / "m.yaml", BASE + explain)
    return load_metrics([tmp_path / "metrics"], None, env={})


def test_a_file_without_explain_is_unchanged(tmp_path: Path) -> None:
    r = load(tmp_path, "")
    assert r.ok and r.metrics["orders"].config.explain is None


def test_explain_defaults(tmp_path: Path) -> None:
    r = load(tmp_path, "explain:\n  query: SELECT region, 1 AS value\n  dimensions: [region]\n")
    e = r.metrics["orders"].config.explain
    assert e is not None and e.timeout.total_seconds() == 10 and e.max_segments == 10_000
    assert e.baseline_periods == 7 and e.step(r.metrics["orders"].config.schedule.interval).days == 1


def test_bad_explain_blocks_name_file_line_and_key(tmp_path: Path) -> None:
    r = load(tmp_path, 'explain:\n  query: "SELECT {% if %}"\n  dimensions: [region]\n  timeout: 2h\n')
    got = {(i.line, i.key): i.message for i in r.all_errors()}
    assert (9, "explain.query") in got and (11, "explain.timeout") in got
    r = load(tmp_path, "explain:\n  query: q\n  dimensions: [region, region]\n")
    assert "names a column twice" in r.all_errors()[0].message
    r = load(tmp_path, "explain:\n  query: q\n  dimensions: [region]\n  baseline_step: 90m\n")
    assert r.all_errors()[0].key == "explain.baseline_step"
    r = load(tmp_path, "explain:\n  query: q\n  dimensions: [a, b, c, d, e, f, g]\n")
    assert r.all_errors()[0].key.startswith("explain")


def alert(extra: dict[str, object]) -> Alert:
    t = 1_767_225_600
    return make_alert(
        period=t,
        started_at=t,
        value=700.0,
        expected=1000.0,
        lower=900.0,
        upper=1100.0,
        score=0.9,
        direction="down",
        interval_seconds=3600,
        extra=extra,
    )


FOUND = [
    {"segment": {"region": "eu"}, "value": 400.0, "expected": 700.0, "share": 0.9, "surprise": 0.01},
    {
        "segment": {"region": "us", "device": "ios"},
        "value": 90.0,
        "expected": 120.0,
        "share": 0.1,
        "surprise": 0.0,
    },
]


def test_where_lines_name_segment_value_expected_and_share() -> None:
    lines = where_lines({"where": FOUND})
    assert lines == [
        "Where:",
        "  1. region=eu: 400, expected 700 (-43%), 90% of the change",
        "  2. region=us, device=ios: 90, expected 120 (-25%), 10% of the change",
    ]
    text = default_text(alert({"where": FOUND}))
    assert "\n".join(lines) in text
    assert payload(alert({"where": FOUND}), Params(url="http://am"))[0]["annotations"]["where"] == "\n".join(
        lines
    )


def test_a_failed_breakdown_is_a_note_and_hostile_values_are_escaped() -> None:
    note = "where: breakdown failed: timeout after 10s"
    assert note in default_text(alert({"where_error": note}))
    hostile = [{"segment": {"region": "<script>x</script>"}, "value": 1.0, "expected": 2.0, "share": 1.0}]
    text = default_text(alert({"where": hostile}), escape=lambda s: str(s).replace("<", "&lt;"))
    assert "<script>" not in text and "&lt;script>" in text
    assert where_lines({"where_spread": True, "where": []}) == [
        "Where: spread over all segments alike (no segment stands out)"
    ]


def test_without_a_query_the_dimensions_are_among_the_series_columns(tmp_path: Path) -> None:
    r = load(tmp_path, "explain:\n  dimensions: [region]\n")
    assert (
        r.all_errors()[0].key == "explain.dimensions" and "series_columns (none)" in r.all_errors()[0].message
    )
    multi = BASE.replace(
        '    query: "SELECT count(*) AS value FROM orders"\n',
        '    query: "SELECT region, count(*) AS value FROM orders GROUP BY region"\n'
        "  series_columns: [region]\n",
    )
    write(tmp_path / "metrics" / "m.yaml", multi + "explain:\n  dimensions: [region]\n")
    assert load_metrics([tmp_path / "metrics"], None, env={}).ok
    write(tmp_path / "metrics" / "m.yaml", multi + "explain:\n  dimensions: [device]\n")
    assert (
        "among collector.series_columns (region)"
        in load_metrics([tmp_path / "metrics"], None, env={}).all_errors()[0].message
    )


def test_message_templates_get_where_and_where_text() -> None:
    from detectkd.alerting.message import MessageRenderer
    from detectkd.templating import compile_message_template

    t = compile_message_template("{{ where[0].segment.region }}|{{ where_text }}")
    text = MessageRenderer(t).render(alert({"where": FOUND}))
    assert text.startswith("eu|Where:\n  1. region=eu: 400")

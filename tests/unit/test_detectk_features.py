"""DetectK-format files, one per DetectK feature that its published examples use, load
unchanged (issue 14): `execution_time` and `datetime_format` in queries, message templates
with DetectK's variables and detector metadata, `missing_data`'s own parameters."""

from __future__ import annotations

from pathlib import Path

from detectkd.alerting.message import MessageRenderer
from detectkd.detectors.base import Current, History
from detectkd.detectors.simple import MissingDataDetector, MissingParams
from detectkd.runtime.judge import _params_of
from detectkd.specs.loader import LoadResult, load_metrics
from detectkd.templating import compile_message_template
from tests.support.alerts import make_alert, make_nodata
from tests.support.files import write

HEAD = """\
name: sessions
collector:
  type: "clickhouse"
  params:
    host: "localhost"
    port: 9000
    database: "analytics"
    query: |
      SELECT count() as value FROM sessions
      WHERE timestamp >= toDateTime('{{ execution_time | datetime_format('%Y-%m-%d %H:%M:%S') }}') - INTERVAL 10 MINUTE
        AND timestamp < '{{ execution_time }}'
"""

MESSAGE = """\
detector:
  type: "mad"
  params: {window_size: "30 days", n_sigma: 3.0, use_weighted: true}
alerter:
  type: "mattermost"
  params:
    webhook_url: "https://chat.example/hooks/x"
    cooldown_minutes: 60
    message_template: |
      **ANOMALY: {{ metric_name }}** {{ value | round(2) }}
      {% if lower_bound and upper_bound %}Expected: {{ lower_bound | round(2) }} - {{ upper_bound | round(2) }}{% endif %}
      {% if metadata.detector %}Detector: {{ metadata.detector }}, window: {{ metadata.window_size }}, threshold: {{ metadata.n_sigma }} sigma{% endif %}
      Time: {{ timestamp.strftime('%d.%m.%Y %H:%M') }} (checked {{ execution_time | datetime_format('%H:%M') }}) {{ dashboard_url }}
"""

MISSING = """\
detector:
  type: "missing_data"
  params:
    consecutive_missing: 2
    max_staleness_minutes: 15
    treat_zero_as_missing: true
alerter:
  type: "slack"
  params: {webhook_url: "https://hooks.slack.example/x", cooldown_minutes: 30}
"""


def load(tmp_path: Path, text: str) -> LoadResult:
    write(tmp_path / "m" / "sessions.yaml", text)
    return load_metrics([tmp_path / "m"], None, env={})


def test_execution_time_and_detectk_message_variables_load_with_a_warning_for_unknown_names(
    tmp_path: Path,
) -> None:
    result = load(tmp_path, HEAD + MESSAGE)
    assert result.ok, [str(i) for i in result.all_errors()]
    (warning,) = [w for w in result.warnings if "message_template" in w.message]
    assert "dashboard_url" in warning.message and "rendered empty" in warning.message
    assert warning.file.endswith("sessions.yaml") and warning.line == 20  # the `message_template:` line

    spec = result.metrics["sessions"]
    t, detector = 1_767_225_000, spec.detectors[0].id
    alert = make_alert(
        metric="sessions",
        period=t,
        started_at=t,
        value=250.0,
        lower=80.0,
        upper=120.0,
        score=0.9,
        detector=detector,
        detector_params=_params_of(spec, detector),
    )
    text = MessageRenderer(compile_message_template(spec.alerters[0].params.message_template)).render(alert)  # type: ignore[attr-defined]
    assert "**ANOMALY: sessions** 250.0" in text
    assert "Detector: mad, window: 30d, threshold: 3.0 sigma" in text
    assert "Expected: 80.0 - 120.0" in text and "(checked 00:00)" in text


def test_a_message_that_fails_to_render_is_sent_with_the_default_text() -> None:
    renderer = MessageRenderer(compile_message_template("Value {{ value | round(2) }}"))
    nodata = make_nodata()
    text = renderer.render(nodata)  # round(None) raises: DetectK falls back too
    assert text.startswith("[NO DATA] orders")


def test_detectk_missing_data_parameters_load_and_judge(tmp_path: Path) -> None:
    result = load(tmp_path, HEAD + MISSING)
    assert result.ok, [str(i) for i in result.all_errors()]
    spec = result.metrics["sessions"]
    params = spec.detectors[0].params
    assert isinstance(params, MissingParams)
    assert params.max_missing_periods == 2 and params.treat_zero_as_missing
    assert params.max_staleness_minutes == 15
    # The staleness columns are collected with the rows.
    assert {"last_event_time", "last_known_timestamp"} <= set(spec.collector.points.context_columns)

    import numpy as np

    step = 600
    d = MissingDataDetector(params, step)
    t = 1_767_225_000
    history = History(np.array([t - 2 * step, t - step]), np.array([5.0, 0.0]), {}, 1)
    zero = d.detect(history, Current(t, 0.0, {}))
    assert zero.anomaly  # this 0 and the 0 before it: two missing in a row
    fresh = {"epoch:last_event_time": float(t + step - 60), "epoch:last_known_timestamp": float("nan")}
    assert not d.detect(history, Current(t, 7.0, fresh)).anomaly
    stale = {"epoch:last_event_time": float(t + step - 16 * 60)}
    assert d.detect(history, Current(t, 7.0, stale)).anomaly
    # DetectK's heartbeat: a zero count whose last event is stale alerts on the first run
    # (nothing stored yet); ClickHouse's max() of no rows is 1970-01-01: stale.
    empty = History(np.array([], dtype=np.int64), np.array([]), {}, 1)
    assert d.detect(empty, Current(t, 0.0, stale)).anomaly
    assert d.detect(empty, Current(t, 0.0, {"epoch:last_event_time": 0.0})).anomaly
    one = MissingDataDetector(params.model_copy(update={"max_missing_periods": 1}), step)
    assert one.detect(empty, Current(t, 0.0, {})).anomaly  # consecutive_missing: 1 needs no history
    assert d.detect(empty, Current(t, 0.0, {})).skipped == "no history yet"  # 2 does


def test_execution_time_renders_as_a_datetime_sql_parses_and_keeps_its_methods() -> None:
    """DetectK's backtest example writes `toDateTime('{{ execution_time }}')`: an aware
    datetime's `str()` ends in `+00:00`, which ClickHouse refuses."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from detectkd.collectors.base import Window
    from detectkd.templating import compile_template

    finish = 1_767_225_600  # 2026-01-01 00:00 UTC
    window = Window(finish - 600, finish, timedelta(minutes=10), ZoneInfo("Europe/Berlin"))
    query = compile_template(
        "WHERE t >= toDateTime('{{ execution_time }}') - INTERVAL 10 MINUTE "
        "AND t < '{{ period_finish_dt }}' -- {{ execution_time.timestamp() | int }} "
        "{{ execution_time.isoformat() }}"
    ).render(**window.template_vars())
    assert query == (
        "WHERE t >= toDateTime('2026-01-01 01:00:00') - INTERVAL 10 MINUTE "
        f"AND t < '2026-01-01 01:00:00' -- {finish} 2026-01-01T01:00:00+01:00"
    )


def test_value_path_takes_detectk_brackets_and_dots() -> None:
    from detectkd.collectors.http import pick

    doc = {"results": {"A": {"frames": [{"data": {"values": [[7, 8]]}}]}}}
    assert pick(doc, "results.A.frames[0].data.values[0][1]") == 8  # DetectK's Grafana example
    assert pick(doc, "results.A.frames.0.data.values.0.0") == 7


def test_a_clickhouse_alias_that_shadows_the_filtered_column_is_a_warning(tmp_path: Path) -> None:
    """DetectK's threshold examples select `now() as timestamp` and filter `WHERE timestamp >=
    ...`: ClickHouse reads the alias in WHERE, so the count is always 0. Loud, not silent."""
    shadow = HEAD.replace(
        "SELECT count() as value FROM sessions", "SELECT count() as value, now() as timestamp FROM sessions"
    )
    assert "now() as timestamp" in shadow
    result = load(tmp_path, shadow + MISSING)
    assert result.ok
    (w,) = [w for w in result.warnings if w.key == "collector.params.query"]
    assert "alias 'timestamp' (now())" in w.message and w.line == 8
    assert not [w for w in load(tmp_path, HEAD + MISSING).warnings if w.key == "collector.params.query"]

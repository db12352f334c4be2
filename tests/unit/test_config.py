"""Config loading: every bad file gives a message with its file, line and key."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from detectkd.config.yamlsource import substitute_env
from detectkd.durations import format_duration, parse_duration
from detectkd.runtime.reload import make_plan
from detectkd.specs.loader import load_metrics
from tests.support.files import SHARED, write

GOOD = """\
name: orders
collector:
  type: sqlite
  params:
    database: /tmp/x.db
    query: "SELECT 1 AS value"
detector:
  type: mad
  params:
    window_size: 7 days
    n_sigma: 3
alerter:
  type: log
"""


def load_one(tmp_path: Path, text: str, env: dict[str, str] | None = None, name: str = "m.yaml"):  # type: ignore[no-untyped-def]
    write(tmp_path / "metrics" / name, text)
    return load_metrics([tmp_path / "metrics"], None, env=env or {})


def test_good_file_loads_with_defaults(tmp_path: Path) -> None:
    result = load_one(tmp_path, GOOD)
    assert result.ok, result.all_errors()
    spec = result.metrics["orders"]
    assert spec.config.schedule.interval == timedelta(minutes=10)
    assert spec.collector.points.timestamp_column == "period_time"
    assert spec.collector.points.value_column == "value"
    assert [d.type for d in spec.detectors] == ["mad"]
    assert spec.conditions.consecutive_anomalies == 1


BAD_CASES = [
    (
        "yaml syntax",
        "name: x\ncollector: [unclosed\n",
        2,
        "",
        "YAML syntax error",
    ),
    (
        "unknown key with suggestion",
        GOOD.replace("    n_sigma: 3", "    n_sigmaa: 3"),
        11,
        "detector.params.n_sigmaa",
        "did you mean n_sigma?",
    ),
    (
        "unknown top-level key",
        GOOD + "shedule:\n  interval: 5m\n",
        14,
        "shedule",
        "did you mean schedule?",
    ),
    (
        "wrong type",
        GOOD.replace("    n_sigma: 3", "    n_sigma: lots"),
        11,
        "detector.params.n_sigma",
        "valid number",
    ),
    (
        "missing env var",
        GOOD.replace("/tmp/x.db", "${NOPE_NOT_SET}"),
        5,
        "collector.params.database",
        "${NOPE_NOT_SET} is not set",
    ),
    (
        "bad duration",
        GOOD + "schedule:\n  interval: 10 fortnights\n",
        15,
        "schedule.interval",
        "'fortnights' is not a unit",
    ),
    (
        "bad template",
        GOOD.replace('"SELECT 1 AS value"', '"SELECT {{ period_start "'),
        6,
        "collector.params.query",
        "template syntax error",
    ),
    (
        "unknown detector type",
        GOOD.replace("type: mad", "type: madd"),
        8,
        "detector.type",
        "unknown detector type 'madd'",
    ),
    (
        "unknown collector type",
        GOOD.replace("type: sqlite", "type: oracle"),
        3,
        "collector.type",
        "unknown collector type 'oracle'",
    ),
    (
        "missing required param",
        GOOD.replace('    query: "SELECT 1 AS value"\n', ""),
        4,
        "collector.params.query",
        "required key 'query' is missing",
    ),
    (
        "bad timezone",
        GOOD + "schedule:\n  timezone: Mars/Olympus\n",
        15,
        "schedule.timezone",
        "unknown timezone",
    ),
    (
        "bad start_time",
        GOOD + "schedule:\n  start_time: last tuesday\n",
        15,
        "schedule.start_time",
        "neither a time",
    ),
    ("peers on a single series", GOOD + "peers:\n  mode: all\n", 14, "peers", "needs a multi-series"),
    (
        "peers required but not described",
        GOOD.replace("  type: log\n", "  type: log\n  conditions: {peers: isolated}\n"),
        14,
        "alerter.conditions.peers",
        "needs a top-level `peers:` block",
    ),
    (
        "peer entity file missing",
        GOOD.replace(
            'query: "SELECT 1 AS value"\n', 'query: "SELECT 1 AS value"\n  series_columns: [station]\n'
        )
        + "peers:\n  mode: nearest\n  entities: nope.csv\n",
        17,
        "peers.entities",
        "cannot read the entity file",
    ),
    (
        "bad metric name",
        GOOD.replace("name: orders", "name: 'orders per day'"),
        1,
        "name",
        "should match pattern",
    ),
]


@pytest.mark.parametrize(
    ("case", "text", "line", "key", "fragment"), BAD_CASES, ids=[c[0] for c in BAD_CASES]
)
def test_bad_files_name_file_line_and_key(
    tmp_path: Path, case: str, text: str, line: int, key: str, fragment: str
) -> None:
    result = load_one(tmp_path, text)
    assert not result.ok and not result.metrics
    issues = result.all_errors()
    assert issues, case
    match = [i for i in issues if fragment in i.message]
    assert match, [str(i) for i in issues]
    issue = match[0]
    assert issue.file.endswith("m.yaml")
    assert issue.line == line, str(issue)
    assert issue.key == key
    assert f"m.yaml:{line}:" in str(issue)


def test_duplicate_names_name_both_files(tmp_path: Path) -> None:
    write(tmp_path / "metrics" / "a.yaml", GOOD)
    write(tmp_path / "metrics" / "b.yaml", "# the same metric, copied\n\n" + GOOD)
    result = load_metrics([tmp_path / "metrics"], None, env={})
    assert list(result.metrics) == ["orders"]
    (issue,) = result.errors[str(tmp_path / "metrics" / "b.yaml")]
    assert "duplicate metric name 'orders'" in issue.message
    assert issue.line == 3 and issue.key == "name"  # the `name:` line, not line 1
    assert str(tmp_path / "metrics" / "a.yaml") in issue.message


def test_a_misspelt_unit_is_named_as_written_with_the_closest_unit() -> None:
    from detectkd.durations import parse_duration

    with pytest.raises(ValueError, match=r"'sec0nds' is not a unit; did you mean 'seconds'\?"):
        parse_duration("10 sec0nds")  # read as "10 sec" + "0 nds": `nds` is not what was written


def test_an_unknown_profile_says_where_it_looked(tmp_path: Path) -> None:
    text = GOOD.replace("collector:\n", "collector:\n  profile: warehouse\n", 1)
    assert "profile: warehouse" in text
    (issue,) = load_one(tmp_path, text).all_errors()
    assert "unknown profile 'warehouse'" in issue.message and "--profiles FILE" in issue.message
    assert "detectk_profiles.yaml next to the metrics directory" in issue.message


def test_every_error_in_a_file_is_listed(tmp_path: Path) -> None:
    text = GOOD.replace("    n_sigma: 3", "    n_sigmaa: 3").replace("type: log", "type: pager")
    result = load_one(tmp_path, text)
    messages = " | ".join(i.message for i in result.all_errors())
    assert "n_sigmaa" in messages and "pager" in messages


def test_ignored_detectk_keys_load_with_a_warning(tmp_path: Path) -> None:
    text = GOOD + "backtest:\n  enabled: true\nstorage:\n  retention_days: 30\n"
    result = load_one(tmp_path, text)
    assert result.ok, result.all_errors()
    keys = sorted(w.key for w in result.warnings)
    assert keys == ["backtest"]
    # DetectK's storage.retention_days is honoured (the params' own keys win over it).
    assert result.metrics["orders"].storage.datapoints_retention_days == 30
    text = GOOD + "storage:\n  retention_days: 30\n  params: {datapoints_retention_days: 7}\n"
    assert load_one(tmp_path, text).metrics["orders"].storage.datapoints_retention_days == 7


def test_env_substitution_with_defaults_everywhere() -> None:
    text, missing = substitute_env("${A}-${B:-dflt}-${C:-}", {"A": "x"})
    assert text == "x-dflt-" and missing == []
    _, missing = substitute_env("${A}", {})
    assert missing == ["A"]


def test_profiles_merge_into_collector_and_alerter(tmp_path: Path) -> None:
    write(
        tmp_path / "profiles.yaml",
        "profiles:\n  shop:\n    type: sqlite\n    database: ${DB:-/tmp/shop.db}\n"
        "  chat:\n    type: mattermost\n    webhook_url: https://chat.example/hooks/x\n",
    )
    text = (
        "name: m\ncollector:\n  profile: shop\n  params:\n    query: SELECT 1 AS value\n"
        "alerter:\n  profile: chat\n  params:\n    cooldown_minutes: 30\n"
    )
    write(tmp_path / "metrics" / "m.yaml", text)
    result = load_metrics([tmp_path / "metrics"], tmp_path / "profiles.yaml", env={})
    assert result.ok, result.all_errors()
    spec = result.metrics["m"]
    assert spec.collector.type == "sqlite"
    assert spec.collector.params.database == "/tmp/shop.db"  # type: ignore[attr-defined]
    assert spec.alerters[0].type == "mattermost"
    assert spec.conditions.cooldown_minutes == 30  # DetectK put it in params


def test_cooldown_is_accepted_once_for_every_alerter_type(tmp_path: Path) -> None:
    from detectkd.alerting.channels.registry import CHANNELS

    for kind in sorted(CHANNELS):
        assert "cooldown_minutes" not in CHANNELS[kind].params.model_fields  # one place, not six
        result = load_one(
            tmp_path / kind,
            GOOD.replace(
                "  type: log\n",
                f"  type: {kind}\n  params:\n"
                "    cooldown_minutes: 45\n    url: http://x.example/\n    webhook_url: http://x.example/\n"
                "    bot_token: t\n    chat_id: c\n    to: [a@b.example]\n    host: mail.example\n",
            ),
        )
        problems = [i for i in result.all_errors() if "cooldown" in i.key]
        assert problems == [], (kind, problems)
    bad = load_one(
        tmp_path / "bad", GOOD.replace("  type: log\n", "  type: log\n  params:\n    cooldown_minutes: -5\n")
    )
    (issue,) = bad.all_errors()
    assert issue.key == "alerter.params.cooldown_minutes" and issue.line == 15, issue


def test_unknown_profile_is_an_error(tmp_path: Path) -> None:
    text = "name: m\ncollector:\n  profile: nope\n  params:\n    query: SELECT 1 AS value\n"
    result = load_one(tmp_path, text)
    (issue,) = result.all_errors()
    assert issue.key == "collector.profile" and issue.line == 3


def test_detectk_keys_inside_params_are_accepted(tmp_path: Path) -> None:
    text = GOOD.replace(
        '    query: "SELECT 1 AS value"',
        '    query: "SELECT 1 AS v"\n    value_column: v\n    timestamp_column: ts',
    )
    spec = load_one(tmp_path, text).metrics["orders"]
    assert spec.collector.points.value_column == "v"
    assert spec.collector.points.timestamp_column == "ts"


def test_durations_long_and_short_forms() -> None:
    assert parse_duration("10 minutes") == parse_duration("10m") == timedelta(minutes=10)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("30 days") == timedelta(days=30)
    assert parse_duration(90) == timedelta(seconds=90)
    assert format_duration(timedelta(hours=2)) == "2h"
    for bad in ("", "ten minutes", "5 parsecs", "-5m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_fingerprints_drive_the_reload_plan(tmp_path: Path) -> None:
    d = tmp_path / "metrics"
    write(d / "a.yaml", GOOD)
    write(d / "b.yaml", GOOD.replace("orders", "visits"))
    write(d / "c.yaml", GOOD.replace("orders", "gone"))
    old = load_metrics([d], None, env={}).metrics
    write(d / "a.yaml", GOOD.replace("n_sigma: 3", "n_sigma: 4"))  # changed
    (d / "c.yaml").unlink()  # removed
    write(d / "e.yaml", GOOD.replace("orders", "fresh"))  # added
    write(d / "b.yaml", "name: visits\ncollector: [broken\n")  # broken: keep previous
    plan = make_plan(old, load_metrics([d], None, env={}))
    assert plan.changed == ["orders"]
    assert plan.removed == ["gone"]
    assert plan.added == ["fresh"]
    assert plan.kept == ["visits"]
    assert plan.target["visits"] is old["visits"]
    assert plan.unchanged == ["visits"]


def test_env_change_changes_the_fingerprint(tmp_path: Path) -> None:
    text = GOOD.replace("/tmp/x.db", "${DBPATH}")
    write(tmp_path / "m" / "a.yaml", text)
    one = load_metrics([tmp_path / "m"], None, env={"DBPATH": "/a.db"}).metrics["orders"]
    two = load_metrics([tmp_path / "m"], None, env={"DBPATH": "/b.db"}).metrics["orders"]
    assert one.fingerprint != two.fingerprint
    assert one.detector_fingerprint == two.detector_fingerprint


EXAMPLES = SHARED / "data" / "detectk-examples"
EXAMPLE_ENV = {
    "MATTERMOST_WEBHOOK": "https://chat.example/hooks/x",
    "SLACK_WEBHOOK": "https://hooks.slack.example/services/x",
    "CLICKHOUSE_PASSWORD": "pw",
    "POSTGRES_PASSWORD": "pw",
    "DATABASE_URL": "postgresql://u:pw@db/x",
    "MYSQL_URL": "mysql://u:pw@db/shop",
    "ANALYTICS_DB_URL": "postgresql://u:pw@db/analytics",
    "POSTGRES_URL": "postgresql://u:pw@db/app",
}


def test_every_detectk_example_validates() -> None:
    if not EXAMPLES.is_dir():
        pytest.skip(f"{EXAMPLES} is absent: the shared DetectK examples are not on this machine")
    profiles = EXAMPLES / "profiles__profiles_example.yaml"
    result = load_metrics([EXAMPLES], profiles, env={**os.environ, **EXAMPLE_ENV})
    assert result.ok, "\n".join(str(i) for i in result.all_errors())
    yaml_files = [p for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".yml")]
    assert len(result.metrics) == len(yaml_files) - 1  # all but the profiles file


def test_templates_are_rendered_with_sample_values(tmp_path: Path) -> None:
    bad_query = GOOD.replace('"SELECT 1 AS value"', '"SELECT {{ perid_start }} AS value"')
    (issue,) = load_one(tmp_path, bad_query).all_errors()
    assert issue.key == "collector.params.query" and "perid_start" in issue.message
    assert "period_start" in issue.message  # lists what is available
    bad_message = GOOD.replace(
        "alerter:\n  type: log\n",
        "alerter:\n  type: log\n  params:\n    message_template: '{{ metrc_name }}'\n",
    )
    loaded = load_one(tmp_path / "other", bad_message)
    assert loaded.all_errors() == []  # a message renders leniently, as in DetectK: a warning
    (issue,) = [w for w in loaded.warnings if w.key == "alerter.params.message_template"]
    assert "metrc_name" in issue.message and "metric_name" in issue.message


def test_duplicate_keys_and_unquoted_times(tmp_path: Path) -> None:
    dup = GOOD.replace("alerter:\n  type: log\n", "alerter:\n  type: log\n  type: webhook\n")
    (issue,) = load_one(tmp_path, dup).all_errors()
    assert issue.key == "alerter.type" and issue.line == 14 and "first on line 13" in issue.message
    timed = GOOD + "schedule:\n  start_time: 2026-01-01 00:00:00\n"
    result = load_one(tmp_path / "t", timed)
    assert result.ok, result.all_errors()
    assert result.metrics["orders"].config.schedule.start_time == "2026-01-01 00:00:00"


def test_multi_period_auto_detection_and_override(tmp_path: Path) -> None:
    grouped = GOOD.replace(
        '"SELECT 1 AS value"', '"SELECT ts AS period_time, COUNT(*) AS value FROM t GROUP BY period_time"'
    )
    assert load_one(tmp_path / "a", grouped).metrics["orders"].collector.multi_period is True
    assert load_one(tmp_path / "b", GOOD).metrics["orders"].collector.multi_period is False
    forced = GOOD.replace("collector:\n", "collector:\n  multi_period: true\n")
    assert load_one(tmp_path / "c", forced).metrics["orders"].collector.multi_period is True


def test_conditions_accept_for_and_combination(tmp_path: Path) -> None:
    text = GOOD.replace(
        "alerter:\n  type: log\n",
        "alerter:\n  type: log\n  conditions: {for: 30m, combine: majority, min_deviation_abs: 5}\n",
    )
    spec = load_one(tmp_path, text).metrics["orders"]
    assert spec.conditions.for_ == timedelta(minutes=30)
    assert spec.conditions.required_streak(spec.config.schedule.interval) == 3
    bad = GOOD.replace("alerter:\n  type: log\n", "alerter:\n  type: log\n  conditions: {combin: all}\n")
    (issue,) = load_one(tmp_path / "bad", bad).all_errors()
    assert issue.key == "alerter.conditions.combin" and "did you mean combine?" in issue.message


def test_generator_url_template_is_checked_at_load(tmp_path: Path) -> None:
    from detectkd.config.settings import load_settings
    from detectkd.errors import ConfigError

    write(tmp_path / "ok.yaml", "generator_url: 'https://g/d?m={{ metric }}'\n")
    assert load_settings(tmp_path / "ok.yaml").generator_url == "https://g/d?m={{ metric }}"
    write(tmp_path / "bad.yaml", "generator_url: 'https://g/d?m={{ metrc }}'\n")
    with pytest.raises(ConfigError, match="metrc"):
        load_settings(tmp_path / "bad.yaml")


def test_snapshot_interval_is_a_duration_of_at_least_a_second_or_null(tmp_path: Path) -> None:
    from detectkd.config.settings import load_settings
    from detectkd.errors import ConfigError

    write(tmp_path / "default.yaml", "log_level: info\n")
    assert load_settings(tmp_path / "default.yaml").snapshot_interval == timedelta(minutes=5)
    write(tmp_path / "off.yaml", "snapshot_interval: null\n")
    assert load_settings(tmp_path / "off.yaml").snapshot_interval is None
    write(tmp_path / "bad.yaml", "snapshot_interval: 0s\n")
    with pytest.raises(ConfigError, match="snapshot_interval.*at least 1s"):
        load_settings(tmp_path / "bad.yaml")


def test_a_yaml_bomb_fails_fast_with_the_file_and_line(tmp_path: Path) -> None:
    """Issue 13: a 381-byte billion-laughs file took `validate` 51 s and 2.4 GB."""
    import time as clock

    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    write(tmp_path / "metrics" / "bomb.yaml", "\n".join(levels) + "\n")
    started = clock.process_time()
    result = load_metrics([tmp_path / "metrics"], None, env={})
    assert clock.process_time() - started < 5  # bounded work: about 100,000 values at most
    (issue,) = result.all_errors()
    assert issue.file.endswith("bomb.yaml") and issue.line == 1 and "config_max_values" in issue.message


def test_an_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    from detectkd.config.yamlsource import YamlLimits, set_limits

    write(tmp_path / "metrics" / "big.yaml", GOOD + "# " + "x" * 5000 + "\n")
    set_limits(YamlLimits(max_bytes=4096))
    try:
        result = load_metrics([tmp_path / "metrics"], None, env={})
    finally:
        set_limits(YamlLimits())
    (issue,) = result.all_errors()
    assert "above the limit of 4,096" in issue.message and "config_max_bytes" in issue.message

"""Templates render in a sandbox: a metric file cannot run commands or read the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectkd.specs.loader import load_metrics
from detectkd.templating import check_template, compile_template
from tests.support.files import write

METRIC = """\
name: m
collector:
  type: sqlite
  params:
    database: /tmp/x.db
    query: "{query}"
alerter:
  type: webhook
  params:
    url: http://hooks.example/x
    message_template: "{message}"
"""


def test_a_hostile_query_template_runs_nothing_at_validation(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}} SELECT 1 AS value"
    write(tmp_path / "m" / "m.yaml", METRIC.format(query=payload, message="{{ metric_name }}"))
    result = load_metrics([tmp_path / "m"], None, env={})
    assert not marker.exists()  # nothing ran
    (issue,) = result.all_errors()
    assert issue.key == "collector.params.query" and "unsafe" in issue.message, issue


def test_a_message_template_cannot_read_the_environment(tmp_path: Path) -> None:
    for sneaky in (
        "{{ lipsum.__globals__['os'].environ }}",
        "{{ metric_name.__class__.__mro__[1].__subclasses__() }}",
        "{{ self._TemplateReference__context }}",
    ):
        write(tmp_path / "m" / "m.yaml", METRIC.format(query="SELECT 1 AS value", message=sneaky))
        result = load_metrics([tmp_path / "m"], None, env={"SECRET_TOKEN": "hunter2"})
        problems = [i for i in result.all_errors() if i.key.endswith("message_template")]
        assert problems and "hunter2" not in str(problems), sneaky


def test_templates_keep_what_configs_use_and_refuse_huge_results() -> None:
    t = compile_template("{{ x | upper }} {{ '%.1f' % y }} {% for i in range(2) %}{{ i }}{% endfor %}")
    assert t.render(x="eu-west", y=2.25) == "EU-WEST 2.2 01"
    assert "limit" in (check_template("{{ 'a' * 1000000000 }}", {}) or "")
    assert "above" in (check_template("{{ 2 ** 100000000 }}", {}) or "")


def test_a_query_renders_with_only_the_variables_it_reads_and_the_same_text() -> None:
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from detectkd.collectors.base import Window
    from detectkd.templating import template_names

    text = (
        "SELECT '{{ period_start }}' AS t, {% for k in range(2) %}{{ k }}{% endfor %} "
        "WHERE d = '{{ execution_time | datetime_format('%Y-%m-%d') }}' {% set s = period_finish_ts %}{{ s }}"
    )
    names = template_names(text)
    assert names == frozenset({"period_start", "execution_time", "period_finish_ts"})
    window = Window(1_765_000_800, 1_765_001_400, timedelta(minutes=10), ZoneInfo("Europe/Berlin"))
    some = window.template_vars(names)
    assert set(some) == names and some.items() <= window.template_vars().items()
    template = compile_template(text)
    assert template.render(**some) == template.render(**window.template_vars())
    assert template_names("{% include 'x' %}") is None  # another template: every variable


def test_a_plain_query_renders_the_text_of_jinja_under_the_same_budget_and_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    import jinja2

    from detectkd import render_budget
    from detectkd.collectors.base import Window
    from detectkd.templating import Query

    window = Window(1_765_000_800, 1_765_001_400, timedelta(minutes=10), ZoneInfo("America/New_York"))
    every = window.template_vars()
    texts = [
        "SELECT '{{ period_start }}' AS t, v FROM x WHERE t >= '{{period_start}}' AND t < '{{ period_finish }}'\n",
        "{{ period_start_ts }}/{{ period_finish_dt }}/{{ execution_time }}/{{ interval }}/{{ interval_seconds }}",
        "a {{- period_start -}} b\n\n",
        "{% if period_start_ts %}{{ period_start }}{% endif %}",  # not plain: Jinja renders it
        "{{ period_start | upper }} {{ 'x' }}",
    ]
    for text in texts:
        query = Query(text)
        assert query.render(every) == compile_template(text).render(**every), text
        assert query.render(window.template_vars(query.names)) == compile_template(text).render(**every)
    with pytest.raises(jinja2.UndefinedError):
        Query("SELECT {{ period_start }} {{ nope }}").render(every)
    monkeypatch.setattr(render_budget, "MAX_OUTPUT", 30)
    assert Query("{{ period_start }}").render(every) == "2025-12-06 01:00:00"
    with pytest.raises(render_budget.RenderBudgetExceeded):
        Query("SELECT {{ period_start }} AND {{ period_finish }}").render(every)

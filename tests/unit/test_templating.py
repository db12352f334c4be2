"""Templates render in a sandbox: a metric file cannot run commands or read the environment."""

from __future__ import annotations

from pathlib import Path

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

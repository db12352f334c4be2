"""Every template render is on a budget (issue 26, item 7): loop iterations, output, time and
the size of any one value. Before, each attack here hung the process, built a gigabyte or
more, or (two) went ten times over the budget."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from detectkd import render_budget
from detectkd.render_budget import RenderBudgetExceeded
from detectkd.specs.loader import load_metrics
from detectkd.templating import check_template, compile_message_template, compile_template
from tests.support.files import write

LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
ATTACKS = {
    "nested range loops (10^10 iterations)": LOOPS,
    "a string iterated twice": "{% set s = 'x' * 1000000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "a loop in a scoped block in a loop (10x the budget)": (
        "{% for i in range(1000) %}{% block b scoped %}{% for j in range(1000) %}{% endfor %}"
        "{% endblock %}{% endfor %}"
    ),
    "a recursive loop": (
        "{% for i in range(100) recursive %}{% if loop.depth < 5 %}{{ loop(range(100)) }}{% endif %}{% endfor %}"
    ),
    "repeated output (2.9 GB)": "{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}",
    "template text in a loop in a macro": (
        "{% macro m() %}{% for i in range(100000) %}"
        + "y" * 10000
        + "{% endfor %}{% endmacro %}{{ m()|length }}"
    ),
    "a filter block in a loop in a macro": (
        "{% macro m() %}{% for i in range(10000) %}{% filter center(999999) %}x{% endfilter %}{% endfor %}"
        "{% endmacro %}{{ m()|length }}"
    ),
    "% with a huge width": "{{ '%1000000000d' % 1 }}",
    "% repeating a value": "{{ ('%(a)s' * 10000) % {'a': 'x' * 400000} }}",
    "the format filter": "{{ '%1000000000s'|format('x') }}",
    "str.format with a huge width": "{{ '{:>1000000000}'.format(1) }}",
    "str.format repeating a value": "{{ ('{0}' * 100000).format('x' * 1000000) }}",
    "range inside join, in a loop": "{% for i in range(100000) %}{{ range(100000)|join(',') }}{% endfor %}",
    "join with a huge separator": "{{ range(100000)|map('string')|join('x' * 1000000) }}",
    "a list of one string, repeated": "{{ (['x' * 1000000] * 1000)|join }}",
    "nested lists printed": "{% set a = ['x' * 100000] %}" + "{% set a = [a, a, a, a] %}" * 8 + "{{ a }}",
    "`~` doubling in a recursive macro": (
        "{% macro f(x, n) %}{{ f(x ~ x, n - 1) if n else x|length }}{% endmacro %}{{ f('x' * 1000, 40) }}"
    ),
    "`+` doubling in a recursive macro": (
        "{% macro f(x, n) %}{{ f(x + x, n - 1) if n else x|length }}{% endmacro %}{{ f('x' * 1000, 40) }}"
    ),
    "str.ljust": "{{ 'x'.ljust(1000000000) }}",
    "the center filter": "{{ 'x'|center(1000000000) }}",
    "the indent filter": "{{ ('x\n' * 500000)|indent(999999) }}",
    "str.join": "{{ ('y' * 100000).join('x' * 100000) }}",
    "str.join of a generator": "{{ ('y' * 100000).join(range(100000)|map('string')) }}",
    "datetime.strftime": "{{ when.strftime('%c' * 400000) }}",
    "str.replace": "{{ ('x' * 1000000).replace('x', 'y' * 1000000) }}",
    "str.expandtabs": "{{ ('\t' * 1000000).expandtabs(1000000) }}",
    "int.to_bytes": "{{ (1).to_bytes(1000000000, 'big') }}",
    "the batch filter": "{{ [1]|batch(1000000000, 'x')|list }}",
    "the sum filter over lists": "{{ ([[1]] * 1000000)|sum(start=[]) }}",
    "tojson with a huge indent": "{{ range(1000)|list|tojson(indent=1000000) }}",
    "the wordwrap filter": "{{ ('x ' * 400000)|wordwrap(1, wrapstring='y' * 10000) }}",
    "a tower of powers": "{{ ((9 ** 1000) ** 1000) ** 1000 }}",
    "repeated squaring": "{% set a = 9 ** 900 %}" + "{% set a = a * a %}" * 30 + "{{ a % 10 }}",
}
SLOW = {  # no loop, no output: only the clock stops them
    "an exponential recursive macro": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
    ),
    "|list of a huge range, in a loop": "{% for i in range(1000) %}{% set l = range(100000)|list %}{% endfor %}",
}


PRODUCT_MAX_SECONDS = render_budget.MAX_SECONDS


@pytest.fixture(autouse=True)
def quick_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_budget, "MAX_SECONDS", 0.3)


@pytest.mark.parametrize("name", [*ATTACKS, *SLOW])
def test_an_attack_is_refused_quickly_in_every_kind_of_template(name: str) -> None:
    text = {**ATTACKS, **SLOW}[name]
    for compile_ in (compile_template, compile_message_template):
        started = time.thread_time()  # the CPU the render costs: a loaded machine stretches wall time
        with pytest.raises(RenderBudgetExceeded, match="template render budget exceeded"):
            compile_(text).render(when=datetime(2026, 1, 1))
        assert time.thread_time() - started < 2.0, name


def test_the_budget_names_what_was_exceeded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_budget, "MAX_SECONDS", 60.0)  # the loop count, not a loaded machine's clock
    assert check_template(LOOPS, {}) == (
        "template render budget exceeded: 100,001 loop iterations (limit 100,000 per render)"
    )
    out = check_template("{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}", {})
    assert (
        out
        == "template render budget exceeded: over 1,000,000 characters of output (limit 1,000,000 per render)"
    )
    monkeypatch.setattr(render_budget, "MAX_SECONDS", 0.3)
    assert "over 0.3 s of render time" in (check_template(SLOW["an exponential recursive macro"], {}) or "")
    assert "'lipsum' is undefined" in (check_template("{{ lipsum(10**6) }}", {}) or "")  # no such global


def test_ordinary_templates_render_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    # The product's own budget, not the quick clock: ten thousand rows render in milliseconds,
    # but 0.3 s of wall clock is too little for them on a loaded machine.
    monkeypatch.setattr(render_budget, "MAX_SECONDS", PRODUCT_MAX_SECONDS)
    text = (
        "{% macro m(n) %}<{{ n }}{% if caller is defined %}{{ caller() }}{% endif %}>{% endmacro %}"
        "{{ m(1) }}{% call m(2) %}c{% endcall %}{% filter upper %}abc{% endfilter %}"
        "{% for x in [[1, [2]], [3]] recursive %}{{ x if x is number else loop(x) }}{% endfor %}"
        "|{% for a in rows if a > 1 %}{{ loop.index }}/{{ loop.length }} {% else %}none{% endfor %}"
        "|{{ 'a' ~ 1 }}|{{ {'k': 1}|tojson }}|{{ rows|join(',') }}|{{ '{}-{:>3}'.format(1, 2) }}"
        "|{{ 'x,y'.split(',') }}|{{ '%05.1f' % 2.25 }}|{{ (rows|sum) + 1 }}|{{ 'ab' * 2 }}|{{ 2 ** 10 }}"
    )
    out = compile_template(text).render(rows=[1, 2, 3])
    assert out == "<1><2c>ABC123|1/2 2/2 |a1|{\"k\": 1}|1,2,3|1-  2|['x', 'y']|002.2|7|abab|1024"
    big = compile_template("{% for r in rows %}{{ r }},{% endfor %}").render(rows=list(range(10_000)))
    assert len(big) == 48_890


def test_a_budget_error_is_a_config_error_with_file_line_and_key(tmp_path: Path) -> None:
    metric = (
        "name: m\ncollector:\n  type: sqlite\n  params:\n    database: /tmp/x.db\n"
        '    query: "SELECT 1 AS value {loops}"\n'
        "alerter:\n  type: webhook\n  params:\n    url: http://hooks.example/x\n"
        '    message_template: "{message}"\n'
    )
    write(tmp_path / "m" / "m.yaml", metric.format(loops=LOOPS, message="{{ metric_name }}"))
    (issue,) = load_metrics([tmp_path / "m"], None, env={}).all_errors()
    assert (issue.key, issue.line) == ("collector.params.query", 6), issue
    assert issue.message.startswith("template render budget exceeded: 100,001 loop iterations")
    # A message template over budget is an error too (not the warning a render failure is).
    write(tmp_path / "m" / "m.yaml", metric.format(loops="", message=LOOPS))
    (issue,) = load_metrics([tmp_path / "m"], None, env={}).all_errors()
    assert issue.key == "alerter.params.message_template" and "render budget" in issue.message


def test_an_email_subject_over_budget_is_a_config_error(tmp_path: Path) -> None:
    metric = (
        "name: m\ncollector:\n  type: sqlite\n  params: {{database: /tmp/x.db, query: 'SELECT 1 AS value'}}\n"
        "alerter:\n  type: email\n  params:\n    host: smtp.example\n    from: a@example.com\n"
        '    to: [b@example.com]\n    subject_template: "{subject}"\n'
    )
    write(tmp_path / "m" / "m.yaml", metric.format(subject="[{{ headline }}] {{ metric_name }}"))
    assert load_metrics([tmp_path / "m"], None, env={}).all_errors() == []
    write(tmp_path / "m" / "m.yaml", metric.format(subject=LOOPS))
    (issue,) = load_metrics([tmp_path / "m"], None, env={}).all_errors()
    assert (issue.key, issue.line) == ("alerter.params.subject_template", 11), issue
    assert issue.message.startswith("template render budget exceeded")

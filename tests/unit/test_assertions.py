"""`backtest --assert`: the promise parser, the figures and their verdicts, and labels files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detectkd.commands.assertions import (
    WEEK_S,
    Assertion,
    AssertionSyntaxError,
    Figures,
    judge,
    parse_assertions,
)
from detectkd.commands.labels_file import LabelsError, labels_by_metric, read_labels


def test_parse_names_ops_and_numbers() -> None:
    got = parse_assertions(
        " recall >= 0.9,false_alarms_per_week<2, alerts==3 ,precision>.5,incidents_missed<=1e0"
    )
    assert got == [
        Assertion("recall", ">=", 0.9),
        Assertion("false_alarms_per_week", "<", 2.0),
        Assertion("alerts", "==", 3.0),
        Assertion("precision", ">", 0.5),
        Assertion("incidents_missed", "<=", 1.0),
    ]
    assert str(got[0]) == "recall>=0.9"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("recall=>0.9", "part 1 'recall=>0.9': expected NAME OP NUMBER"),
        ("recall>=0.9,", "part 2 '': expected NAME OP NUMBER"),
        ("recall>=0.9,false_alarms<=two", "part 2 'false_alarms<=two'"),
        ("recal>=1", "unknown figure 'recal'; known: recall, precision"),
        ("recall>=0.9 alerts<=2", "part 1"),  # a missing comma
        ("recall>=1e999", "must be finite"),
    ],
)
def test_a_malformed_promise_names_the_bad_part(text: str, says: str) -> None:
    with pytest.raises(AssertionSyntaxError) as info:
        parse_assertions(text)
    assert says in str(info.value)


def test_figures_and_verdicts_of_one_metric() -> None:
    two_weeks = Figures(incidents=4, caught=3, false_alarm_labels=2, raised=1, alerts=7, seconds=2 * WEEK_S)
    promises = parse_assertions(
        "recall>=0.75,recall>0.75,precision==0.75,incidents_caught>=3,incidents_missed<=0,"
        "false_alarms<=1,false_alarms_per_week<=0.5,alerts<7,alerts_per_week<=3.5"
    )
    got = [(str(v.assertion), v.value, v.held) for v in judge(promises, [("orders", two_weeks)])]
    assert got == [
        ("recall>=0.75", 0.75, True),
        ("recall>0.75", 0.75, False),
        ("precision==0.75", 0.75, True),
        ("incidents_caught>=3", 3, True),
        ("incidents_missed<=0", 1, False),
        ("false_alarms<=1", 1, True),
        ("false_alarms_per_week<=0.5", 0.5, True),
        ("alerts<7", 7, False),
        ("alerts_per_week<=3.5", 3.5, True),
    ]
    lines = [v.line() for v in judge(promises[:1], [("orders", two_weeks)])]
    assert lines == ["held   orders: recall>=0.75 (measured 0.75: 3 of 4 labelled incidents caught)"]


def test_recall_without_incident_labels_breaks_the_promise_and_says_why() -> None:
    (v,) = judge(parse_assertions("recall>=0.9"), [("orders", Figures(seconds=WEEK_S))])
    assert not v.held and v.value is None
    assert v.line() == "BROKEN orders: recall>=0.9 (undefined: no incident labels in the range)"
    (p,) = judge(parse_assertions("precision>=0.5"), [("orders", Figures(incidents=1, seconds=WEEK_S))])
    assert not p.held and "no labelled incident or false alarm is flagged" in p.line()


def test_several_metrics_are_judged_each_and_overall_on_summed_counts() -> None:
    """A metric nobody labelled is not judged on recall; the overall line is, and the rates are
    the team's over the one replayed range (not divided by the number of metrics)."""
    promises = parse_assertions("recall>=0.5,false_alarms_per_week<=1")
    orders = Figures(incidents=2, caught=0, false_alarm_labels=1, raised=1, seconds=WEEK_S)
    visits = Figures(seconds=WEEK_S)
    pay = Figures(incidents=2, caught=2, false_alarm_labels=1, raised=1, seconds=WEEK_S)
    got = [
        (v.scope, v.assertion.name, v.value, v.held)
        for v in judge(promises, [("orders", orders), ("visits", visits), ("pay", pay)])
    ]
    assert got == [
        ("orders", "recall", 0.0, False),
        ("orders", "false_alarms_per_week", 1.0, True),
        ("visits", "false_alarms_per_week", 0.0, True),
        ("pay", "recall", 1.0, True),
        ("pay", "false_alarms_per_week", 1.0, True),
        ("overall", "recall", 0.5, True),
        ("overall", "false_alarms_per_week", 2.0, False),
    ]
    nobody = judge(promises[:1], [("a", Figures(seconds=1.0)), ("b", Figures(seconds=1.0))])
    assert [(v.scope, v.held) for v in nobody] == [("overall", False)]


EXPORT = """\
timestamp,series,value,detector,expected,lower,upper,score,anomaly,direction,skipped,feedback,feedback_by,feedback_note
2026-01-03T05:00:00+00:00,,100,mad,,,,,0,,,,,
2026-01-03T05:10:00+00:00,,950,mad,102,94,109,0.9,1,up,,incident,alice,outage
2026-01-03T05:10:00+00:00,,950,z,102,94,109,0.9,1,up,,incident,alice,outage
2026-01-03T05:20:00+00:00,,900,mad,102,94,109,0.9,1,up,,incident,alice,outage
2026-01-03T05:30:00+00:00,,100,mad,,,,,0,,,,,
2026-01-03T05:40:00+00:00,,500,mad,,,,,1,,,false_alarm,bob,load test
2026-01-03T05:50:00+00:00,,500,mad,,,,,1,,,incident,bob,
2026-01-03T05:00:00+00:00,region=eu,7,mad,,,,,1,,,incident,carol,
"""


def test_an_export_csv_gives_one_label_per_run_of_labelled_points(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(EXPORT)
    got = [
        (f.metric, f.series, f.period, f.until, f.label, f.by, f.note) for f in read_labels(path, "orders")
    ]
    t = 1767416400  # 2026-01-03T05:00:00Z
    assert got == [
        ("orders", "", t + 600, t + 1200, "incident", "alice", "outage"),
        ("orders", "", t + 2400, t + 2400, "false_alarm", "bob", "load test"),
        ("orders", "", t + 3000, t + 3000, "incident", "bob", ""),
        ("orders", "region=eu", t, t, "incident", "carol", ""),
    ]


def test_labels_csv_and_json_and_which_metric_a_file_speaks_of(tmp_path: Path) -> None:
    d = tmp_path / "labels"
    d.mkdir()
    (d / "team.csv").write_text(
        "metric,series,period,until,label,note\n"
        "orders,,2026-01-03T05:10:00+00:00,2026-01-03T05:30:00+00:00,incident,outage\n"
        "visits,host=a,1767416400,,false_alarm,\n"
    )
    (d / "more.json").write_text(
        json.dumps(
            {
                "labels": [
                    {
                        "metric": "orders",
                        "series": "",
                        "period": 1767416400,
                        "label": "false_alarm",
                        "by": "api",
                    }
                ]
            }
        )
    )
    (d / "orders.csv").write_text(EXPORT)  # an export: the metric it is named after
    (d / "notes.txt").write_text("ignored")
    found = labels_by_metric([d], ["orders", "pay"])
    assert sorted(found) == ["orders", "pay", "visits"]  # the names asked for, and every name found
    orders = found["orders"]
    t = 1767416400
    from_files = [(f.series, f.period - t, f.until - t, f.label, f.by) for f in orders]
    assert sorted(from_files) == [
        ("", 0, 0, "false_alarm", "api"),  # more.json
        ("", 600, 1200, "incident", "alice"),  # orders.csv, the export
        ("", 600, 1800, "incident", ""),  # team.csv
        ("", 2400, 2400, "false_alarm", "bob"),
        ("", 3000, 3000, "incident", "bob"),
        ("region=eu", 0, 0, "incident", "carol"),
    ]
    assert [(f.series, f.until, f.label) for f in found["visits"]] == [("host=a", 1767416400, "false_alarm")]
    assert found["pay"] == []
    # An export named on its own, for the one metric backtested: whatever its file name.
    assert len(labels_by_metric([d / "orders.csv"], ["pay"])["pay"]) == 4
    several = labels_by_metric([d / "orders.csv"], ["pay", "visits"])
    assert several["pay"] == [] and len(several["orders"]) == 4  # with several: the file's name


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("a.csv", "metric,period,label\norders,2026-01-03,maybe\n", "row 2: label must be one of"),
        ("a.csv", "metric,period,label\norders,yesterday,incident\n", "row 2: bad time"),
        ("a.csv", "when,what\n1,2\n", "neither an export"),
        ("a.json", "{", "not JSON"),
        ("a.json", '{"labels": 3}', "expected a list of labels"),
        ("a.json", '[{"metric": "orders", "label": "incident"}]', "label 1: missing 'period'"),
        ("e.csv", EXPORT.replace("load test", "x").replace("false_alarm", "nope"), "row 7: feedback must be"),
    ],
)
def test_a_bad_labels_file_names_the_file_and_the_row(
    tmp_path: Path, name: str, text: str, says: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(LabelsError) as info:
        read_labels(path, "orders")
    assert str(path) in str(info.value) and says in str(info.value)

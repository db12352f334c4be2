"""Calendars: parsing (holidays, event files, recurring days), what a period is in them, the
masks and remaps detection uses, and hostile event files."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detectkd.alerting.message import default_text
from detectkd.config.calendars import Calendar, during
from detectkd.detectors.features import feature_value
from detectkd.runtime.windows import EPOCH, SeriesWindow
from detectkd.specs.loader import LoadResult, load_metrics
from tests.support.alerts import make_alert
from tests.support.calendars import business_year, metric, replay_alerts
from tests.support.files import write

NY = ZoneInfo("America/New_York")


def at(day: str, hour: int = 12, tz: ZoneInfo = NY) -> int:
    return int(datetime.fromisoformat(day).replace(hour=hour, tzinfo=tz).timestamp())


def load(
    tmp_path: Path, calendars: str, tz: str = "America/New_York", files: dict[str, str] | None = None
) -> LoadResult:
    for name, text in (files or {}).items():
        write(tmp_path / "m" / name, text)
    write(
        tmp_path / "m" / "orders.yaml",
        f"name: orders\nschedule: {{interval: 1h, timezone: {tz}}}\n"
        "collector: {type: sqlite, params: {database: /nonexistent.db, query: 'SELECT 1 AS value'}}\n"
        "alerter: {type: log}\n" + calendars,
    )
    return load_metrics([tmp_path / "m"], None, env={})


def calendar_of(tmp_path: Path, calendars: str, **kw: object) -> Calendar:
    loaded = load(tmp_path, calendars, **kw)  # type: ignore[arg-type]
    assert loaded.ok, loaded.all_errors()
    cal = loaded.metrics["orders"].calendar
    assert cal is not None
    return cal


def errors(loaded: LoadResult) -> str:
    return "\n".join(str(i) for i in loaded.all_errors())


def test_holidays_in_the_metrics_timezone_judged_like_sunday(tmp_path: Path) -> None:
    cal = calendar_of(tmp_path, "calendars:\n  - {holidays: US, subdiv: NY, like: sunday}\n")
    hit = cal.at(at("2025-11-27"))  # Thanksgiving, a Thursday
    assert hit is not None and hit.mode == "like" and hit.like == 6 and "Thanksgiving" in hit.during
    # The day is the metric's local day: 23:30 New York on the 26th is the 27th in UTC.
    assert cal.at(at("2025-11-26", 23)) is None
    assert cal.at(at("2025-11-28", 0)) is None
    # Weekday features say Sunday; the others stay the period's own.
    t = at("2025-11-27", 10)
    wd = cal.weekday(t)
    assert wd == 7
    assert feature_value("day_of_week", t, {}, NY, wd) == 7.0
    assert feature_value("hour_of_week", t, {}, NY, wd) == 6 * 24 + 10
    assert feature_value("is_weekend", t, {}, NY, wd) == 1.0
    assert feature_value("hour_of_day", t, {}, NY, wd) == 10.0
    assert feature_value("day_of_month", t, {}, NY, wd) == 27.0
    # auto looks the last Sunday up: four days back from a Thursday.
    shifts = cal.like_shift(np.array([t, at("2025-11-25")], np.int64))
    assert shifts.tolist() == [4 * 86400, 0]
    assert not cal.excluded(np.array([t], np.int64)).any()
    assert during(cal, t) == {"during": "Thanksgiving Day", "judged_like": "sunday"}


def test_event_file_yaml_dates_ranges_times_and_modes(tmp_path: Path) -> None:
    events = (
        "- {name: Black Friday campaign, start: 2025-11-28, end: 2025-11-30}\n"
        "- {name: Release 4.2, date: 2025-12-03}\n"
        "- name: Database migration\n  start: 2025-12-05T22:00\n  end: 2025-12-06T02:00\n  mode: exclude\n"
    )
    cal = calendar_of(tmp_path, "calendars:\n  - {file: events.yaml}\n", files={"events.yaml": events})
    bf = cal.at(at("2025-11-30", 23))
    assert bf is not None and bf.mode == "alert" and bf.during == "Black Friday campaign"
    assert cal.at(at("2025-12-01", 0)) is None  # the end date is inclusive, then over
    assert cal.at(at("2025-12-05", 21)) is None
    mig = cal.at(at("2025-12-05", 23))
    assert mig is not None and mig.mode == "exclude"
    assert cal.at(at("2025-12-06", 2)) is None  # a time's end is exclusive
    times = np.array([at("2025-12-05", 21), at("2025-12-05", 23), at("2025-12-06", 1)], np.int64)
    assert cal.excluded(times).tolist() == [False, True, True]
    shown = cal.between(at("2025-11-01", 0), at("2026-01-01", 0))
    assert [e.name for e in shown] == ["Black Friday campaign", "Release 4.2", "Database migration"]


def test_event_file_csv_and_calendar_mode_default(tmp_path: Path) -> None:
    text = "name,date,start,end,mode,like\nSpring sale,,2025-04-14,2025-04-16,,\nOutage,2025-05-01,,,alert,\n"
    cal = calendar_of(tmp_path, "calendars:\n  - {file: ev.csv, mode: exclude}\n", files={"ev.csv": text})
    sale, outage = cal.at(at("2025-04-15")), cal.at(at("2025-05-01"))
    assert sale is not None and sale.mode == "exclude"  # the calendar's mode
    assert outage is not None and outage.mode == "alert"  # the event's own


def test_a_spreadsheets_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    text = "\ufeffname,date\r\nLaunch,2025-05-01\r\n"
    cal = calendar_of(tmp_path, "calendars:\n  - {file: ev.csv}\n", files={"ev.csv": text})
    hit = cal.at(at("2025-05-01"))
    assert hit is not None and hit.during == "Launch"


def test_recurring_business_calendar(tmp_path: Path) -> None:
    cal = calendar_of(
        tmp_path,
        "calendars:\n"
        "  - {name: nightly batch, weekdays: [mon-fri], times: ['01:00-03:00'], mode: exclude}\n"
        "  - {name: month-end close, monthdays: [-1]}\n",
    )
    hit = cal.at(at("2025-11-25", 2))  # a Tuesday, 02:00
    assert hit is not None and hit.mode == "exclude" and hit.during == "nightly batch"
    assert cal.at(at("2025-11-29", 2)) is None  # a Saturday
    assert cal.at(at("2025-11-25", 3)) is None
    last = cal.at(at("2025-02-28"))
    assert last is not None and last.during == "month-end close"
    assert cal.at(at("2025-02-27")) is None


@pytest.mark.parametrize(
    ("events", "line", "key", "words"),
    [
        ("- {name: a, date: 2025-01-01}\n- {name: b, date: 2025-13-45}\n", 2, "[1].date", "not a date"),
        (
            "- {name: a, date: 2025-01-01}\n- {name: b, start: 2025-02-02, end: 2025-02-01}\n",
            2,
            "[1].end",
            "not after",
        ),
        (
            "- {name: a, date: 2025-01-01}\n-\n  name: b\n  date: 2025-01-02\n  like: funday\n",
            5,
            "[1].like",
            "weekday",
        ),
        ("- {date: 2025-01-01}\n", 1, "[0].name", "needs a `name`"),
        ("- {name: a, date: 2025-01-01, colour: red}\n", 1, "[0].colour", "unknown key"),
        ("- {name: a, start: 2020-01-01, end: 2030-01-01}\n", 1, "[0].end", "at most 366 days"),
        ("- {name: a, date: 2025-01-01, mode: mute}\n", 1, "[0].mode", "not a mode"),
        ("- {name: a, start: '2025-01-01T10:00'}\n", 1, "[0].end", "needs an `end`"),
        ("- {name: a, date: '2025-01-01T10:00'}\n", 1, "[0].date", "a day, not a time"),
    ],
)
def test_bad_events_name_file_line_and_key(
    tmp_path: Path, events: str, line: int, key: str, words: str
) -> None:
    loaded = load(tmp_path, "calendars:\n  - {file: events.yaml}\n", files={"events.yaml": events})
    assert not loaded.ok
    issue = next(i for i in loaded.all_errors() if i.file.endswith("events.yaml"))
    assert (issue.line, issue.key) == (line, key), issue
    assert words in issue.message
    assert "orders.yaml" in errors(loaded) and "calendars[0].file" in errors(loaded)


def test_bad_csv_row_names_its_line(tmp_path: Path) -> None:
    text = "name,date\nA,2025-01-01\n\nB,yesterday\n"
    loaded = load(tmp_path, "calendars:\n  - {file: ev.csv}\n", files={"ev.csv": text})
    issue = next(i for i in loaded.all_errors() if i.file.endswith("ev.csv"))
    assert (issue.line, issue.key) == (4, "date") and "not a date" in issue.message


def test_bad_calendar_entries(tmp_path: Path) -> None:
    assert "no holidays for 'XX'" in errors(load(tmp_path, "calendars:\n  - {holidays: XX}\n"))
    assert "not a weekday" in errors(load(tmp_path, "calendars:\n  - {holidays: US, like: funday}\n"))
    both = errors(load(tmp_path, "calendars:\n  - {holidays: US, file: a.yaml}\n"))
    assert "a calendar is one of" in both
    assert "needs `like" in errors(load(tmp_path, "calendars:\n  - {holidays: US, mode: like}\n"))
    assert "not a time range" in errors(load(tmp_path, "calendars:\n  - {weekdays: [sat], times: ['9-5']}\n"))
    missing = errors(load(tmp_path, "calendars:\n  - {file: nowhere.yaml}\n"))
    assert "cannot read the event file" in missing and "nowhere.yaml" in missing


def test_hostile_event_files_are_refused_whole(tmp_path: Path) -> None:
    big = tmp_path / "m" / "big.csv"
    big.parent.mkdir(parents=True, exist_ok=True)
    with big.open("w") as fh:  # 10 MB
        fh.write("name,date\n")
        row = "x" * 90 + ",2025-01-01\n"
        for _ in range(10_000_000 // len(row)):
            fh.write(row)
    text = errors(load(tmp_path, "calendars:\n  - {file: big.csv}\n"))
    assert "above the limit of 1,048,576" in text
    many = "name,date\n" + "e,2025-01-01\n" * 10_001  # small, but more events than allowed
    text = errors(load(tmp_path, "calendars:\n  - {file: many.csv}\n", files={"many.csv": many}))
    assert "above the limit of 10,000" in text
    lines = "".join(f"- {{name: e{i}, date: 2025-01-01}}\n" for i in range(10_001))
    text = errors(load(tmp_path, "calendars:\n  - {file: many.yaml}\n", files={"many.yaml": lines}))
    assert "limit" in text  # the YAML value cap or the event cap, never a load of them all


def test_names_are_flattened_and_capped(tmp_path: Path) -> None:
    events = '- {name: "Launch\\n<b>now</b>\\t!", date: 2025-01-01}\n'
    cal = calendar_of(tmp_path, "calendars:\n  - {file: e.yaml}\n", files={"e.yaml": events})
    hit = cal.at(at("2025-01-01"))
    assert hit is not None and hit.during == "Launch <b>now</b> !"  # escaped where shown
    long = f"- {{name: {'x' * 201}, date: 2025-01-01}}\n"
    assert "longer than 200" in errors(
        load(tmp_path, "calendars:\n  - {file: l.yaml}\n", files={"l.yaml": long})
    )


def test_files_without_calendars_are_unchanged(tmp_path: Path) -> None:
    plain = load(tmp_path / "a", "")
    empty = load(tmp_path / "b", "calendars: []\n")
    a, b = plain.metrics["orders"], empty.metrics["orders"]
    assert a.calendar is None and b.calendar is None
    assert a.fingerprint == b.fingerprint
    with_cal = load(tmp_path / "c", "calendars:\n  - {holidays: US}\n").metrics["orders"]
    assert with_cal.fingerprint != a.fingerprint
    assert with_cal.detector_fingerprint == a.detector_fingerprint  # a calendar edit keeps alert state


def test_event_file_edit_changes_the_fingerprint(tmp_path: Path) -> None:
    cal = "calendars:\n  - {file: e.yaml}\n"
    one = load(tmp_path, cal, files={"e.yaml": "- {name: a, date: 2025-01-01}\n"}).metrics["orders"]
    two = load(tmp_path, cal, files={"e.yaml": "- {name: a, date: 2025-01-02}\n"}).metrics["orders"]
    assert one.fingerprint != two.fingerprint


class Between:
    """A mask: the times in [300, 500)."""

    def excluded(self, times: np.ndarray) -> np.ndarray:
        return (times >= 300) & (times < 500)

    def excluded_at(self, ts: int) -> bool:
        return 300 <= ts < 500


def test_window_keeps_excluded_periods_out() -> None:
    mask = Between()
    w = SeriesWindow(10_000, (), mask=mask)
    for t in range(0, 700, 100):
        w.add(t, float(t), {})
    h = w.history()
    assert np.isnan(h.values[3]) and np.isnan(h.values[4]) and h.values[5] == 500.0
    bulk = SeriesWindow(10_000, (), mask=mask)
    times = np.arange(0, 700, 100, dtype=np.int64) - EPOCH  # as a snapshot holds them
    bulk.take(times, np.arange(0, 700, 100, dtype=np.float64), {})
    assert np.array_equal(np.isnan(bulk.history().values), np.isnan(h.values))
    ext = SeriesWindow(10_000, (), mask=mask)
    ext.add(0, 0.0, {})
    ext.extend(np.arange(100, 700, 100, dtype=np.int64), np.arange(100, 700, 100, dtype=np.float64), {})
    assert np.array_equal(np.isnan(ext.history().values), np.isnan(h.values))


def test_alert_message_names_the_event() -> None:
    t = 1_764_252_000
    alert = make_alert(
        period=t,
        started_at=t,
        value=10.0,
        score=0.9,
        direction="down",
        detector="auto",
        interval_seconds=3600,
        extra={"during": "Black Friday campaign", "judged_like": "sunday"},
    )
    assert "During: Black Friday campaign (judged like a sunday)" in default_text(alert)


def test_event_file_next_to_the_metrics_is_not_a_metric(tmp_path: Path) -> None:
    loaded = load(
        tmp_path, "calendars:\n  - {file: ev.yaml}\n", files={"ev.yaml": "- {name: a, date: 2025-01-01}\n"}
    )
    assert loaded.ok and list(loaded.metrics) == ["orders"]


DETECTORS = ("auto", "{type: seasonal, params: {season: hour_of_week, window_size: 84d, min_samples: 8}}")


@pytest.mark.parametrize("detector", DETECTORS)
def test_backtest_honours_like_and_exclude(tmp_path: Path, detector: str) -> None:
    """Half a year of hourly orders: holidays look like Sundays, a campaign lifts its days.
    Without a calendar they alert; with one (`like: sunday`, `exclude`) they do not, and the
    excluded days stay out of what later days are judged against."""
    b = business_year(tmp_path / "data.csv", days=160)
    write(tmp_path / "events.yaml", "- {name: Spring sale, start: 2025-04-14, end: 2025-04-16}\n")
    special = set(b.holidays) | {d for d in b.campaigns if d < date(2025, 6, 1)}
    cal = "calendars:\n  - {holidays: US, like: sunday}\n  - {file: ../events.yaml, mode: exclude}\n"
    found = {}
    for name, text in (("plain", ""), ("cal", cal)):
        write(tmp_path / name / "x.yaml", metric("x", b.path, b.step, detector, text))
        alerts, _ = replay_alerts(tmp_path / name, "x", b)
        found[name] = {datetime.fromtimestamp(a.period, UTC).date() for a in alerts} & special
    assert len(found["plain"]) >= 3, found
    assert len(found["cal"]) <= 1, found


def test_the_daemons_calendars_apply_to_metrics_without_their_own(tmp_path: Path) -> None:
    from detectkd.config.settings import load_settings
    from detectkd.specs.loader import load_for

    write(tmp_path / "etc" / "events.yaml", "- {name: Migration, date: 2025-03-01, mode: exclude}\n")
    write(
        tmp_path / "etc" / "detectkd.yaml",
        (
            f"metrics_dir: {tmp_path / 'm'}\nprofiles_file: null\n"
            "calendars:\n  - {holidays: US, like: sunday}\n  - {file: events.yaml}\n"
        ),
    )
    settings = load_settings(tmp_path / "etc" / "detectkd.yaml")
    assert settings.calendars[1].file == str(tmp_path / "etc" / "events.yaml")  # beside the settings
    body = "collector: {type: sqlite, params: {database: /x.db, query: 'SELECT 1 AS value'}}\n"
    write(tmp_path / "m" / "a.yaml", "name: a\n" + body)
    write(tmp_path / "m" / "b.yaml", "name: b\n" + body + "calendars: []\n")  # opts out
    write(tmp_path / "m" / "c.yaml", "name: c\n" + body + "calendars:\n  - {holidays: DE}\n")  # its own
    loaded = load_for(settings)
    assert loaded.ok, loaded.all_errors()
    a, b, c = (loaded.metrics[n].calendar for n in "abc")
    assert a is not None and b is None and c is not None
    assert (m := a.at(at("2025-03-01", 12, ZoneInfo("UTC")))) is not None and m.mode == "exclude"
    assert (h := a.at(at("2025-07-04", 12, ZoneInfo("UTC")))) is not None and h.like == 6
    assert c.at(at("2025-07-04", 12, ZoneInfo("UTC"))) is None and c.at(at("2025-10-03", 12, ZoneInfo("UTC")))
    write(tmp_path / "etc" / "events.yaml", "- {name: Migration, date: 2025-02-30}\n")
    broken = load_for(settings)
    text = errors(broken)
    assert "events.yaml:1: [0].date: not a date" in text and "the daemon's `calendars` setting" in text
    assert "b" in broken.metrics and "c" in broken.metrics  # only the metrics that use it fail


def test_alerts_during_an_alert_mode_event_name_it(tmp_path: Path) -> None:
    """`mode: alert` (the default) changes no judgement: the campaign's jump still alerts,
    and the alert carries the event's name in `extra.during` and its message."""
    b = business_year(tmp_path / "data.csv", days=120)
    write(tmp_path / "events.yaml", "- {name: Spring sale, start: 2025-04-14, end: 2025-04-16}\n")
    cal = "calendars:\n  - {file: ../events.yaml}\n"
    alerts = {}
    for name, text in (("plain", ""), ("cal", cal)):
        write(tmp_path / name / "x.yaml", metric("x", b.path, b.step, "auto", text))
        alerts[name], _ = replay_alerts(tmp_path / name, "x", b)
    assert [a.period for a in alerts["cal"]] == [a.period for a in alerts["plain"]]  # same judgement
    sale = [a for a in alerts["cal"] if datetime.fromtimestamp(a.period, UTC).date() in b.campaigns]
    assert sale, "the campaign's jump alerts"
    assert all(a.extra["during"] == "Spring sale" and "judged_like" not in a.extra for a in sale)
    assert "During: Spring sale" in default_text(sale[0])
    others = [a for a in alerts["cal"] if a not in sale]
    assert all("during" not in a.extra for a in others)


def test_the_array_answers_are_the_one_by_one_answers(tmp_path: Path) -> None:
    """`excluded` and `like_shift` over arrays (per day and event) say what `at` says per
    time: across DST changes, partial-day and multi-day events and overlapping modes."""
    events = (
        "- {name: a, start: '2025-03-08T22:30', end: '2025-03-10T01:15', like: saturday}\n"  # over the DST change
        "- {name: b, start: '2025-03-09T12:00', end: '2025-03-09T13:00', mode: exclude}\n"  # inside a
        "- {name: c, date: 2025-11-02, like: monday}\n"  # the day clocks go back: 25 hours
        "- {name: d, date: 2025-11-02, like: friday}\n"  # the same day: the first wins
    )
    cal = calendar_of(
        tmp_path,
        "calendars:\n  - {file: e.yaml}\n  - {holidays: US, like: sunday}\n"
        "  - {name: n, weekdays: [tue], times: ['01:00-02:30'], mode: exclude}\n",
        files={"e.yaml": events},
    )
    rng = np.random.default_rng(3)
    start = at("2025-03-01", 0)
    for times in (
        np.arange(start, start + 300 * 86400, 900, dtype=np.int64),
        np.sort(rng.integers(start, start + 300 * 86400, 5000)).astype(np.int64),
        rng.integers(start, start + 300 * 86400, 500).astype(np.int64),  # unsorted
    ):
        want_ex, want_shift = [], []
        for t in times.tolist():
            h = cal.at(t)
            want_ex.append(h is not None and h.mode == "exclude")
            local = datetime.fromtimestamp(t, NY).weekday()
            want_shift.append((local - h.like) % 7 * 86400 if h is not None and h.like is not None else 0)
        assert cal.excluded(times).tolist() == want_ex
        assert cal.like_shift(times).tolist() == want_shift
    assert sum(want_ex) > 0 and any(want_shift)


def test_an_excluded_period_without_data_is_no_no_data(tmp_path: Path) -> None:
    """A migration window whose source is empty: without a calendar NO DATA fires after
    `no_data_periods`; excluded, it neither fires nor counts, and it is not a gap after."""
    b = business_year(tmp_path / "data.csv", days=60)
    lines = (tmp_path / "data.csv").read_text().splitlines(keepends=True)
    gap = ("2025-02-10 02:", "2025-02-10 03:", "2025-02-10 04:", "2025-02-10 05:", "2025-02-10 06:")
    (tmp_path / "data.csv").write_text("".join(x for x in lines if not x.startswith(gap)))
    write(
        tmp_path / "events.yaml", "- {name: migration, start: '2025-02-10T02:00', end: '2025-02-10T07:00'}\n"
    )
    cal = "calendars:\n  - {file: ../events.yaml, mode: exclude}\n"
    kinds = {}
    for name, text in (("plain", ""), ("cal", cal)):
        write(tmp_path / name / "x.yaml", metric("x", b.path, b.step, "auto", text))
        _, t = replay_alerts(tmp_path / name, "x", b)
        kinds[name] = [(a.kind, a.status) for a in t.alerts if a.kind == "nodata"]
    assert kinds["plain"] == [("nodata", "firing"), ("nodata", "resolved")]
    assert kinds["cal"] == []

"""CSV exports open in a spreadsheet as data: formula-looking cells are quoted, numbers stay numbers."""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

import pytest

from detectkd.alerting.feedback import Feedback
from detectkd.commands.csvsafe import SafeWriter, safe_cell
from detectkd.commands.history import EXPORT_HEADER, export_rows
from detectkd.storage.base import StoredPoint


@pytest.mark.parametrize(
    "cell", ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("x")', "-", "+"]
)
def test_formula_cells_get_a_leading_quote(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize(
    "cell", ["-1.5", "-3", "+2", "-1e-05", "1.25e+10", "-.5", "42", "", "de", "a=b", 7, None]
)
def test_numbers_and_plain_text_stay_as_they_are(cell: object) -> None:
    assert safe_cell(cell) == cell


def test_an_export_with_hostile_labels_and_notes_has_no_formula_cell() -> None:
    series = 'country==HYPERLINK("http://evil")'
    hostile = "@SUM(1+1)*cmd|' /C calc'!A0"
    points = {series: [StoredPoint(1_795_000_200, -12.5, {})], "=2*3": [StoredPoint(1_795_000_200, 3.0, {})]}
    fb = Feedback("m", series, 1_795_000_200, "incident", 1_795_000_200, "-bob", 0.0, hostile)
    out = io.StringIO()
    writer = SafeWriter(out)
    writer.writerow(EXPORT_HEADER)
    writer.writerows(export_rows(points, [], ZoneInfo("UTC"), [fb]))
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == list(EXPORT_HEADER)
    cells = [c for row in rows[1:] for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and c != "-12.5")]
    by_series = {r[1]: r for r in rows[1:]}
    assert by_series["'=2*3"][2] == "3"
    hot = by_series[series]  # starts with a letter: as it is
    assert hot[2] == "-12.5"  # a negative number stays a number
    assert hot[-2:] == ["'-bob", "'" + hostile]

"""benchmarks/nab_sweep.py's kept rows belong to the build that replayed them."""

from __future__ import annotations

from pathlib import Path

from benchmarks.nab_sweep import code_digest


def test_the_kept_rows_key_changes_with_any_code_change(tmp_path: Path) -> None:
    (tmp_path / "detectors").mkdir()
    params = tmp_path / "detectors" / "autoparams.py"
    params.write_text("min_z = 3.0\n")
    before = code_digest(tmp_path)
    assert code_digest(tmp_path) == before  # the same build: the same key
    params.write_text("min_z = 4.0\n")  # a default changed
    assert code_digest(tmp_path) != before
    params.write_text("min_z = 3.0\n")
    (tmp_path / "detectors" / "new.py").write_text("")  # a module added
    added = code_digest(tmp_path)
    assert added != before
    (tmp_path / "notes.txt").write_text("not code")  # not Python: not the build
    assert code_digest(tmp_path) == added

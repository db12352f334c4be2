"""`exposition.Family`: a sample's line is rendered when its value changes (issue 28: a run
sets a dozen samples, most of them to the value they had; those keep their line)."""

from __future__ import annotations

from detectkd.exposition import Family


def lines(f: Family) -> list[str]:
    return [ln for ln in f.render().splitlines() if not ln.startswith("#")]


def test_a_changed_value_renders_its_line_again_and_an_unchanged_one_keeps_it() -> None:
    f = Family("detectk_x", "x", "gauge", ("metric",))
    g = f.labels("m1")
    assert lines(f) == ['detectk_x{metric="m1"} 0.0']
    g.set(1)
    g.set(1)
    assert lines(f) == ['detectk_x{metric="m1"} 1.0']
    g.set(2.5)
    assert lines(f) == ['detectk_x{metric="m1"} 2.5']


def test_negative_zero_after_zero_is_rendered_as_itself() -> None:
    f = Family("detectk_x", "x", "gauge", ("metric",))
    g = f.labels("m1")
    g.set(-0.0)  # equal to 0.0, rendered apart
    assert lines(f) == ['detectk_x{metric="m1"} -0.0']
    g.set(0.0)
    assert lines(f) == ['detectk_x{metric="m1"} 0.0']


def test_nan_is_rendered_each_time_and_a_removed_sample_starts_again_at_zero() -> None:
    f = Family("detectk_c", "c", "counter", ("metric",))
    c = f.labels("m1")
    c.inc(3)
    f.remove("m1")
    assert lines(f) == []
    f.labels("m1").inc()
    assert lines(f) == ['detectk_c_total{metric="m1"} 1.0']
    g = Family("detectk_g", "g", "gauge", ("metric",)).labels("m2")
    g.set(float("nan"))
    g.set(float("nan"))
    assert g.get() != g.get()

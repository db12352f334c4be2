"""`export: true`'s per-series gauges: label names Prometheus accepts, the global cap (series
already exported keep their place), a metric's series replaced per run, text that
Prometheus's own parser reads."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from detectkd.exposition import SeriesGauges, label_name


def parsed(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_label_names_are_what_prometheus_accepts() -> None:
    assert label_name("region") == "region"
    assert label_name("data-center.zone") == "data_center_zone"
    assert label_name("metric") == "series_metric"  # the metric's own label wins
    assert label_name("__name__") == "series_name__"  # reserved prefix gone, the rest kept
    assert label_name("1st") == "series_1st"
    assert label_name("größe") == "gr__e"


def test_samples_render_as_prometheus_text_with_the_series_labels() -> None:
    g = SeriesGauges(cap=10)
    g.update(
        "orders",
        {
            "region=eu": ({"region": "eu"}, (120.0, 100.0, 90.0, 110.0, 0.97)),
            "region=us": ({"region": 'u"s'}, (None, None, None, None, None)),
        },
    )
    got = parsed(g.render())
    eu = (("metric", "orders"), ("region", "eu"))
    assert got[("detectk_series_value", eu)] == 120.0
    assert got[("detectk_series_expected", eu)] == 100.0
    assert (got[("detectk_series_lower", eu)], got[("detectk_series_upper", eu)]) == (90.0, 110.0)
    assert got[("detectk_series_score", eu)] == 0.97
    assert not [k for k in got if dict(k[1]).get("region") == 'u"s']  # nothing known: no sample
    assert g.count == 2


def test_the_cap_keeps_exported_series_and_refuses_new_ones() -> None:
    g = SeriesGauges(cap=2)
    sample = (1.0, 1.0, 0.0, 2.0, 0.1)
    assert g.update("a", {"k=1": ({"k": "1"}, sample), "k=2": ({"k": "2"}, sample)}) == 0
    assert g.update("b", {"k=3": ({"k": "3"}, sample)}) == 1  # over the cap: refused
    assert g.update("a", {"k=2": ({"k": "2"}, sample)}) == 0  # a's k=1 stopped reporting
    assert g.count == 1
    assert g.update("b", {"k=3": ({"k": "3"}, sample), "k=4": ({"k": "4"}, sample)}) == 1
    names = {dict(k[1])["k"] for k in parsed(g.render())}
    assert names == {"2", "3"}
    g.forget("a")
    assert g.count == 1 and {dict(k[1])["k"] for k in parsed(g.render())} == {"3"}
    assert SeriesGauges(cap=5).render() == ""

"""Peer verification: deviations in alarm lines, classification, nearest peers, entity files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from detectkd.config.models import Peers
from detectkd.detectors.base import Result
from detectkd.runtime.peers import PeerGraph, classify, deviation, passes
from detectkd.specs.entities import Entity, load_entities


def result(value: float, expected: float = 10.0, half: float = 2.0, skipped: str | None = None) -> Result:
    return Result(
        "mad",
        value,
        abs(value - expected) > half,
        0.0,
        expected,
        expected - half,
        expected + half,
        skipped=skipped,
    )


def test_deviation_is_signed_and_one_on_the_band() -> None:
    assert deviation([result(12.0)]) == pytest.approx(1.0)
    assert deviation([result(7.0)]) == pytest.approx(-1.5)
    # The largest |d| of several detectors; skipped and bound-less results are ignored.
    no_bounds = Result("flatline", 5.0, True, 0.9)
    assert deviation([result(11.0), result(4.0, half=3.0), no_bounds]) == pytest.approx(-2.0)
    assert deviation([no_bounds, result(30.0, skipped="cold start")]) is None
    flat = Result("mad", 10.0, False, 0.0, 10.0, 10.0, 10.0)
    assert deviation([flat]) == 0.0


def test_classify_shared_isolated_unknown() -> None:
    p = Peers(min_peers=3, deviation=0.5, shared_share=0.5)
    assert classify(-3.0, [-0.8, -1.2, -0.6, 0.1], p).kind == "shared"  # 3 of 4 the same way
    lone = classify(-3.0, [0.1, -0.2, 0.3, 0.9], p)
    assert lone.kind == "isolated" and lone.share == 0.0 and lone.peers == 4
    # Peers deviating the other way do not make it shared.
    assert classify(3.0, [-2.0, -2.0, -2.0], p).kind == "isolated"
    assert classify(3.0, [2.0, 2.0], p).kind == "unknown"  # fewer than min_peers
    assert classify(3.0, [1.0, 0.2, 0.2, 0.2], p).share == pytest.approx(0.25)


def test_requirement_passes_unknown_both_ways() -> None:
    p = Peers(min_peers=1)
    shared, isolated, unknown = classify(2, [2], p), classify(2, [0], p), classify(2, [], p)
    assert passes(shared, "shared") and not passes(shared, "isolated")
    assert passes(isolated, "isolated") and not passes(isolated, "shared")
    assert passes(unknown, "isolated") and passes(unknown, "shared") and passes(None, "shared")
    assert passes(isolated, "any") and passes(shared, "any")


def test_nearest_peers_by_distance_radius_and_attribute() -> None:
    p = Peers(mode="nearest", k=2, radius_km=100, attribute="elevation", max_attribute_difference=300)
    g = PeerGraph(p)
    # Stations along a parallel, ~11 km per 0.1 degree of latitude.
    for name, lat, elev in [
        ("a", 50.0, 100),
        ("b", 50.1, 150),
        ("c", 50.2, 120),
        ("d", 50.3, 900),
        ("e", 52.0, 100),
    ]:
        g.observe(f"station={name}", {"latitude": lat, "longitude": 8.0, "elevation": elev})
    assert g.peers_of("station=a", []) == ["station=b", "station=c"]
    # d is close but 780 m higher than c; e is 200 km away: never peers.
    assert g.peers_of("station=c", []) == ["station=b", "station=a"]
    assert g.peers_of("station=d", []) == []
    assert g.peers_of("station=e", []) == []
    # Moving a station recomputes its neighbours.
    g.observe("station=e", {"latitude": 50.05, "longitude": 8.0, "elevation": 100})
    assert g.peers_of("station=a", []) == ["station=e", "station=b"]
    g.forget("station=e")
    assert g.peers_of("station=a", []) == ["station=b", "station=c"]


def test_all_mode_uses_every_other_present_series() -> None:
    g = PeerGraph(Peers())
    assert g.peers_of("h=1", ["h=1", "h=2", "h=3"]) == ["h=2", "h=3"]


def test_haversine_distance_is_real(tmp_path: Path) -> None:
    # Berlin - Munich is ~504 km: peers at 550 km, not at 450 km.
    for radius, expect in ((550.0, ["city=muc"]), (450.0, [])):
        g = PeerGraph(Peers(mode="nearest", radius_km=radius))
        g.observe("city=ber", {"latitude": 52.52, "longitude": 13.405})
        g.observe("city=muc", {"latitude": 48.137, "longitude": 11.575})
        assert g.peers_of("city=ber", []) == expect


def test_entity_file(tmp_path: Path) -> None:
    f = tmp_path / "stations.csv"
    f.write_text("station,latitude,longitude,elevation,name\n1,50.0,8.0,110,Frankfurt\n2,50.1,8.1,,Hanau\n")
    got = load_entities(f, ("station",), Peers(mode="nearest"))
    assert got["station=1"] == Entity(
        50.0, 8.0, {"station": 1.0, "latitude": 50.0, "longitude": 8.0, "elevation": 110.0}
    )
    assert "elevation" not in got["station=2"].attributes
    g = PeerGraph(Peers(mode="nearest"), got)
    g.observe("station=1", {"latitude": 0.0, "longitude": 0.0})  # the static file wins
    assert g.peers_of("station=1", []) == ["station=2"]
    with pytest.raises(ValueError, match="no column 'host'"):
        load_entities(f, ("host",), Peers(mode="nearest"))
    assert math.isclose(got["station=2"].latitude or 0, 50.1)

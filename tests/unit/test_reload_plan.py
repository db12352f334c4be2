"""Reload as a pure plan: which metrics are added, removed, kept, restarted with or without
their alert state, and where pending outbox rows of an edited alerter go."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detectkd.alerting.channels.channelset import Bound, ChannelSet
from detectkd.runtime.reload import Action, make_plan
from detectkd.specs.loader import MetricSpec, load_metrics
from tests.support.files import write

BASE = """\
name: {name}
schedule: {{interval: {interval}, timezone: {tz}}}
collector:
  type: sqlite
  params: {{database: /tmp/x.db, query: "SELECT 1 AS value"}}
detector:
  type: mad
  params: {{window_size: 7 days, n_sigma: {n_sigma}}}
alerters:
{alerters}
"""
HOOK_A = "  - {type: webhook, params: {url: 'http://a.example/hook'}}"
HOOK_B = "  - {type: webhook, params: {url: 'http://b.example/hook'}}"
SLACK = "  - {type: slack, params: {webhook_url: 'http://slack.example/x'}}"


def spec(
    tmp_path: Path,
    name: str = "m",
    *,
    interval: str = "1h",
    tz: str = "UTC",
    n_sigma: int = 3,
    alerters: tuple[str, ...] = (HOOK_A,),
) -> MetricSpec:
    d = tmp_path / name
    text = BASE.format(name=name, interval=interval, tz=tz, n_sigma=n_sigma, alerters="\n".join(alerters))
    write(d / f"{name}.yaml", text)
    result = load_metrics([d], None, env={})
    assert result.ok, result.all_errors()
    return result.metrics[name]


def plan_for(tmp_path: Path, old: MetricSpec, **change: Any) -> tuple[Action, dict[str, str]]:
    new = spec(tmp_path / "new", old.name, **change)
    d = tmp_path / "new" / old.name
    plan = make_plan({old.name: old}, load_metrics([d], None, env={}))
    assert plan.target[old.name].fingerprint == new.fingerprint
    return plan.actions[old.name], plan.renames.get(old.name, {})


def test_each_kind_of_change_gets_its_action(tmp_path: Path) -> None:
    old = spec(tmp_path / "old")
    assert plan_for(tmp_path / "1", old) == (Action.KEEP, {})
    # Where alerts go does not change what the alert state means: restarted, state kept.
    assert plan_for(tmp_path / "2", old, alerters=(HOOK_A, SLACK))[0] is Action.RESTART_KEEPING_STATE
    # Another detector, grid or timezone: the old state judged other numbers.
    changes: list[dict[str, Any]] = [{"n_sigma": 4}, {"interval": "30m"}, {"tz": "Europe/Berlin"}]
    for i, change in enumerate(changes):
        assert plan_for(tmp_path / f"3{i}", old, **change)[0] is Action.RESTART_RESETTING_STATE, change


def test_added_removed_and_broken_files(tmp_path: Path) -> None:
    d = tmp_path / "metrics"
    for name in ("keep", "gone", "broken"):
        write(d / f"{name}.yaml", BASE.format(name=name, interval="1h", tz="UTC", n_sigma=3, alerters=HOOK_A))
    old = load_metrics([d], None, env={}).metrics
    (d / "gone.yaml").unlink()
    write(d / "broken.yaml", "name: broken\ncollector: [oops\n")
    write(d / "fresh.yaml", BASE.format(name="fresh", interval="1h", tz="UTC", n_sigma=3, alerters=HOOK_A))
    plan = make_plan(old, load_metrics([d], None, env={}))
    assert plan.actions == {
        "keep": Action.KEEP,
        "broken": Action.KEEP,
        "gone": Action.REMOVE,
        "fresh": Action.ADD,
    }
    assert plan.kept == ["broken"] and plan.target["broken"] is old["broken"]
    assert plan.summary()["removed"] == 1 and plan.summary()["state_reset"] == 0


def test_alerter_ids_follow_the_alerter_not_its_position(tmp_path: Path) -> None:
    """Issue 12, bug 6: outbox rows named the alerter by index, so reordering sent them elsewhere."""
    one = spec(tmp_path / "a", alerters=(HOOK_A, SLACK, HOOK_B))
    two = spec(tmp_path / "b", alerters=(HOOK_B, HOOK_A, SLACK))
    ids_one = {a.params.model_dump_json(): a.id for a in one.alerters}
    ids_two = {a.params.model_dump_json(): a.id for a in two.alerters}
    assert ids_one == ids_two and len(set(ids_one.values())) == 3
    assert all(a.id.startswith(f"{a.type}:") for a in one.alerters)
    twice = spec(tmp_path / "c", alerters=(HOOK_A, HOOK_A))
    assert twice.alerters[0].id != twice.alerters[1].id  # the same channel twice stays two rows


def test_an_alerter_edited_in_place_carries_its_pending_rows(tmp_path: Path) -> None:
    old = spec(tmp_path / "old", alerters=(HOOK_A, SLACK))
    rotated = HOOK_A.replace("a.example", "a2.example")
    action, renames = plan_for(tmp_path / "1", old, alerters=(rotated, SLACK))
    new = spec(tmp_path / "x", alerters=(rotated, SLACK))
    assert action is Action.RESTART_KEEPING_STATE
    assert renames == {old.alerters[0].id: new.alerters[0].id}
    # Reordered: nothing moves. Removed: nothing to carry to (and nothing sent twice).
    assert plan_for(tmp_path / "2", old, alerters=(SLACK, HOOK_A))[1] == {}
    two = spec(tmp_path / "two", alerters=(HOOK_A, HOOK_B))
    assert plan_for(tmp_path / "3", two, alerters=(HOOK_B,))[1] == {}


class Named:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def send(self, alert: object) -> None:
        raise AssertionError("not sent in this test")


def test_channel_set_resolves_ids_and_legacy_positions() -> None:
    a, b = Named("webhook"), Named("slack")
    channels = ChannelSet([Bound("webhook:1", "webhook", a), Bound("slack:2", "slack", b)])
    assert channels.get("slack:2") is b and channels.get("webhook:1") is a
    assert channels.get("1") is b  # a row written by an older release: the alerter's index
    assert channels.get("webhook:gone") is None and channels.get("7") is None

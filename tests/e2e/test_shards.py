"""Shards (issue 15): two real daemons on the same metric files split them by the hash of the
name, with no overlap and no gap, and say which shard they are in the API, /metrics and logs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from detectkd.shard import Shard, name_hash
from tests.support.files import write
from tests.support.metrics import constant_metric
from tests.support.process import DaemonProcess, cli

NAMES = [f"orders_{i:02d}" for i in range(16)]


def test_the_hash_is_prometheus_hashmod() -> None:
    # Prometheus: sum64(md5("orders_00")) % N. MD5 of "abc" is 900150983cd24fb0 d6963f7d28e17f72.
    assert name_hash("abc") == 0xD6963F7D28E17F72
    assert Shard.parse(" 1 / 3 ") == Shard(1, 3) and str(Shard(1, 3)) == "1/3"
    for bad in ("3/3", "1", "-1/2", "a/b", "0/0"):
        with pytest.raises(ValueError, match=r"I/N|0 <= I < N"):
            Shard.parse(bad)


async def test_two_shards_split_the_metrics_with_no_overlap_and_no_gap(tmp_path: Path) -> None:
    replicas = [DaemonProcess(tmp_path / f"r{i}") for i in range(2)]
    for d in replicas:
        for name in NAMES:
            write(d.root / "metrics.d" / f"{name}.yaml", constant_metric(name, tmp_path / "src.db"))
        write(d.root / "profiles.yaml", "profiles: {}\n")
    await asyncio.gather(
        replicas[0].start(args=("--shard", "0/2")),
        replicas[1].start(env={"DETECTK_SHARD": "1/2"}),
    )
    try:
        owned = []
        for i, d in enumerate(replicas):
            entries = (await d.api())["metrics"]
            assert {e["shard"] for e in entries} == {f"{i}/2"}
            owned.append({e["name"] for e in entries})
            _, text = await d.get("/metrics")
            assert f'detectk_shard_info{{shard="{i}",shards="2"}} 1.0' in text
            started = [json.loads(x) for x in d.log_path.read_text().splitlines() if "detectkd started" in x]
            assert started and started[0]["shard"] == f"{i}/2"
        assert owned[0].isdisjoint(owned[1]) and owned[0] | owned[1] == set(NAMES)
        assert owned[0] and owned[1]  # 16 names: both shards get some
        assert owned[0] == {n for n in NAMES if name_hash(n) % 2 == 0}
    finally:
        for d in replicas:
            await d.kill()

    listed = cli("validate", str(replicas[0].root / "metrics.d"), "--shard", "1/2")
    assert listed.returncode == 0
    assert f"shard 1/2: {len(owned[1])} of {len(NAMES)} metric(s)" in listed.stdout
    assert all(f"  {n}  " in listed.stdout for n in owned[1])
    assert cli("validate", str(replicas[0].root / "metrics.d"), "--shard", "2/2").returncode == 2

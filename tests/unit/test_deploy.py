"""deploy/kubernetes validates against the Kubernetes schemas (kubernetes-validate, offline),
and its parts agree: the shard count is the replica count, probes and ports exist, and the
metric files in its ConfigMap load."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from detectkd.config.settings import load_settings
from detectkd.specs.loader import load_metrics
from tests.support.files import REPO

K8S = REPO / "deploy" / "kubernetes"


def load(text: str) -> Any:
    return YAML(typ="safe").load(text)


def docs() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in YAML(typ="safe").load_all(path.read_text()):
            out[f"{doc['kind']}/{doc.get('metadata', {}).get('name', path.stem)}"] = doc
    return out


def test_manifests_pass_the_kubernetes_schemas_strictly() -> None:
    files = [
        str(p)
        for p in sorted(K8S.glob("*.yaml"))
        if p.name not in ("kustomization.yaml", "servicemonitor.yaml")
    ]
    exe = Path(sys.executable).parent / "kubernetes-validate"
    done = subprocess.run(
        [str(exe), "-k", "1.30.0", "--strict", *files], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    passed = re.findall(r"passed for resource (\S+)", done.stdout + done.stderr)
    assert sorted(passed) == sorted(
        k.lower() for k in docs() if not k.startswith(("Kustomization", "ServiceMonitor"))
    )


def test_the_parts_agree() -> None:
    d = docs()
    kust = load((K8S / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"
    )
    sts = d["StatefulSet/detectkd"]["spec"]
    container = sts["template"]["spec"]["containers"][0]
    assert container["args"][-2:] == ["--shard", f"$(POD_INDEX)/{sts['replicas']}"]  # N = replicas
    (index,) = [e for e in container["env"] if e["name"] == "POD_INDEX"]
    assert index["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"
    assert {
        container["readinessProbe"]["httpGet"]["path"],
        container["livenessProbe"]["httpGet"]["path"],
    } == {
        "/readyz",
        "/healthz",
    }
    port = container["ports"][0]["name"]
    assert d["Service/detectkd"]["spec"]["ports"][0]["targetPort"] == port
    monitor = d["ServiceMonitor/detectkd"]["spec"]
    assert monitor["endpoints"][0]["port"] == d["Service/detectkd"]["spec"]["ports"][0]["name"]
    labels = sts["template"]["metadata"]["labels"]
    for selector in (
        sts["selector"]["matchLabels"],
        d["Service/detectkd"]["spec"]["selector"],
        d["PodDisruptionBudget/detectkd"]["spec"]["selector"]["matchLabels"],
        monitor["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()


def test_the_configmap_settings_and_metric_files_load(tmp_path: Path) -> None:
    d = docs()
    env = d["Secret/detectkd-env"]["stringData"]
    metrics = tmp_path / "metrics.d"
    metrics.mkdir()
    for name, text in d["ConfigMap/detectkd-metrics"]["data"].items():
        (metrics / name).write_text(text)
    result = load_metrics([metrics], metrics / "profiles.yaml", env=env)
    assert result.ok, [str(i) for i in result.all_errors()]
    assert list(result.metrics) == ["orders_per_minute"]
    (tmp_path / "detectkd.yaml").write_text(d["ConfigMap/detectkd-settings"]["data"]["detectkd.yaml"])
    settings = load_settings(tmp_path / "detectkd.yaml")
    assert settings.metrics_dir == Path("/etc/detectk/metrics.d") and settings.listen == "0.0.0.0:9100"


def test_the_compose_ha_pair_shares_one_store_and_its_settings_and_metrics_load(tmp_path: Path) -> None:
    compose = load((REPO / "docker-compose.yml").read_text())
    a, b = compose["services"]["detectkd-a"], compose["services"]["detectkd-b"]
    assert a["environment"] == b["environment"] and a["volumes"] == b["volumes"]  # one shard, one store
    assert a["ports"] != b["ports"]
    env = {k: str(v) for k, v in a["environment"].items()}
    assert env["DETECTK_HA__ENABLED"] == "true" and env["DETECTK_STORAGE__TYPE"] == "postgres"
    import os
    from unittest import mock

    from detectkd.config.settings import Settings

    with mock.patch.dict(os.environ, {k: v for k, v in env.items() if k.startswith("DETECTK_")}):
        settings = Settings()
    assert settings.ha.enabled and settings.storage.host == "postgres"
    metrics = REPO / "deploy" / "compose" / "metrics.d"
    result = load_metrics([metrics], metrics / "profiles.yaml", env=env)
    assert result.ok and list(result.metrics) == ["pg_connections"], [str(i) for i in result.all_errors()]

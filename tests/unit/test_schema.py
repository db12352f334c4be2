"""`detectkd schema`: every real metric file validates, broken ones do not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from detectkd.schema import metric_schema
from tests.support.files import REPO, SHARED


def metric_files() -> list[Path]:
    files = sorted((SHARED / "data" / "detectk-examples").glob("*.yaml")) + sorted(
        (REPO / "etc" / "detectk" / "metrics.d").glob("*.yaml")
    )
    return [f for f in files if "name" in (YAML(typ="safe").load(f.read_text()) or {})]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = metric_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_every_detectk_example_and_shipped_metric_validates(validator: jsonschema.Draft7Validator) -> None:
    files = metric_files()
    assert len(files) >= 10
    for f in files:
        errors = [e.message for e in validator.iter_errors(YAML(typ="safe").load(f.read_text()))]
        assert not errors, (f.name, errors)


def bad(doc: dict[str, Any], validator: jsonschema.Draft7Validator) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_typos_and_wrong_types_are_caught(validator: jsonschema.Draft7Validator) -> None:
    good: dict[str, Any] = {
        "name": "orders",
        "schedule": {"interval": "10m"},
        "collector": {"type": "sqlite", "params": {"database": "/tmp/x.db", "query": "SELECT 1"}},
        "detector": {"type": "mad", "params": {"window_size": "30 days", "n_sigma": 3}},
        "alerter": {"type": "webhook", "params": {"url": "http://x"}, "conditions": {"for": "20m"}},
    }
    assert bad(good, validator) == []
    typo = json.loads(json.dumps(good))
    typo["detector"]["params"]["n_sigmaa"] = 3
    assert any("n_sigmaa" in e for e in bad(typo, validator))
    wrong = json.loads(json.dumps(good))
    wrong["detector"]["type"] = "madd"
    assert any("madd" in e for e in bad(wrong, validator))
    top = json.loads(json.dumps(good))
    top["shedule"] = {}
    assert any("shedule" in e for e in bad(top, validator))
    sigma = json.loads(json.dumps(good))
    sigma["detector"]["params"]["n_sigma"] = "three"
    assert bad(sigma, validator)
    # Collector params follow the collector's type: a csv collector has no `query`.
    csv = json.loads(json.dumps(good))
    csv["collector"] = {"type": "csv", "params": {"path": "/x.csv", "query": "SELECT 1"}}
    assert any("query" in e for e in bad(csv, validator))


def test_cli_prints_the_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "detectkd", "schema"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(json.dumps(metric_schema()))


def test_reference_doc_is_generated_from_the_models() -> None:
    from detectkd.reference import render

    current = (REPO / "docs" / "reference.md").read_text()
    assert current == render(), "docs/reference.md is stale: run .venv/bin/python -m detectkd.reference"
    # Every key has a meaning, and the defaults are the models' defaults.
    rows = [line for line in current.splitlines() if line.startswith("| `")]
    assert len(rows) > 250 and all(not line.rstrip().endswith("|  |") for line in rows)
    assert "| `retention_days` | integer or null | `400` |" in current
    assert "| `conditions.for` | duration or null | none |" in current

"""Connection profiles (DetectK's `detectk_profiles.yaml` format).

profiles:
  clickhouse_prod: {type: clickhouse, host: ..., password: "${CH_PASSWORD}"}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectkd.config.yamlsource import load_yaml
from detectkd.errors import ConfigIssue


@dataclass
class Profiles:
    file: str | None = None
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: dict[str, int | None] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)

    def get(self, name: str) -> dict[str, Any] | None:
        return self.entries.get(name)


def load_profiles(path: Path | None, env: Mapping[str, str]) -> Profiles:
    if path is None or not path.exists():
        return Profiles(file=str(path) if path else None)
    doc = load_yaml(path, env)
    out = Profiles(file=str(path), issues=list(doc.issues))
    if doc.issues:
        return out
    data = doc.data or {}
    if not isinstance(data, dict) or not isinstance(data.get("profiles", {}), dict):
        out.issues.append(doc.issue(("profiles",), "expected a mapping `profiles: {name: {...}}`"))
        return out
    extra = set(data) - {"profiles"}
    for key in sorted(extra):
        out.issues.append(doc.issue((key,), f"unknown key {key!r} (a profiles file has `profiles:`)"))
    for name, entry in (data.get("profiles") or {}).items():
        if not isinstance(entry, dict):
            out.issues.append(doc.issue(("profiles", name), "a profile must be a mapping"))
            continue
        out.entries[name] = entry
        out.lines[name] = doc.line_of(("profiles", name))
    return out

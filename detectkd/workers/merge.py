"""One /metrics and one /api/v1/metrics from the workers of `workers: N`.

Each worker runs a shard of the metrics, so the per-metric families (labelled by
`metric`) are disjoint and are concatenated. A daemon-wide sample that several workers
export with the same labels is summed: counters, histogram buckets and sums, and the
gauges that count things (outbox depth, configured metrics) add up across processes, as
prometheus-client's multiprocess mode sums them. Identity series (`detectk_build_info`,
`detectk_shard_info`, `detectk_leader`) are the supervisor's own, not the workers'.
"""

from __future__ import annotations

import re
from typing import Any

from detectkd.runtime.status import MetricEntry

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+\S+)?$")
_MIN = ("detectk_config_last_reload_successful",)  # 1 only if every worker's last reload was
OWN = ("detectk_build_info", "detectk_shard_info", "detectk_leader")  # the supervisor's
# Not sums: the largest of the workers (ages, timestamps, every `_created`).
_MAX = ("detectk_outbox_oldest_age_seconds", "detectk_config_last_reload_success_timestamp_seconds")


def family_of(sample: str, families: dict[str, str]) -> str:
    """The family a sample name belongs to (`x_bucket` -> `x` for a histogram)."""
    if sample in families:
        return sample
    for suffix in ("_bucket", "_sum", "_count", "_total", "_created", "_info"):
        if sample.endswith(suffix) and sample[: -len(suffix)] in families:
            return sample[: -len(suffix)]
    return sample


def merge_expositions(texts: list[str], own: str = "") -> str:
    """Prometheus text expositions of the workers, as one (HELP/TYPE once per family)."""
    help_type: dict[str, list[str]] = {}
    types: dict[str, str] = {}
    values: dict[str, dict[tuple[str, str], float]] = {}
    order: list[str] = []
    for text in [own, *texts]:
        for line in text.splitlines():
            if line.startswith("# "):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    name = parts[2]
                    if name not in help_type:
                        help_type[name] = []
                        order.append(name)
                        values[name] = {}
                    if line not in help_type[name]:
                        help_type[name].append(line)
                    if parts[1] == "TYPE" and len(parts) == 4:
                        types[name] = parts[3]
                continue
            m = _SAMPLE.match(line)
            if m is None:
                continue
            sample, labels, raw = m[1], m[2] or "", m[3]
            fam = family_of(sample, types)
            if fam in OWN and text is not own:
                continue
            bucket = values.setdefault(fam, {})
            if fam not in help_type:
                help_type[fam] = []
                order.append(fam)
            key = (sample, labels)
            value = float(raw)
            if key in bucket and (fam in _MAX or sample.endswith("_created")):
                bucket[key] = max(bucket[key], value)
            elif key in bucket and fam in _MIN:
                bucket[key] = min(bucket[key], value)
            else:
                bucket[key] = bucket.get(key, 0.0) + value
    out: list[str] = []
    for fam in order:
        out += help_type[fam]
        out += [f"{s}{lab} {_num(v)}" for (s, lab), v in values.get(fam, {}).items()]
    return "\n".join(out) + "\n"


def _num(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:.1f}" if v == int(v) and abs(v) < 1e15 else repr(v)


def merge_api(pages: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' /api/v1/metrics (each asked for its first entries by name, with the same
    filters), as one answer: sorted by name, `total` the sum of theirs."""
    entries: list[MetricEntry] = [m for p in pages for m in p.get("metrics", [])]  # each worker's JSON
    metrics = sorted(entries, key=lambda m: m["name"])
    sources: dict[str, Any] = {}
    errors: list[str] = []
    for p in pages:
        sources |= p.get("sources") or {}
        errors += (p.get("config") or {}).get("errors", [])
    total = sum(int(p.get("total", len(p.get("metrics", [])))) for p in pages)
    return {
        "metrics": metrics,
        "total": total,
        "sources": sources,
        "config": {"errors": sorted(set(errors)), "successful": not errors},
    }

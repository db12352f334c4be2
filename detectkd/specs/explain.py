"""The `explain:` block checked against the metric it belongs to (file/line/key errors)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from detectkd.errors import ConfigIssue
from detectkd.templating import check_template

if TYPE_CHECKING:
    from detectkd.collectors.base import Window
    from detectkd.config.models import MetricFile
    from detectkd.config.yamlsource import Document
    from detectkd.specs.model import CollectorSpec


def check_explain(
    doc: Document, cfg: MetricFile, collector: CollectorSpec | None, sample: Window
) -> list[ConfigIssue]:
    e = cfg.explain
    if e is None or collector is None:
        return []
    issues = []
    if e.query is None:
        labels = set(collector.points.series_columns)
        if not labels or not set(e.dimensions) <= labels:
            why = "without a `query`, `explain` explains by the metric's own series: name `dimensions` among "
            why += f"collector.series_columns ({', '.join(sorted(labels)) or 'none'})"
            issues.append(doc.issue(("explain", "dimensions"), why))
    elif "query" not in type(collector.params).model_fields:
        why = f"`explain` needs a query-based collector (sql, postgres, clickhouse...), not {collector.type}"
        issues.append(doc.issue(("explain",), why))
    if e.query is not None and (problem := check_template(e.query, sample.template_vars())):
        issues.append(doc.issue(("explain", "query"), problem))
    step = e.step(cfg.schedule.interval)
    if step < cfg.schedule.interval or step.total_seconds() % cfg.schedule.interval.total_seconds():
        issues.append(doc.issue(("explain", "baseline_step"), "must be a whole number of intervals"))
    if e.timeout >= cfg.schedule.interval:
        issues.append(doc.issue(("explain", "timeout"), "must be shorter than schedule.interval"))
    if step * e.baseline_periods > timedelta(days=400):
        issues.append(doc.issue(("explain", "baseline_periods"), "reaches back more than 400 days"))
    return issues

"""An alerter's `subject_template` and `message_template` checked against a sample alert:
errors with file, line and key, and the message template's warnings as notes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from detectkd.errors import ConfigIssue
from detectkd.templating import check_template, message_template_problem, message_template_warnings

if TYPE_CHECKING:
    from pydantic import BaseModel

    from detectkd.config.yamlsource import Document


def check_templates(
    doc: Document, path: tuple[str | int, ...], params: BaseModel
) -> tuple[list[ConfigIssue], list[ConfigIssue]]:
    """(issues, notes) of the alerter at `path`, whose params are validated."""
    issues: list[ConfigIssue] = []
    notes: list[ConfigIssue] = []
    subject = getattr(params, "subject_template", None)
    if isinstance(subject, str) and (problem := check_template(subject, sample_alert())):
        issues.append(doc.issue((*path, "params", "subject_template"), problem))
    template = getattr(params, "message_template", None)
    if isinstance(template, str):
        where = (*path, "params", "message_template")
        sample = sample_alert()
        if problem := message_template_problem(template, sample):
            issues.append(doc.issue(where, problem))
        else:
            notes.extend(doc.issue(where, w) for w in message_template_warnings(template, sample))
    return issues, notes


def sample_alert() -> dict[str, Any]:
    from detectkd.alerting.alert import Alert
    from detectkd.alerting.message import variables

    alert = Alert(
        metric="sample",
        series="region=eu",
        labels={"region": "eu"},
        status="firing",
        period=1_767_225_000,
        started_at=1_767_225_000,
        value=250.0,
        expected=100.0,
        lower=80.0,
        upper=120.0,
        score=0.9,
        direction="up",
        detector="mad",
        interval_seconds=600,
    )
    return variables(alert)

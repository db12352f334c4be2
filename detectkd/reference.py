"""docs/reference.md, generated from the models that load the configuration.

    .venv/bin/python -m detectkd.reference > docs/reference.md

Every key of detectkd.yaml and of a metric file, with its type, default and
the comment written next to it in the model's source. A test regenerates it
and compares, so the reference cannot drift from the code.
"""

from __future__ import annotations

import inspect
import re
import sys
from datetime import timedelta
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from detectkd.alerting.channels import registry as channels
from detectkd.collectors import registry as collectors
from detectkd.config import models
from detectkd.config.calendars import CalendarRef
from detectkd.config.settings import Settings
from detectkd.detectors import registry as detectors
from detectkd.durations import format_duration

_FIELD = re.compile(r"^\s+(\w+)\s*:")

# For keys that many models share and that carry no comment of their own.
COMMON = {
    "host": "server host name or address",
    "port": "server port (default: the backend's usual port)",
    "database": "database name (SQLite: the file path)",
    "user": "user name",
    "password": "password; use `${VAR}` from the environment, never a literal",
    "connection_string": "a URL instead of host/port/...: `postgresql://`, `mysql://`, `clickhouse://`, "
    "`sqlite:///`",
    "secure": "TLS to the server",
    "verify": "verify the server's TLS certificate",
    "ca_file": "CA bundle for verifying the server's certificate",
    "query": "SQL with `{{ period_start }}` / `{{ period_finish }}` (Jinja2, see configuration.md)",
    "timeout": "give up after this long",
    "timestamp_column": "column holding the period's time (DetectK's default `period_time`)",
    "value_column": "column holding the value (DetectK's default `value`)",
    "context_columns": "extra columns stored with the point (usable as seasonal features)",
    "max_overflow": "accepted for DetectK compatibility (SQLAlchemy pool option); not used",
    "pool_size": "connections kept open",
    "interval": "accepted for DetectK compatibility; the schedule's interval is used",
    "path": "file path",
    "message_template": "Jinja2 template of the message (alerting.md#message_template)",
    "cooldown_minutes": "DetectK's cooldown: no new FIRING within this many minutes of the last",
    "min_samples": "fewer usable points: cold start, no judgement",
    "window_size": "history the detector reads: a duration or a number of points",
    "n_sigma": "alarm line in (robust) standard deviations",
    "threshold": "the alarm line",
    "enabled": "false: loaded and validated, not run",
    "type": "the kind (a registered type name)",
    "profile": "a profile from profiles.yaml whose keys merge under `params`",
    "params": "the type's parameters (tables below)",
    "headers": "extra HTTP headers",
    "url": "endpoint URL",
    "webhook_url": "incoming-webhook URL (a secret: use `${VAR}`)",
    "channel": "channel to post to (default: the webhook's)",
    "username": "name shown as the sender",
    "icon_url": "sender icon URL",
    "icon_emoji": "sender emoji",
    "seasonal": "use seasonal baselines",
    "quantile": "of the series' recent |z| that defines unusual",
    "min_z": "the surprise divisor never goes below this",
    "mode": "how the value is compared",
    "compare_to": "the reference: `previous`, `last_week` or a lag such as `1d`",
    "max_increase": "largest allowed rise (percent or absolute, by `mode`)",
    "max_decrease": "largest allowed fall (percent or absolute, by `mode`)",
    "operator": "comparison: greater_than, less_than, between, outside, equals, ...",
    "level": "log level of the line",
    "consecutive_anomalies": "anomalous periods in a row before FIRING",
    "direction": "which deviations count: up, down or both",
    "min_deviation_percent": "ignore anomalies closer than this to the expected value (percent)",
    "min_deviation_abs": "ignore anomalies closer than this to the expected value (absolute)",
    "keep_firing_for": "hysteresis as a duration: stay FIRING this long after the last anomaly",
    "repeat_backoff": "each repeat waits this factor longer than the previous",
    "max_repeat_interval": "the repeat interval never grows beyond this",
    "min_detectors": "at least this many detectors must flag the point (overrides combine)",
    "no_data_periods": "empty periods in a row before NODATA",
    "error_runs": "failed runs in a row before an ERROR notification",
    "flap_window": "the window in which flap_changes are counted (default 20 periods)",
    "http_port": "ClickHouse HTTP port (default 8123; a native port 9000 is mapped to it)",
    "delimiter": "CSV field separator",
    "encoding": "file encoding",
    "method": "HTTP method (http) or the per-bucket baseline (seasonal: mad or zscore)",
    "json": "JSON request body (`json:` in DetectK)",
    "data": "raw request body",
    "response_format": "how the response is read",
    "value_path": "dotted path to the value in a JSON response (`data.items.0.count`)",
    "verify_ssl": "verify the server's TLS certificate",
    "retry_count": "retries of a failed request within one run",
    "retry_delay": "wait between retries",
    "max_body_bytes": "a larger answer is refused (at once on its Content-Length, else once read)",
    "tolerance": "values within this are equal",
    "max_zero_share": "anomalous when more of the window than this share is zero",
    "max_missing_share": "anomalous when more of the window than this share is missing",
    "alpha": "smoothing of the level",
    "gamma": "smoothing of the seasonal terms",
    "damping": "phi: the trend fades instead of running away",
    "multiplier": "k of Tukey's fences",
    "use_weighted": "exponential weighting of history (DetectK)",
    "exp_decay_factor": "weight exp(-factor * k), k = samples newer than the point",
    "half_life": "points or a duration; sets the decay to ln 2 / half-life",
    "seasonal_features": "hour_of_day, day_of_week, hour_of_week, ... or context columns",
    "use_combined_seasonality": "true: history with all features equal; false: per feature",
    "max_missing_periods": "periods in a row without a value that are an anomaly",
    "upper_threshold": "second bound for between / outside",
    "percent": "thresholds are percent changes from `baseline`",
    "baseline": "reference value for percent thresholds",
    "urls": "every Alertmanager of an HA pair gets every alert",
    "severity": "the `severity` label",
    "labels": "extra labels on every alert",
    "generator_url": "link back (default: the daemon's generator_url)",
    "resend_delay": "an active alert is re-sent this often (at least once per run)",
    "ends_after": "endsAt = now + this (default: 4 x max(resend_delay, interval))",
    "from": "sender address",
    "to": "recipients",
    "subject_template": "Jinja2 template of the subject",
    "bot_token": "Telegram bot token (a secret: use `${VAR}`)",
    "chat_id": "chat or channel id",
    "base_url": "Telegram API base URL",
    "disable_notification": "send silently",
    "starttls": "STARTTLS after connecting",
    "use_tls": "implicit TLS (SMTPS)",
    "secret": "HMAC-SHA256 key: X-Detectk-Signature header",
    "alertname": "the `alertname` label (default: the metric name)",
}


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """`# ...` comments on a field's line, or on the lines right above it, per field name."""
    out: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        above: list[str] = []
        for line in lines[1:]:
            stripped = line.strip()
            if stripped.startswith("#"):
                above.append(stripped.lstrip("# ").strip())
                continue
            m = _FIELD.match(line)
            if m and m[1] in cls.__annotations__:
                trailing = line.split("  # ", 1)[1].strip() if "  # " in line else ""
                if trailing.startswith("type: ignore"):
                    trailing = trailing.split("  # ", 1)[1].strip() if "  # " in trailing else ""
                text = " ".join([*above, trailing]).strip()
                if text and "type: ignore" not in text and "fmt:" not in text:
                    out[m[1]] = text
            above = []
    return out


def type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        return " or ".join(type_name(a) for a in args)
    if str(annotation).startswith("typing.Annotated") or hasattr(annotation, "__metadata__"):
        return type_name(args[0]) if args else "value"
    if origin in (list, tuple):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type):
        if issubclass(annotation, timedelta):
            return "duration"
        if issubclass(annotation, bool):
            return "boolean"
        if issubclass(annotation, int):
            return "integer"
        if issubclass(annotation, float):
            return "number"
        if issubclass(annotation, str):
            return "string"
        if issubclass(annotation, Enum):
            return " \\| ".join(f"`{m.value}`" for m in annotation)
        if issubclass(annotation, BaseModel):
            return "mapping (below)"
        if annotation.__name__ == "Path":
            return "path"
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    factory = info.default_factory
    value = factory() if factory is not None else info.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        return "(below)"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value in ([], {}, ()):
        return "empty"
    return f"`{value}`"


def table(model: type[BaseModel], prefix: str = "") -> str:
    comments = field_comments(model)
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        key = info.alias or name
        meaning = (comments.get(name) or COMMON.get(key) or COMMON.get(name, "")).replace("|", "\\|")
        rows.append(f"| `{prefix}{key}` | {type_name(info.annotation)} | {default_text(info)} | {meaning} |")
    return "\n".join(rows)


def section(title: str, model: type[BaseModel], prefix: str = "", level: str = "###") -> str:
    return f"{level} {title}\n\n{table(model, prefix)}\n"


def render() -> str:
    parts = [
        "# Configuration reference\n",
        "Generated from the models that load the configuration (`python -m detectkd.reference`);",
        "a test regenerates it and fails if this file is out of date. The prose guides are",
        "[configuration.md](configuration.md), [detectors.md](detectors.md),",
        "[alerting.md](alerting.md) and [multi-series.md](multi-series.md). Durations accept",
        "`90s`, `10m`, `2h`, `30 days`, `1d12h` or seconds; a window accepts a duration or a",
        "number of points.\n",
        "## Daemon settings (`detectkd.yaml`, `DETECTK_*`)\n",
        table(Settings),
        "",
        section("`storage`", models_settings("StorageSettings"), "storage."),
        section("`outages`", models_settings("OutageSettings"), "outages."),
        section("`history`", models_settings("HistorySettings"), "history."),
        section("`ha`", models_settings("HaSettings"), "ha."),
        "## Metric file\n",
        table(models.MetricFile),
        "",
        section("`schedule`", models.Schedule, "schedule."),
        section("`collector`", models.Collector, "collector."),
        section("`detector` / `detectors[]`", models.Detector),
        section("`alerter` / `alerters[]`", models.Alerter),
        section("`alerter.conditions`", models.Conditions, "conditions."),
        section("`storage`", models.Storage, "storage."),
        section("`peers`", models.Peers, "peers."),
        section("`shadow[]` (docs/shadow.md)", models.ShadowVariant),
        section("`calendars[]` (calendars.md)", CalendarRef),
        "## Collector params (`collector.params`, by `type`)\n",
    ]
    for kind, ctype in sorted(collectors.COLLECTORS.items()):
        parts.append(section(f"`{kind}`", ctype.params))
    aliases = ", ".join(f"`{a}` = `{k}`" for a, k in sorted(collectors.ALIASES.items()))
    parts.append(f"Aliases: {aliases}.\n")
    parts.append("## Detector params (`detector.params`, by `type`)\n")
    for kind, dtype in sorted(detectors.DETECTORS.items()):
        parts.append(section(f"`{kind}`", dtype.params))
    parts.append("## Alerter params (`alerter.params`, by `type`)\n")
    parts.append(section("Every type", models.AlerterOptions, "params."))
    for kind, atype in sorted(channels.CHANNELS.items()):
        parts.append(section(f"`{kind}`", atype.params))
    return "\n".join(parts).rstrip() + "\n"


def models_settings(name: str) -> type[BaseModel]:
    from detectkd.config import settings

    model: type[BaseModel] = getattr(settings, name)
    return model


if __name__ == "__main__":
    sys.stdout.write(render())

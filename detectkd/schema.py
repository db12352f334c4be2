"""`detectkd schema`: the JSON Schema of a metric file, from the same models that load it.

Top-level keys come from `MetricFile`; each `params` block is described for
every `type` (if/then on the `type` key), from the registries of
collectors, detectors and alerters. Params keep no `required` list: a
profile may supply them. Durations accept `10m`, `2 hours`, `30 days` or
seconds. The same walk renders docs/reference.md, so the reference cannot
drift from the code (a test compares them).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from detectkd.alerting.channels import registry as channels
from detectkd.collectors import registry as collectors
from detectkd.config.models import AlerterOptions, MetricFile
from detectkd.detectors import registry as detectors
from detectkd.durations import format_duration

SCHEMA_ID = "https://detectkd.dev/schema/metric.json"
DURATION = {
    "anyOf": [{"type": "string"}, {"type": "number"}],
    "description": "a duration: 10m, 2h, 30 days, 1d12h, or seconds",
}


class _Generator(GenerateJsonSchema):
    def timedelta_schema(self, schema: core_schema.TimedeltaSchema) -> JsonSchemaValue:
        return dict(DURATION)

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


def _model(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True, schema_generator=_Generator)


def _params(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    """A params model's schema with its $defs hoisted and no `required` (profiles fill in)."""
    schema = _model(model)
    for name, sub in schema.pop("$defs", {}).items():
        defs.setdefault(name, sub)
    schema.pop("required", None)
    schema.pop("title", None)
    return schema


def _typed(
    kinds: dict[str, type[BaseModel]], defs: dict[str, Any], shared: type[BaseModel] | None = None
) -> list[dict[str, Any]]:
    """`shared`: keys every type's params accept besides its own (an alerter's options)."""
    extra = _params(shared, defs)["properties"] if shared is not None else {}
    return [
        {
            "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
            "then": {"properties": {"params": _with(_params(model, defs), extra)}},
        }
        for kind, model in sorted(kinds.items())
    ]


def _with(schema: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    schema.setdefault("properties", {}).update(properties)
    return schema


def metric_schema() -> dict[str, Any]:
    schema = _model(MetricFile)
    defs: dict[str, Any] = schema["$defs"]
    kinds = {
        "Collector": {k: t.params for k, t in collectors.COLLECTORS.items()}
        | {alias: collectors.COLLECTORS[k].params for alias, k in collectors.ALIASES.items()},
        "Detector": {k: t.params for k, t in detectors.DETECTORS.items()},
        "Alerter": {k: t.params for k, t in channels.CHANNELS.items()},
    }
    for name, by_type in kinds.items():
        block = defs[name]
        block["properties"]["type"] = {
            "anyOf": [{"enum": sorted(by_type)}, {"type": "null"}],
            "description": "the type; may come from the profile instead",
        }
        block["allOf"] = _typed(by_type, defs, AlerterOptions if name == "Alerter" else None)
    defs["Detector"]["properties"]["type"] = {"enum": sorted(kinds["Detector"])}
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "detectkd metric file"
    schema["description"] = "One metric per file in metrics.d (DetectK's format plus detectkd's keys)."
    return schema


def schema_json() -> str:
    return json.dumps(metric_schema(), indent=2, sort_keys=True) + "\n"

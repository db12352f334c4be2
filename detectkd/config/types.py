"""Small value types shared by every config model."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from detectkd.durations import format_duration, parse_duration


class Frozen(BaseModel):
    """Every config model: immutable, and an unknown key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError(f"not a duration: {value!r}")


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
]


def _points_or_duration(value: Any) -> int | timedelta:
    if isinstance(value, bool):
        raise ValueError("expected a duration ('30 days') or a number of points")
    if isinstance(value, int):
        if value < 1:
            raise ValueError("a point count must be at least 1")
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return _duration(value)


def _ser_window(value: int | timedelta) -> int | str:
    return value if isinstance(value, int) else format_duration(value)


Window = Annotated[
    int | timedelta,
    BeforeValidator(_points_or_duration),
    PlainSerializer(_ser_window),
]


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {value!r} (use an IANA name like Europe/Berlin)") from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(_timezone)]

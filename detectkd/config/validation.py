"""pydantic errors -> `ConfigIssue`s with file, line, key and "did you mean ...?"."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from detectkd.config.yamlsource import Document, Path_
from detectkd.errors import ConfigIssue


def validate(
    doc: Document, model: type[BaseModel], data: Any, prefix: Path_ = ()
) -> tuple[BaseModel | None, list[ConfigIssue]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, issues_from(doc, exc, model, prefix)


def issues_from(
    doc: Document, exc: ValidationError, model: type[BaseModel], prefix: Path_
) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    seen: set[tuple[Path_, str]] = set()
    for err in exc.errors(include_url=False):
        loc = _clean_loc(model, tuple(err["loc"]))
        path = (*prefix, *loc)
        if err["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}" + _suggest(model, loc)
        elif err["type"] == "missing":
            message = f"required key {loc[-1]!r} is missing"
        else:
            message = _message(err)
        if (path, message) in seen:
            continue
        seen.add((path, message))
        out.append(doc.issue(path, message))
    return out


def _message(err: Any) -> str:
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg


def _suggest(model: type[BaseModel], loc: Path_) -> str:
    parent = model_at(model, loc[:-1])
    if parent is None:
        return ""
    valid = sorted(f.alias or name for name, f in parent.model_fields.items())
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{hint}; valid keys here: {', '.join(valid)}"


def _clean_loc(model: type[BaseModel], loc: Path_) -> Path_:
    """Drop pydantic's union-member tags (`'str'`, `'Feature'`) from a location."""
    out: list[str | int] = []
    current: Any = model
    for part in loc:
        options = _options(current)
        if isinstance(part, str) and any(_name(o) == part for o in options) and part not in _keys(current):
            current = next(o for o in options if _name(o) == part)
            continue
        out.append(part)
        current = _child(current, part)
    return tuple(out)


def model_at(model: type[BaseModel], path: Path_) -> type[BaseModel] | None:
    current: Any = model
    for part in path:
        current = _child(current, part)
        if current is None:
            return None
    found = [o for o in _options(current) if isinstance(o, type) and issubclass(o, BaseModel)]
    return found[0] if found else None


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _options(tp: Any) -> list[Any]:
    """The concrete types behind Optional/Union/Annotated."""
    if tp is None:
        return []
    origin = get_origin(tp)
    if origin is typing.Annotated:
        return _options(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        out: list[Any] = []
        for arg in get_args(tp):
            out.extend(_options(arg))
        return out
    return [tp]


def _keys(tp: Any) -> set[str]:
    keys: set[str] = set()
    for option in _options(tp):
        if isinstance(option, type) and issubclass(option, BaseModel):
            keys.update(option.model_fields)
    return keys


def _child(tp: Any, part: str | int) -> Any:
    for option in _options(tp):
        origin = get_origin(option)
        if isinstance(part, int) and origin in (list, tuple):
            return get_args(option)[0]
        if isinstance(part, str) and origin is dict:
            return get_args(option)[1]
        if isinstance(part, str) and isinstance(option, type) and issubclass(option, BaseModel):
            for name, field in option.model_fields.items():
                if part in (name, field.alias):
                    return field.annotation
    return None

"""HTTP API source (DetectK's `http` collector).

URL, query parameters, headers and bodies are Jinja2 templates with the
period variables. The response is JSON, text or CSV; `value_path` (dotted,
list indices allowed: `data.result.0.values`) picks the part that holds the
data. A scalar is one point for the requested period; an object is one row; a
list gives one row per item (objects, or `[timestamp, value]` pairs).

An answer above `max_body_bytes` (16 MiB) is refused: at once when its
Content-Length says so, else as soon as that many bytes were read. Errors name
the host and what was wrong, never the body: no body outlives the run, not even
through an exception's context.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from datetime import timedelta
from typing import Any, Literal

import aiohttp
from pydantic import Field

from detectkd.collectors.base import Build, Row, Window
from detectkd.collectors.bodies import host_of, read_capped
from detectkd.config.types import Duration, Frozen
from detectkd.errors import CollectError
from detectkd.resources import Resources
from detectkd.templating import compile_template

MIB = 1024 * 1024


class Params(Frozen):
    url: str
    method: Literal["GET", "POST", "get", "post"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    data: str | None = None
    response_format: Literal["json", "text", "csv"] = "json"
    value_path: str | None = None
    timeout: Duration = timedelta(seconds=30)
    verify_ssl: bool = True
    retry_count: int = Field(default=0, ge=0, le=10)
    retry_delay: Duration = timedelta(seconds=1)
    max_body_bytes: int = Field(default=16 * MIB, ge=1)
    timestamp_column: str | None = None
    value_column: str | None = None
    context_columns: list[str] | None = None


def _render_tree(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return compile_template(value).render(**variables)
    if isinstance(value, dict):
        return {k: _render_tree(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_tree(v, variables) for v in value]
    return value


def path_parts(path: str) -> list[str]:
    """`data.result[0].value[1]` (DetectK's form) and `data.result.0.value.1` alike."""
    return [p for p in re.split(r"\.|\[|\]", path) if p != ""]


def pick(document: Any, path: str | None) -> Any:
    """Follow a dotted path through dicts and lists (`a.b[0].c` or `a.b.0.c`)."""
    if not path:
        return document
    node = document
    for part in path_parts(path):
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                raise CollectError(f"value_path {path!r}: no list item {part!r}") from None
        elif isinstance(node, dict):
            if part not in node:
                raise CollectError(f"value_path {path!r}: no key {part!r} in response")
            node = node[part]
        else:
            raise CollectError(f"value_path {path!r}: cannot descend into {type(node).__name__}")
    return node


def to_rows(node: Any, timestamp_column: str, value_column: str) -> list[Row]:
    if isinstance(node, list):
        rows: list[Row] = []
        for item in node:
            if isinstance(item, dict):
                rows.append(item)
            elif isinstance(item, list | tuple) and len(item) == 2:
                rows.append({timestamp_column: item[0], value_column: item[1]})
            else:
                rows.append({value_column: item})
        return rows
    if isinstance(node, dict):
        return [node]
    return [{value_column: node}]


class HttpCollector:
    def __init__(self, params: Params, resources: Resources, ts_col: str, value_col: str) -> None:
        self._p = params
        self._resources = resources
        self._ts_col = ts_col
        self._value_col = value_col

    async def collect(self, window: Window) -> list[Row]:
        variables = window.template_vars()
        attempts = self._p.retry_count + 1
        last: CollectError | None = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self._p.retry_delay.total_seconds())
            try:
                return await self._once(variables)
            except CollectError as exc:
                last = exc
        assert last is not None
        raise last

    async def _once(self, variables: dict[str, Any]) -> list[Row]:
        p = self._p
        url = _render_tree(p.url, variables)
        session = await self._resources.http()
        timeout = aiohttp.ClientTimeout(total=p.timeout.total_seconds())
        try:
            async with session.request(
                p.method.upper(),
                url,
                params=_render_tree(p.params, variables) or None,
                headers=_render_tree(p.headers, variables) or None,
                json=_render_tree(p.json_body, variables),
                data=_render_tree(p.data, variables),
                timeout=timeout,
                ssl=bool(p.verify_ssl),
            ) as resp:
                if resp.status >= 400:  # the body is not read: only the status is shown
                    raise CollectError(f"HTTP {resp.status} from {host_of(url)}")
                body = await _read(resp, p.max_body_bytes, host_of(url))
        except TimeoutError:
            raise CollectError(
                f"HTTP request to {host_of(url)} timed out after {p.timeout.total_seconds():g}s"
            ) from None
        except aiohttp.ClientError as exc:
            raise CollectError(f"HTTP request to {host_of(url)} failed: {type(exc).__name__}") from None
        try:
            return self._parse(body)
        finally:
            del body  # an error's traceback keeps this frame, but not the body with it

    def _parse(self, body: str) -> list[Row]:
        fmt = self._p.response_format
        if fmt == "text":
            return [{self._value_col: body.strip()}]
        # `del body` before any raise: an error's traceback keeps this frame, not the body.
        if fmt == "csv":
            rows, failed = _csv_rows(body)
            del body
            if failed is not None:
                raise CollectError(failed)
            return rows
        document, failed = _json(body)
        del body
        if failed is not None:
            raise CollectError(failed)
        return to_rows(pick(document, self._p.value_path), self._ts_col, self._value_col)

    async def close(self) -> None:
        return None


def _json(body: str) -> tuple[Any, str | None]:
    """The document, or why the body is not JSON (without quoting it). Returns rather than
    raises: a JSONDecodeError holds the whole body, and would as an error's context."""
    try:
        return json.loads(body), None
    except json.JSONDecodeError as exc:
        return None, f"response is not JSON ({len(body):,} characters): {exc.msg} at char {exc.pos}"


def _csv_rows(body: str) -> tuple[list[Row], str | None]:
    try:
        return list(csv.DictReader(io.StringIO(body))), None
    except csv.Error as exc:
        return [], f"response is not CSV ({len(body):,} characters): {exc}"


async def _read(resp: aiohttp.ClientResponse, limit: int, host: str) -> str:
    """The body as text, refused above `limit` bytes (`bodies.read_capped`)."""
    too_big = f"the answer from {host} is larger than max_body_bytes ({limit:,} bytes)"
    body = await read_capped(resp, limit, too_big)
    try:
        return body.decode(resp.charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", "replace")


def build(b: Build) -> HttpCollector:
    return HttpCollector(b.params, b.resources, b.timestamp_column, b.value_column)

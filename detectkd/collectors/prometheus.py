"""`prometheus`: a PromQL range query against Prometheus, VictoriaMetrics, Thanos, Mimir or
anything else that serves `/api/v1/query_range`.

    collector:
      type: prometheus
      params:
        url: http://prom:9090            # VictoriaMetrics cluster: http://vmselect:8481/select/0/prometheus
        query: sum by (region) (increase(orders_total[{{ interval }}]))
        bearer_token: ${PROM_TOKEN}      # or basic_auth: {username, password}; headers: {...}

Every series of the answer is a series of the metric, keyed by its labels (sorted by name,
`__name__` left out unless two series differ only by it), unless `series_columns` names
the labels to key on. The step is the metric's interval and a period gets the value at its
end (`detectkd.collectors.promapi` says why, and how gaps, staleness and NaN are read).

The request is a form POST (long queries stay out of URLs and access logs) with the
server-side `timeout` set to ours, so the server stops evaluating when we stop waiting.
Errors name the host and port only, never the URL's path, a header or the body; the body
is read up to `max_bytes` and the samples counted up to `max_samples` before any row is
built.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from datetime import timedelta
from typing import ClassVar
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, field_validator, model_validator

from detectkd.collectors import promapi
from detectkd.collectors.base import Build, Row, Window
from detectkd.collectors.bodies import host_of, read_capped
from detectkd.config.types import Duration, Frozen
from detectkd.errors import CollectError
from detectkd.redact import redact_text
from detectkd.resources import Resources
from detectkd.templating import compile_template

OFF_LOOP_BYTES = 1 << 20  # answers above this size are parsed in a worker thread


class BasicAuth(Frozen):
    username: str
    password: str = ""


class Params(Frozen):
    MULTI_PERIOD: ClassVar[bool] = True  # one request covers many periods
    SERIES_LABELS: ClassVar[tuple[str, ...]] = (promapi.LABELS,)  # series keyed by their labels
    # Times reach the server as epoch seconds: no timezone can misread them (so an empty
    # period is never blamed on one: `detectkd.runtime.collect.timezone_probe`).
    EPOCH_TIMES: ClassVar[bool] = True
    # What `detectkd check` prints as its `rule` line.
    PERIOD_RULE: ClassVar[str] = (
        "the period [t, t + {interval}) gets the query's value at t + {interval}, its end; "
        "a series without a sample there (stale, or none within the lookback) has no value"
    )

    url: str  # the server's base URL; /api/v1/query_range is added unless already there
    query: str  # PromQL; a template with the period variables ({{ interval }}: "1h")
    headers: dict[str, str] = Field(default_factory=dict)  # extra headers, e.g. X-Scope-OrgID (Mimir)
    basic_auth: BasicAuth | None = None  # {username, password}: HTTP basic auth (password: ${VAR})
    bearer_token: str | None = None  # sent as `Authorization: Bearer ...` (a secret: use ${VAR})
    timeout: Duration = timedelta(seconds=30)
    verify_ssl: bool = True
    ca_file: str | None = None
    # A larger answer (decompressed) is refused unread, never truncated.
    max_bytes: int = Field(default=64 << 20, ge=1024)
    # More samples (all series, one collect) are refused before any row is built.
    max_samples: int = Field(default=1_000_000, ge=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be http:// or https:// with a host (e.g. http://prom:9090)")
        if parts.username is not None or parts.password is not None:
            raise ValueError("put credentials in basic_auth (with ${VAR}), not in the url")
        return value

    @model_validator(mode="after")
    def _one_auth(self) -> Params:
        given = [
            self.basic_auth is not None,
            self.bearer_token is not None,
            any(k.lower() == "authorization" for k in self.headers),
        ]
        if sum(given) > 1:
            raise ValueError("give one of basic_auth, bearer_token or an Authorization header")
        if not self.query.strip():
            raise ValueError("query is empty")
        return self

    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith("/api/v1/query_range") else f"{base}/api/v1/query_range"

    def secrets(self) -> list[str]:
        """What an error text must never show."""
        out = [v for v in self.headers.values()]
        if self.bearer_token:
            out.append(self.bearer_token)
        if self.basic_auth is not None:
            out.append(self.basic_auth.password)
        return out


class PrometheusCollector:
    def __init__(self, params: Params, resources: Resources, ts_col: str, value_col: str) -> None:
        self._p = params
        self._resources = resources
        self._ts_col = ts_col
        self._value_col = value_col
        self._query = compile_template(params.query)
        self._url = params.endpoint()
        self._where = host_of(params.url)
        self._headers = dict(params.headers)
        if params.bearer_token:
            self._headers["Authorization"] = f"Bearer {params.bearer_token}"
        if params.basic_auth is not None:
            pair = f"{params.basic_auth.username}:{params.basic_auth.password}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        self._ssl: ssl.SSLContext | bool = True
        if params.ca_file or not params.verify_ssl:
            ctx = ssl.create_default_context(cafile=params.ca_file)
            if not params.verify_ssl:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl = ctx

    async def collect(self, window: Window) -> list[Row]:
        query = self._query.render(**window.template_vars())
        runs, period_of = promapi.plan(window)
        rows: list[Row] = []
        for run in runs:
            body = await self._request(query, run)
            rows.extend(await self._parse(body, period_of, len(rows)))
        return rows

    async def _request(self, query: str, run: promapi.Run) -> bytes:
        timeout = self._p.timeout.total_seconds()
        form = {
            "query": query,
            "start": str(run.start),
            "end": str(run.end),
            "step": str(run.step),
            "timeout": f"{timeout:g}s",  # the server stops evaluating when we stop waiting
            "nocache": "1",  # VictoriaMetrics: keep start and end as asked (no cache alignment)
        }
        session = await self._resources.http()
        try:
            async with asyncio.timeout(timeout):
                async with session.post(
                    self._url, data=form, headers=self._headers or None, ssl=self._ssl
                ) as resp:
                    cap = self._p.max_bytes
                    too_big = f"prometheus {self._where}: the answer is above max_bytes ({cap:,} bytes)"
                    body = await read_capped(resp, cap, too_big)
                    if resp.status >= 400:
                        raise CollectError(self._http_error(resp.status, body))
                    return body
        except TimeoutError:
            raise CollectError(f"prometheus {self._where}: no answer within {timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise CollectError(f"prometheus {self._where}: request failed: {type(exc).__name__}") from None

    def _http_error(self, status: int, body: bytes) -> str:
        """Prometheus answers 400/422/503 with its JSON error; anything else by status only
        (a proxy's HTML page may echo the request)."""
        hint = " (check basic_auth / bearer_token / headers)" if status in (401, 403) else ""
        try:
            promapi.check_status(json.loads(body))
        except CollectError as exc:
            if "query failed" in str(exc):
                reason = redact_text(str(exc), self._p.secrets())
                return f"prometheus {self._where}: HTTP {status}{hint}: {reason}"
        except ValueError:
            pass
        return f"prometheus {self._where}: HTTP {status}{hint}"

    async def _parse(self, body: bytes, period_of: dict[int, int], counted: int) -> list[Row]:
        def parse() -> list[Row]:
            try:
                document = json.loads(body)
            except ValueError as exc:
                why = type(exc).__name__
                raise CollectError(f"prometheus {self._where}: the answer is not JSON ({why})") from None
            try:
                return promapi.to_rows(
                    document, period_of, self._ts_col, self._value_col, self._p.max_samples, counted
                )
            except CollectError as exc:
                text = redact_text(str(exc), self._p.secrets())
                raise CollectError(f"prometheus {self._where}: {text}") from None

        return await asyncio.to_thread(parse) if len(body) > OFF_LOOP_BYTES else parse()

    async def close(self) -> None:
        return None


def build(b: Build) -> PrometheusCollector:
    return PrometheusCollector(b.params, b.resources, b.timestamp_column, b.value_column)

"""No secret reaches the logs, the HTTP API or the UI of a real run with failing sources and
channels: not by key name, not in a header (whatever its name), not in a URL's path."""

from __future__ import annotations

import time

from tests.support.files import write
from tests.support.metrics import Source, fill
from tests.support.process import DaemonProcess

PG_PASSWORD = "Pg-S3cret-7781"
HOOK_TOKEN = "XoxHookToken9931"
BASIC_PASSWORD = "Basic-Pw-4410"
PATH_TOKEN = "PathHookTok55102"  # in a webhook URL's path, inline (the config view shows it)
API_KEY = "XApiKey-66130-k"
COOKIE = "sessionid-Cook-90871"
HTTP_TOKEN = "SrcPathTok-31337"  # in an http collector's URL path (the source label)


async def test_secrets_from_env_and_profiles_never_appear_in_logs_or_api(daemon: DaemonProcess) -> None:
    write(
        daemon.root / "detectkd.yaml",
        daemon.root.joinpath("detectkd.yaml").read_text() + "log_level: debug\n",
    )
    write(
        daemon.root / "profiles.yaml",
        """\
profiles:
  pg_secret:
    type: postgres
    host: 127.0.0.1
    port: 5432
    user: postgres
    password: ${DTK_PG_PASSWORD}
    database: postgres
  hook:
    type: webhook
    url: "http://127.0.0.1:9/hooks/${DTK_HOOK_TOKEN}"
""",
    )
    src = Source(daemon.root / "src.db")
    now = int(time.time())
    fill(src, "spiky", now - 300, now + 300, 2, {t: 900.0 for t in range(now - now % 2, now + 300, 2)})
    metrics = daemon.root / "metrics.d"
    # A profile with a password, and a query that fails on the real server.
    write(
        metrics / "pg.yaml",
        """\
name: pg_missing_table
schedule: {interval: 2s}
collector:
  profile: pg_secret
  params: {query: "SELECT now() AS period_time, count(*) AS value FROM no_such_table_dtk"}
detector: {type: threshold, params: {operator: greater_than, threshold: 1}}
""",
    )
    # Credentials inside a connection string, to a port nobody listens on.
    write(
        metrics / "url.yaml",
        """\
name: url_refused
schedule: {interval: 2s}
collector:
  type: sql
  params:
    connection_string: "postgresql://postgres:${DTK_PG_PASSWORD}@127.0.0.1:1/postgres"
    query: "SELECT 1 AS value"
detector: {type: threshold, params: {operator: greater_than, threshold: 1}}
""",
    )
    # Alerts to a dead webhook whose URL carries a token, and one with basic auth in the URL.
    write(
        metrics / "spiky.yaml",
        f"""\
name: spiky
schedule: {{interval: 2s, delay: 0s}}
collector:
  type: sqlite
  params:
    database: {src.path}
    query: "SELECT period_time, value FROM src WHERE series = 'spiky' AND period_time >= '{{{{ period_start }}}}' AND period_time < '{{{{ period_finish }}}}'"
detector: {{type: threshold, params: {{operator: greater_than, threshold: 500}}}}
alerters:
  - profile: hook
  - type: webhook
    params: {{url: "http://alert:${{DTK_BASIC_PASSWORD}}@127.0.0.1:9/basic"}}
  - type: webhook
    params:
      url: "http://127.0.0.1:9/hooks/${{DTK_PATH_TOKEN}}/send"
      headers: {{X-Api-Key: "${{DTK_API_KEY}}", Cookie: "session=${{DTK_COOKIE}}"}}
""",
    )
    # An HTTP source whose URL carries a token in its path, to a port nobody listens on.
    write(
        metrics / "api.yaml",
        """\
name: http_token
schedule: {interval: 2s}
collector:
  type: http
  params:
    url: "http://127.0.0.1:1/v1/${DTK_HTTP_TOKEN}/series?key=${DTK_HTTP_TOKEN}"
    headers: {X-Api-Key: "${DTK_API_KEY}"}
detector: {type: threshold, params: {operator: greater_than, threshold: 1}}
""",
    )
    env = {
        "DTK_PG_PASSWORD": PG_PASSWORD,
        "DTK_HOOK_TOKEN": HOOK_TOKEN,
        "DTK_BASIC_PASSWORD": BASIC_PASSWORD,
        "DTK_PATH_TOKEN": PATH_TOKEN,
        "DTK_API_KEY": API_KEY,
        "DTK_COOKIE": COOKIE,
        "DTK_HTTP_TOKEN": HTTP_TOKEN,
    }
    await daemon.start(env=env)

    async def failed_everywhere() -> bool:
        pg, url = await daemon.metric("pg_missing_table"), await daemon.metric("url_refused")
        api = await daemon.metric("http_token")
        _, text = await daemon.get("/metrics")
        return bool(
            pg
            and pg["last_error"]
            and url
            and url["last_error"]
            and api
            and api["last_error"]
            and "detectk_alerts_failed_total" in text
            and 'detectk_alerts_failed_total{channel="webhook"} ' in text
        )

    await daemon.until(failed_everywhere, timeout=60, what="failing sources and a failing webhook")
    pg = await daemon.metric("pg_missing_table")
    assert pg is not None and "no_such_table_dtk" in pg["last_error"]  # the error itself is shown
    api = await daemon.metric("http_token")
    assert api is not None and api["source"] == "http:127.0.0.1:1"  # host:port: one source per server
    paths = (
        "/api/v1/metrics",
        "/api/v1/outbox",
        "/api/v1",
        "/metrics",
        "/api/v1/alerts",
        "/ui/metrics/spiky",
        "/ui/metrics/http_token",
        "/ui/alerts",
        "/ui/outbox",
        "/",
    )
    pages = [await daemon.get(p) for p in paths]
    assert {p: status for p, (status, _) in zip(paths, pages, strict=True) if status != 200} == {
        "/api/v1": 404
    }
    spiky_page = pages[paths.index("/ui/metrics/spiky")][1]
    assert "Config as loaded" in spiky_page and "X-Api-Key" in spiky_page  # the header is named, not shown
    assert "http://127.0.0.1:9/***" in spiky_page  # the webhook URL: host and port, path hidden
    assert await daemon.stop() == 0
    everything = daemon.logs() + "".join(body for _, body in pages)
    assert "alert" in everything and "127.0.0.1:1" in everything  # the logs say what failed, and where
    for secret in (PG_PASSWORD, HOOK_TOKEN, BASIC_PASSWORD, PATH_TOKEN, API_KEY, COOKIE, HTTP_TOKEN):
        assert secret not in everything, secret

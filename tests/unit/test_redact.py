"""What is shown of a config, a URL or a line of text: no credentials, no header value, no
path or query of a web URL; host and port (and a database's name) stay, for the reader."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from detectkd.collectors.points import PointSpec
from detectkd.logs import _redact
from detectkd.redact import redact, redact_text, redact_url
from detectkd.specs.model import CollectorSpec, source_key


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/XoxTok", "https://hooks.slack.com/***"),
        ("http://user:pw@127.0.0.1:9/basic?x=1", "http://127.0.0.1:9/***"),
        ("https://api.telegram.org/bot123:ABCDEFGHIJKLMNOPQRSTU/sendMessage", "https://api.telegram.org/***"),
        ("http://api.internal:8080/?key=abc", "http://api.internal:8080/***"),
        ("http://api.internal:8080", "http://api.internal:8080"),
        ("http://[::1]:80/v1/tok", "http://[::1]:80/***"),
        ("postgresql://u:pw@db1:5432/app?sslmode=require&password=pw", "postgresql://db1:5432/app?***"),
        ("clickhouse://default:pw@ch:9000/default", "clickhouse://ch:9000/default"),
        ("sqlite:///var/lib/src.db", "sqlite:///var/lib/src.db"),
        ("http://h:notaport/tok", "http://h:notaport/***"),
    ],
)
def test_a_url_shows_scheme_host_and_port_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_every_header_value_is_hidden_whatever_its_name() -> None:
    config = {
        "collector": {
            "params": {
                "url": "http://api:8080/v1/SrcTok/x",
                "headers": {"X-Tenant": "acme-Tn1"},
                "params": {"key": "QueryKey-77", "from": "{{ period_start }}"},
            }
        },
        "alerters": [
            {
                "type": "webhook",
                "params": {
                    "url": "http://hook:9/h/PathTok",
                    "headers": {"X-Api-Key": "k-123456", "Cookie": "sid=C00kie", "X-Empty": ""},
                },
            }
        ],
    }
    shown = redact(config)
    text = repr(shown)
    for secret in ("SrcTok", "acme-Tn1", "PathTok", "k-123456", "C00kie", "QueryKey-77"):
        assert secret not in text, secret
    assert shown["alerters"][0]["params"]["headers"] == {"X-Api-Key": "***", "Cookie": "***", "X-Empty": ""}
    assert shown["collector"]["params"]["url"] == "http://api:8080/***"
    assert shown["collector"]["params"]["params"] == {"key": "***", "from": "***"}  # the URL's query


def test_urls_in_text_and_logs_lose_their_path() -> None:
    line = "POST http://127.0.0.1:9/hooks/Tok-9931 failed; listening on http://0.0.0.0:9100"
    assert redact_text(line) == "POST http://127.0.0.1:9/*** failed; listening on http://0.0.0.0:9100"
    event = _redact(
        None, "", {"event": "delivery failed", "error": line, "message": "see http://dash/d/1?x=2"}
    )
    assert "Tok-9931" not in event["error"]
    assert event["message"] == "see http://dash/d/1?x=2"  # the log alerter's text keeps its links


class _Params(BaseModel):
    url: str | None = None
    connection_string: str | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None


def _spec(kind: str, **params: object) -> CollectorSpec:
    return CollectorSpec(kind, None, _Params.model_validate(params), PointSpec("t", "v", (), ()))


def test_the_source_label_is_host_port_and_database_never_a_path_or_credentials() -> None:
    assert source_key(_spec("http", url="http://api:8080/v1/SrcTok/series?key=SrcTok")) == "http:api:8080"
    # Two endpoints of one server are one source: a SOURCE DOWN groups them.
    assert source_key(_spec("http", url="http://api:8080/other")) == "http:api:8080"
    assert source_key(_spec("sql", connection_string="postgresql://u:pw@db1:5432/app?password=pw")) == (
        "sql:db1:5432/app"
    )
    assert source_key(_spec("postgres", host="db1", port=5432, database="app")) == "postgres:db1/5432/app"

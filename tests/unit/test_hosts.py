"""Failover host lists: parsing, where each host's port comes from, the order hosts are tried
in, and config errors that name file, line and key (issue 26)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from detectkd.collectors.clickhouse import Params as ChParams
from detectkd.collectors.clickhouse import ch_endpoint, http_port
from detectkd.collectors.failover import HostOrder
from detectkd.collectors.netparams import endpoint
from detectkd.collectors.params import NetworkParams
from detectkd.collectors.points import PointSpec
from detectkd.config.hosts import HostPort, parse_hosts, split_url
from detectkd.config.settings import load_settings
from detectkd.errors import ConfigError
from detectkd.specs.loader import load_metrics
from detectkd.specs.model import CollectorSpec, source_key
from tests.support.files import write


def test_host_lists_parse_with_optional_ports() -> None:
    assert parse_hosts("ch1.example.com,ch2.example.com, ch3:9001") == (
        HostPort("ch1.example.com", None),
        HostPort("ch2.example.com", None),
        HostPort("ch3", 9001),
    )
    assert parse_hosts("[::1]:5433,/var/run/postgresql") == (
        HostPort("::1", 5433),
        HostPort("/var/run/postgresql", None),
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("h1,,h2", "entry 2 is empty"),
        ("h1,", "entry 2 is empty"),
        ("h1:54x2", "port '54x2' is not a number"),
        ("h1:70000", "outside 1-65535"),
        ("h 1,h2", "'h 1' is not a host name"),
        ("h1,h1", "'h1' is listed twice"),
        ("::1,h2", "needs brackets"),
        ("  ", "empty"),
    ],
)
def test_malformed_host_lists_say_which_entry(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(")):
        parse_hosts(text)


def test_libpq_urls_with_host_lists() -> None:
    u = split_url("postgresql://app:p%40ss@db1:5432,db2:5433/metrics?target_session_attrs=read-write")
    assert (u.user, u.password, u.database) == ("app", "p@ss", "metrics")
    assert u.hosts == (HostPort("db1", 5432), HostPort("db2", 5433))
    assert u.query == {"target_session_attrs": "read-write"}
    with pytest.raises(ValueError, match="target_session_attrs='primary-ish'"):
        split_url("postgresql://db1,db2/m?target_session_attrs=primary-ish")


def test_libpq_keyword_form_and_query_hosts() -> None:
    kw = split_url(
        "host=db1,db2 port=5432,5433 dbname=m user=u password='p w\\'x' target_session_attrs=read-write"
    )
    assert kw.hosts == (HostPort("db1", 5432), HostPort("db2", 5433))
    assert (kw.user, kw.password, kw.database) == ("u", "p w'x", "m")
    assert kw.query == {"target_session_attrs": "read-write"}
    q = split_url("postgresql:///m?host=a,b:7000&port=6000")
    assert q.hosts == (HostPort("a", 6000), HostPort("b", 7000))  # one port for every host without its own
    with pytest.raises(ValueError, match="port list '1,2' has 2 entries for 3 hosts"):
        split_url("host=a,b,c port=1,2")
    with pytest.raises(ValueError, match="expected key=value at character 18") as err:
        split_url("host=a password=x y")
    assert "y" not in str(err.value).replace("key", "")  # no piece of the password echoed


def test_postgres_endpoint_ports_and_session_attrs() -> None:
    url = "postgresql://u:pw@db1,db2:5433/m?target_session_attrs=read-write&connect_timeout=3"
    ep = endpoint("postgres", NetworkParams(query="q", connection_string=url), 5432)
    assert ep.hosts == (("db1", 5432), ("db2", 5433))  # libpq: a host without a port gets the default
    assert (ep.session_attrs, ep.connect_timeout, ep.user, ep.database) == ("read-write", 3.0, "u", "m")
    tls = endpoint("postgres", NetworkParams(query="q", connection_string=url + "&sslmode=verify-full"), 5432)
    assert tls.options == (("sslmode", "verify-full"),) and not tls.secure  # asyncpg applies libpq's sslmode
    assert ep.describe() == "postgres db1:5432,db2:5433/m"
    keys = endpoint("postgres", NetworkParams(query="q", host="a, b:6000", port=5500), 5432)
    assert keys.hosts == (("a", 5500), ("b", 6000))  # an entry's own port wins over `port`


def test_clickhouse_endpoint_maps_every_hosts_native_port() -> None:
    ep = ch_endpoint(ChParams(query="q", host="ch1.example.com,ch2.example.com:9440,ch3", port=9000))
    assert ep.urls == (
        "http://ch1.example.com:8123/",
        "http://ch2.example.com:8443/",
        "http://ch3:8123/",
    )
    assert ep.describe() == "clickhouse ch1.example.com:8123,ch2.example.com:8443,ch3:8123/default"
    assert http_port(ChParams(query="q", host="a:9000,b"))[1] is not None  # validate's note
    url = ch_endpoint(ChParams(query="q", connection_string="clickhouse://u:p@a:9000,b:8124/db"))
    assert (url.urls, url.user, url.database) == (("http://a:8123/", "http://b:8124/"), "u", "db")


def test_a_failed_host_is_tried_last_then_first_again() -> None:
    now = [0.0]
    order = HostOrder(3, retry_s=60, clock=lambda: now[0])
    assert order.order() == [0, 1, 2]
    order.failed(0)
    assert order.order() == [1, 2, 0] and not order.better_than(1)
    now[0] = 59.0
    assert order.order() == [1, 2, 0]
    now[0] = 60.0  # the way back: the first host is tried first again
    assert order.order() == [0, 1, 2] and order.better_than(1)
    order.failed(0)
    order.ok(0)
    assert order.order() == [0, 1, 2]


def test_source_key_names_the_whole_host_list() -> None:
    def key(**params: Any) -> str:
        spec = CollectorSpec(
            "postgres", None, NetworkParams(query="q", **params), PointSpec("t", "v", (), ())
        )
        return source_key(spec)

    assert (
        key(connection_string="postgresql://u:secret@db1:5432,db2:5433/m") == "postgres:db1:5432,db2:5433/m"
    )
    assert key(host="db1,db2", database="m") == "postgres:db1,db2/m"


METRIC = """\
name: orders
collector:
  type: {type}
  params:
    {key}: "{value}"
    query: "SELECT 1 AS value"
detector:
  type: threshold
  params: {{operator: greater_than, threshold: 5}}
alerter:
  type: log
"""


@pytest.mark.parametrize(
    ("kind", "key", "value", "fragment"),
    [
        ("clickhouse", "host", "ch1.example.com,,ch3.example.com", "entry 2 is empty"),
        ("postgres", "host", "db1:5432,db2:54o2", "port '54o2' is not a number"),
        ("postgres", "connection_string", "postgresql://db1,db 2/m", "'db 2' is not a host name"),
        ("postgres", "connection_string", "postgresql://db1,db2/m?target_session_attrs=rw", "is not one of"),
        ("mysql", "host", "my1,my2", "not mysql"),
    ],
)
def test_malformed_host_lists_name_file_line_and_key(
    tmp_path: Path, kind: str, key: str, value: str, fragment: str
) -> None:
    write(tmp_path / "metrics" / "m.yaml", METRIC.format(type=kind, key=key, value=value))
    result = load_metrics([tmp_path / "metrics"], None, env={})
    assert not result.ok
    issues = [i for i in result.all_errors() if fragment in i.message]
    assert issues, [str(i) for i in result.all_errors()]
    issue = issues[0]
    assert issue.file.endswith("m.yaml") and issue.line in (4, 5), str(issue)
    if kind != "mysql":  # the mysql rule is about the whole block
        assert issue.key == f"collector.params.{key}" and issue.line == 5, str(issue)


def test_the_daemon_store_host_list_is_checked_at_load(tmp_path: Path) -> None:
    write(tmp_path / "detectkd.yaml", "storage:\n  type: clickhouse\n  host: 'ch1,ch2:x'\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "detectkd.yaml")
    (issue,) = err.value.issues
    assert issue.key == "storage.host" and issue.line == 3 and "port 'x' is not a number" in issue.message


def test_a_good_host_list_loads(tmp_path: Path) -> None:
    text = METRIC.format(
        type="clickhouse", key="host", value="ch1.example.com,ch2.example.com,ch3.example.com"
    )
    write(tmp_path / "metrics" / "m.yaml", text)
    result = load_metrics([tmp_path / "metrics"], None, env={})
    assert result.ok, [str(i) for i in result.all_errors()]

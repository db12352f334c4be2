"""Host lists for failover: `host: "ch1,ch2:8124"` and `postgresql://u@h1,h2:5433/db?...`.

libpq's syntax (and DetectK's deployment guide): comma-separated hosts, each
with an optional `:port`, tried in order. An entry's own port wins over the
`port` key, which wins over the driver's default. IPv6 addresses go in
brackets (`[::1]:5432`); a PostgreSQL Unix-socket directory starts with `/`.

Everything here is pure parsing: a malformed list is a ValueError whose text
says which entry is wrong, so the config loader reports it with file, line
and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

# libpq's target_session_attrs values that asyncpg implements.
SESSION_ATTRS = ("any", "primary", "standby", "read-write", "read-only", "prefer-standby")

_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_IPV6 = re.compile(r"^\[([0-9A-Fa-f:.%A-Za-z]+)\](?::(.*))?$")


class HostPort(NamedTuple):
    host: str
    port: int | None  # None: the `port` key or the driver's default


def _port(text: str, entry: str) -> int:
    if not text.isdigit():
        raise ValueError(f"host entry {entry!r}: port {text!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"host entry {entry!r}: port {port} is outside 1-65535")
    return port


def _entry(raw: str) -> HostPort:
    entry = raw.strip()
    if entry.startswith("/"):  # a PostgreSQL socket directory
        return HostPort(entry, None)
    if (v6 := _IPV6.match(entry)) is not None:
        return HostPort(v6.group(1), _port(v6.group(2), entry) if v6.group(2) is not None else None)
    name, sep, port = entry.partition(":")
    if ":" in port:
        raise ValueError(f"host entry {entry!r}: an IPv6 address needs brackets, e.g. [::1]:5432")
    if not _NAME.match(name):
        raise ValueError(f"host entry {entry!r}: {name!r} is not a host name or address")
    return HostPort(name, _port(port, entry) if sep else None)


def parse_hosts(text: str) -> tuple[HostPort, ...]:
    """`"h1, h2:5433"` -> ((h1, None), (h2, 5433)); ValueError naming the bad entry."""
    if not text.strip():
        raise ValueError("the host is empty")
    out: list[HostPort] = []
    for i, raw in enumerate(text.split(","), 1):
        if not raw.strip():
            raise ValueError(f"host list {text!r}: entry {i} is empty (a stray comma?)")
        hp = _entry(raw)
        if hp in out:
            raise ValueError(f"host list {text!r}: {raw.strip()!r} is listed twice")
        out.append(hp)
    return tuple(out)


@dataclass(frozen=True)
class UrlParts:
    """A connection URL whose netloc may hold a host list (urlsplit's .port fails on those)."""

    scheme: str
    user: str | None = None
    password: str | None = None
    hosts: tuple[HostPort, ...] = ()
    database: str | None = None
    query: dict[str, str] = field(default_factory=dict)


def _with_ports(hosts: tuple[HostPort, ...], ports: str) -> tuple[HostPort, ...]:
    """libpq's `port=5432,5433`: one port for every host, or one per host."""
    listed = [_port(p.strip(), ports) for p in ports.split(",")]
    if len(listed) == 1:
        return tuple(HostPort(h, own or listed[0]) for h, own in hosts)
    if len(listed) != len(hosts):
        raise ValueError(f"port list {ports!r} has {len(listed)} entries for {len(hosts)} hosts")
    return tuple(HostPort(h, own or p) for (h, own), p in zip(hosts, listed, strict=True))


_PAIR = re.compile(r"\s*(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")


def keywords_to_url(text: str) -> str:
    """libpq's keyword/value form (`host=h1,h2 port=5432,5433 dbname=m`) as a postgresql:// URL."""
    pairs: dict[str, str] = {}
    pos = 0
    while pos < len(text.rstrip()):
        m = _PAIR.match(text, pos)
        if m is None:
            # Not echoed: the rest may hold a piece of a password.
            raise ValueError(f"connection string: expected key=value at character {pos + 1}")
        value = m.group(2)
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        pairs[m.group(1)] = value
        pos = m.end()
    user = quote(pairs.pop("user", ""), safe="")
    password = pairs.pop("password", None)
    auth = f"{user}:{quote(password, safe='')}@" if password is not None else (f"{user}@" if user else "")
    database = quote(pairs.pop("dbname", ""), safe="")
    return f"postgresql://{auth}/{database}" + (f"?{urlencode(pairs)}" if pairs else "")


def split_url(url: str) -> UrlParts:
    """A connection URL, or libpq's keyword/value form; hosts also from `?host=...&port=...`."""
    if "://" not in url and "=" in url:
        url = keywords_to_url(url)
    parts = urlsplit(url)
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":") if at else ("", "", "")
    hosts = parse_hosts(unquote(hostlist)) if hostlist else ()
    query = dict(parse_qsl(parts.query))
    if not hosts and query.get("host"):
        hosts = parse_hosts(query.pop("host"))
    if hosts and query.get("port"):
        hosts = _with_ports(hosts, query.pop("port"))
    attrs = query.get("target_session_attrs")
    if attrs is not None and attrs not in SESSION_ATTRS:
        raise ValueError(f"target_session_attrs={attrs!r} is not one of {', '.join(SESSION_ATTRS)}")
    timeout = query.get("connect_timeout")
    if timeout is not None and not (timeout.isdigit() and int(timeout) > 0):
        raise ValueError(f"connect_timeout={timeout!r} is not a whole number of seconds above 0")
    return UrlParts(
        scheme=parts.scheme.lower(),
        user=unquote(user) or None,
        password=unquote(password) if colon else None,
        hosts=hosts,
        database=unquote(parts.path.lstrip("/")) or None,
        query=query,
    )


def check_connection_string(url: str) -> None:
    """Raise ValueError when a host list, port list or target_session_attrs is malformed."""
    if ("://" in url and not url.lower().startswith(("sqlite", "file"))) or ("://" not in url and "=" in url):
        split_url(url)


def show(hosts: tuple[tuple[str, int], ...]) -> str:
    """`h1:5432,h2:5433`: how logs, errors and the SOURCE DOWN label name a host list."""
    return ",".join(f"[{h}]:{p}" if ":" in h else (h if h.startswith("/") else f"{h}:{p}") for h, p in hosts)

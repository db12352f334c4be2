"""The web config file: TLS and basic auth on every endpoint, writes only with auth,
checked with real clients (aiohttp over TLS against a throw-away CA)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
import trustme

from detectkd.errors import ConfigError
from detectkd.http.app import start_server
from detectkd.http.webconfig import load_web_config
from detectkd.runtime.daemon import Daemon
from tests.support.files import write
from tests.support.http import basic_auth
from tests.support.inprocess import make_settings
from tests.support.net import free_port

PASSWORD = "correct horse battery"


@asynccontextmanager
async def serving(tmp_path: Path, web_yml: str | None, **settings: Any) -> AsyncIterator[str]:
    port = free_port()
    if web_yml is not None:
        write(tmp_path / "web.yml", web_yml)
        settings["web_config_file"] = tmp_path / "web.yml"
    write(
        tmp_path / "metrics.d" / "m.yaml",
        "name: m\ncollector: {type: http, params: {url: 'http://127.0.0.1:9/'}}\n",
    )
    d = Daemon(make_settings(tmp_path, **settings).model_copy(update={"listen": f"127.0.0.1:{port}"}))
    runner = await start_server(d)
    await d.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        d.scheduler.shutdown(wait=False)
        await runner.cleanup()
        await d.close()


def users() -> str:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"basic_auth_users:\n  alice: '{hashed}'\n"


async def test_tls_and_basic_auth_guard_every_endpoint(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    web = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n" + users()
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    async with serving(tmp_path, web, lifecycle_api=True) as host, aiohttp.ClientSession() as http:
        base = f"https://{host}"
        for path in ("/metrics", "/healthz", "/api/v1/metrics", "/api/v1/silences"):
            async with http.get(base + path, ssl=client_ssl) as r:
                assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Basic"), path
        async with http.get(base + "/metrics", ssl=client_ssl, headers=basic_auth("alice", "nope")) as r:
            assert r.status == 401
        alice = basic_auth("alice", PASSWORD)
        for _ in range(2):  # the second check is served from the cache
            async with http.get(base + "/metrics", ssl=client_ssl, headers=alice) as r:
                assert r.status == 200 and "detectk_" in await r.text()
        silence = {"matchers": ["metric=m"], "duration": "1h"}
        async with http.post(base + "/api/v1/silences", json=silence, ssl=client_ssl, headers=alice) as r:
            assert r.status == 201
        with pytest.raises(aiohttp.ClientError):  # plain HTTP is not served
            async with http.get(f"http://{host}/healthz"):
                pass
        with pytest.raises(aiohttp.ClientConnectorCertificateError):  # nor an unknown server
            async with http.get(base + "/healthz", ssl=ssl.create_default_context()):
                pass


async def test_writes_are_refused_without_authentication(tmp_path: Path) -> None:
    async with serving(tmp_path, None, lifecycle_api=True) as host, aiohttp.ClientSession() as http:
        async with http.post(f"http://{host}/-/reload") as r:
            assert r.status == 403 and "basic_auth_users" in (await r.json())["error"]
        async with http.post(f"http://{host}/api/v1/silences", json={"matchers": ["metric=m"]}) as r:
            assert r.status == 403
        async with http.get(f"http://{host}/api/v1/metrics") as r:  # reads stay open without auth
            assert r.status == 200


def test_a_broken_web_config_names_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "web.yml", "basic_auth_users:\n  alice: plaintext\n")
    with pytest.raises(ConfigError) as err:
        load_web_config(tmp_path / "web.yml")
    (issue,) = err.value.issues
    assert issue.file.endswith("web.yml") and issue.line == 2 and "bcrypt" in issue.message
    write(tmp_path / "web.yml", "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.pem\n")
    with pytest.raises(ConfigError, match="tls_server_config"):
        load_web_config(tmp_path / "web.yml")

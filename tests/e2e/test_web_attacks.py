"""Attacks on the HTTP edge of the real daemon: a page on another origin visited by a
logged-in operator (in headless Chromium), and a `workers:` supervisor that must apply the
daemon's write rule, forward only the user it authenticated and never a decoded path."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from detectkd.shard import name_hash
from tests.support.files import write
from tests.support.http import Receiver
from tests.support.metrics import Source, fill, metric_yaml
from tests.support.process import USER, DaemonProcess, chromium

pytestmark = pytest.mark.e2e
STEP = 2
SILENCE = {"matchers": ["metric=~.*"], "duration": "720h", "comment": "forged"}


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    driver = chromium()
    yield driver
    driver.quit()


def evil_page(target: str) -> str:
    """A page of another origin: a text/plain form whose body is JSON, no-cors fetches of
    every write with the browser's credentials, and the alerts page in a frame."""
    name = json.dumps({**SILENCE, "x": ""})[:-2]  # the form adds "=" and the value
    return f"""<!doctype html><html><body>
<form id="f" method="POST" action="{target}/api/v1/silences" enctype="text/plain">
<input type="hidden" name='{name}' value='"}}'></form>
<iframe id="frame" src="{target}/ui/alerts" width="600" height="300"></iframe>
<script>
const opts = (method, body) => ({{method, mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}}, body}});
Promise.allSettled([
  fetch("{target}/api/v1/silences", opts("POST", JSON.stringify({json.dumps(SILENCE)}))),
  fetch("{target}/-/reload", opts("POST")),
  fetch("{target}/api/v1/feedback", opts("POST", JSON.stringify({{metric: "m", period: 1, label: "false_alarm"}}))),
]).then(() => {{ document.title = "sent"; }});
</script></body></html>"""


@pytest.fixture
def evil() -> Iterator[tuple[str, list[str]]]:
    """Serves the page above on another origin (another port, in a thread: the browser's
    calls block this test's event loop); (its URL, the target it attacks)."""
    target: list[str] = []

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = evil_page(target[0]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}/", target
    server.shutdown()
    server.server_close()


async def test_a_page_on_another_origin_cannot_write_or_frame_with_the_operators_login(
    daemon: DaemonProcess, receiver: Receiver, browser: webdriver.Chrome, evil: tuple[str, list[str]]
) -> None:
    src = Source(daemon.root / "src.db")
    now = int(time.time())
    fill(src, "m", now - 400, now + 300, STEP)
    write(daemon.root / "metrics.d" / "m.yaml", metric_yaml("m", src.path, receiver.url))
    await daemon.start()
    reloaded_at = (await daemon.api())["config"]["at"]
    url, target = evil
    target.append(daemon.base)
    # Logged in: the browser sends the operator's credentials with every request.
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": daemon.auth})
    browser.get(url)
    WebDriverWait(browser, 20).until(lambda d: d.title == "sent")
    browser.switch_to.frame(browser.find_element(By.ID, "frame"))
    framed = browser.execute_script("return location.href")
    assert not framed.startswith(daemon.base), "the alerts page rendered inside another site's frame"
    browser.switch_to.default_content()
    browser.execute_script("document.getElementById('f').submit()")
    WebDriverWait(browser, 20).until(lambda d: d.current_url.startswith(daemon.base))
    assert "cross-site request refused" in browser.find_element(By.TAG_NAME, "body").text
    _, body = await daemon.get("/api/v1/silences?all=1")
    assert json.loads(body)["silences"] == []
    _, body = await daemon.get("/api/v1/metrics/m/feedback")
    assert json.loads(body)["feedback"] == []
    assert (await daemon.api())["config"]["at"] == reloaded_at  # no reload was triggered
    # The daemon's own page, same browser, same login: its writes work.
    browser.get(daemon.base + "/ui/silences")
    browser.find_element(By.NAME, "matchers").send_keys("metric=m")
    browser.find_element(By.CSS_SELECTOR, "form#new-silence button").click()
    await daemon.until(lambda: _silences(daemon), what="the same-origin silence")
    assert await daemon.stop() == 0


async def _silences(d: DaemonProcess) -> list[dict[str, Any]]:
    _, body = await d.get("/api/v1/silences")
    found: list[dict[str, Any]] = json.loads(body)["silences"]
    return found


async def test_a_workers_supervisor_applies_the_write_rule_and_forwards_only_what_it_checked(
    daemon: DaemonProcess, receiver: Receiver
) -> None:
    names = [f"w{i}" for i in range(12)]
    one = next(n for n in names if name_hash(n) % 2 == 1)
    src = Source(daemon.root / "src.db")
    now = int(time.time())
    fill(src, one, now - 400, now + 300, STEP)
    write(daemon.root / "metrics.d" / f"{one}.yaml", metric_yaml(one, src.path, receiver.url))
    await daemon.start(env={"DETECTK_WORKERS": "2"})
    period = now - now % STEP - 10 * STEP
    async with aiohttp.ClientSession(headers=daemon.auth) as http:
        label = {"metric": one, "series": "", "period": period, "label": "incident"}
        async with http.post(daemon.base + "/api/v1/feedback", json=label) as r:
            assert r.status == 201
        spoofed = {**SILENCE, "created_by": "mallory"}
        async with http.post(
            daemon.base + "/api/v1/silences", json=spoofed, headers={"X-Detectkd-User": "mallory"}
        ) as r:
            assert r.status == 201
            assert (await r.json())["silence"]["created_by"] == USER
        # `..%2Ffeedback%3F...` must stay one silence id, not become DELETE /api/v1/feedback.
        sneaky = urllib.parse.quote(f"../feedback?metric={one}&series=&period={period}", safe="")
        async with http.delete(f"{daemon.base}/api/v1/silences/{sneaky}") as r:
            assert r.status == 404
        async with http.post(daemon.base + "/-/reload", headers={"Origin": "http://evil.example"}) as r:
            assert r.status == 403
    _, body = await daemon.get(f"/api/v1/metrics/{one}/feedback")
    assert [f["label"] for f in json.loads(body)["feedback"]] == ["incident"]
    assert await daemon.stop() == 0

    # No users: the supervisor refuses every write, as the single daemon does.
    write(daemon.root / "web.yml", "basic_auth_users: {}\n")
    await daemon.start(env={"DETECTK_WORKERS": "2"})
    async with aiohttp.ClientSession() as anonymous:
        writes: list[tuple[str, str, Any]] = [
            ("POST", "/api/v1/silences", SILENCE),
            ("POST", "/api/v1/feedback", label),
            ("DELETE", f"/api/v1/feedback?metric={one}&period={period}", None),
            ("POST", f"/api/v1/metrics/{one}/backtest", {"range": "1h"}),
        ]
        for method, path, body in writes:
            async with anonymous.request(method, daemon.base + path, json=body) as r:
                assert r.status == 403, path
        async with anonymous.get(f"{daemon.base}/api/v1/metrics/{one}/feedback") as r:
            assert [f["label"] for f in (await r.json())["feedback"]] == ["incident"]
        async with anonymous.get(daemon.base + "/api/v1/silences") as r:
            assert [s["created_by"] for s in (await r.json())["silences"]] == [USER]
    assert await daemon.stop() == 0

"""docs/tutorial.md, run as written: its files are written, its shell blocks run in order
(exports carry over, `&` jobs keep running), and the webhook it sets up receives the FIRING
of the incident it simulates. Only the ports and the database name are made private."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.support.files import REPO
from tests.support.net import free_port

TUTORIAL = REPO / "docs" / "tutorial.md"
BLOCK = re.compile(r"(?:<!-- file: (?P<file>\S+) -->\n)?```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)


def steps(text: str) -> list[tuple[str, str | None, str]]:
    """(language, file or None, body) for every fenced block, in order."""
    return [(m["lang"], m["file"], m["body"]) for m in BLOCK.finditer(text)]


def test_the_tutorial_runs_as_written_and_its_incident_reaches_the_webhook(tmp_path: Path) -> None:
    db = f"detectk_tutorial_{uuid.uuid4().hex[:8]}"
    text = TUTORIAL.read_text()
    text = text.replace("detectk_tutorial", db).replace("9100", str(free_port()))
    text = text.replace("9200", str(free_port()))
    blocks = steps(text)
    assert [lang for lang, _, _ in blocks].count("sh") >= 4 and any(f for _, f, _ in blocks)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env = {k: v for k, v in env.items() if not k.startswith("DETECTK_")}
    exports: list[str] = []
    groups: list[int] = []
    try:
        for step, (lang, file, body) in enumerate(blocks):
            if file is not None:
                path = tmp_path / file
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(body)
                continue
            if lang != "sh":
                continue
            exports += [line for line in body.splitlines() if line.startswith("export ")]
            script = "set -e\n" + "\n".join(exports) + "\n" + body
            log = tmp_path / f"step{step}.log"
            with log.open("w") as out:
                proc = subprocess.Popen(
                    ["bash", "-c", script],
                    cwd=tmp_path,
                    env=env,
                    start_new_session=True,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            groups.append(proc.pid)  # jobs it starts with `&` keep running in its group
            assert proc.wait(240) == 0, f"{body}\n---\n{log.read_text()}"
        alerts = tmp_path / "tutorial" / "alerts.jsonl"
        deadline = time.monotonic() + 200
        firing: list[dict[str, object]] = []
        while not firing:
            assert time.monotonic() < deadline, "no FIRING reached the tutorial's webhook"
            lines = alerts.read_text().splitlines() if alerts.exists() else []
            firing = [a for a in map(json.loads, lines) if a.get("status") == "firing"]
            time.sleep(0.5)
        (alert,) = firing
        assert alert["metric"] == "orders_per_minute" and float(str(alert["value"])) >= 500
        assert (tmp_path / "tutorial" / "backtest.html").stat().st_size > 1000
    finally:
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
        subprocess.run(
            ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", db], timeout=60
        )

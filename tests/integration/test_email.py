"""The email channel against a real SMTP server in-process (aiosmtpd), plain and with STARTTLS."""

from __future__ import annotations

import email
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from detectkd.alerting.alert import Alert
from detectkd.alerting.channels import email as email_channel
from detectkd.errors import PermanentError, TransientError
from tests.support.alerts import make_alert
from tests.support.net import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(crt),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return key, crt


@pytest.fixture
def smtp(request: pytest.FixtureRequest, cert: tuple[Path, Path]) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    kwargs: dict[str, Any] = {}
    if getattr(request, "param", "plain") == "starttls":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert[1]), str(cert[0]))
        kwargs = {"tls_context": ctx, "require_starttls": True}
    controller = Controller(inbox, hostname="localhost", port=port, **kwargs)
    controller.start()
    yield inbox, port
    controller.stop()


def alert(series: str = "region=eu") -> Alert:
    return make_alert(series, labels={"region": "eu"})


@pytest.mark.parametrize("smtp", ["plain"], indirect=True)
async def test_email_is_delivered_with_subject_and_body(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    params = email_channel.Params.model_validate(
        {
            "host": "localhost",
            "port": port,
            "from": "dtk@example.org",
            "to": ["oncall@example.org"],
            "starttls": False,
        }
    )
    await email_channel.build(params, None).send(alert())  # type: ignore[arg-type]
    ((rcpt, msg),) = inbox.messages
    assert rcpt == ["oncall@example.org"]
    assert msg["Subject"] == "[FIRING] orders {region=eu}"
    assert msg["X-Detectk-Key"] == "orders|region=eu|firing|600"
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode()
    assert "Value: 250" in body and "Expected range: 80 .. 120" in body


@pytest.mark.parametrize("smtp", ["starttls"], indirect=True)
async def test_email_uses_starttls_when_the_server_requires_it(
    smtp: tuple[Inbox, int], cert: tuple[Path, Path]
) -> None:
    inbox, port = smtp
    base = {"host": "localhost", "port": port, "from": "dtk@example.org", "to": ["a@example.org"]}
    verified = email_channel.Params.model_validate({**base, "starttls": True, "ca_file": str(cert[1])})
    await email_channel.build(verified, None).send(alert())  # type: ignore[arg-type]
    assert len(inbox.messages) == 1
    refused = email_channel.Params.model_validate({**base, "starttls": False})
    with pytest.raises(PermanentError, match="answered 530"):  # "Must issue a STARTTLS command first"
        await email_channel.build(refused, None).send(alert())  # type: ignore[arg-type]
    assert len(inbox.messages) == 1


async def test_subject_cannot_inject_headers() -> None:
    params = email_channel.Params.model_validate({"host": "x", "from": "a@b.c", "to": ["d@e.f"]})
    msg = email_channel.build(params, None).message(alert(series="x\r\nBcc: evil@example.org"))  # type: ignore[arg-type]
    assert "\n" not in msg["Subject"] and msg["Bcc"] is None


async def test_unreachable_server_is_a_transient_error() -> None:
    params = email_channel.Params.model_validate(
        {"host": "127.0.0.1", "port": 9, "from": "a@b.c", "to": ["d@e.f"], "timeout": "2s"}
    )
    with pytest.raises(TransientError, match="cannot deliver via 127.0.0.1:9"):
        await email_channel.build(params, None).send(alert())  # type: ignore[arg-type]

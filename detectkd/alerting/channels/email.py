"""E-mail over SMTP (aiosmtplib): STARTTLS when the server offers it (or required), or implicit TLS.

Subject and body are Jinja2 templates with the same variables as every
channel; the body is plain text. 5xx answers are permanent errors (the
message will never be accepted as it is); everything else is retried.
"""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

import aiosmtplib
from pydantic import Field

from detectkd.alerting.alert import Alert
from detectkd.alerting.message import MessageRenderer, variables
from detectkd.config.types import Duration, Frozen
from detectkd.errors import PermanentError, TransientError
from detectkd.resources import Resources
from detectkd.templating import compile_message_template, compile_template

DEFAULT_SUBJECT = (
    "[{{ headline }}] {{ metric_name }}{% if series %} {{ '{' }}{{ series }}{{ '}' }}{% endif %}"
)


class Params(Frozen):
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    from_addr: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    starttls: bool | None = None  # None: use it when offered; True: require it; False: never
    use_tls: bool = False  # implicit TLS (port 465)
    verify: bool = True
    ca_file: str | None = None
    subject_template: str = DEFAULT_SUBJECT
    message_template: str | None = None
    timeout: Duration = timedelta(seconds=30)


class EmailChannel:
    kind = "email"

    def __init__(self, params: Params) -> None:
        self.destination = f"{params.host}:{params.port}"
        self._p = params
        self._subject = compile_template(params.subject_template)
        template = compile_message_template(params.message_template) if params.message_template else None
        self._renderer = MessageRenderer(template)

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self._p.from_addr
        msg["To"] = ", ".join(self._p.to)
        subject = self._subject.render(**variables(alert))
        msg["Subject"] = " ".join(subject.split())  # no header injection through newlines
        msg["X-Detectk-Key"] = " ".join(alert.key.split())
        msg.set_content(self._renderer.render(alert))
        return msg

    async def send(self, alert: Alert) -> None:
        p = self._p
        try:
            await aiosmtplib.send(
                self.message(alert),
                hostname=p.host,
                port=p.port,
                username=p.username,
                password=p.password,
                start_tls=p.starttls,
                use_tls=p.use_tls,
                validate_certs=p.verify,
                cert_bundle=p.ca_file,
                timeout=p.timeout.total_seconds(),
            )
        except aiosmtplib.SMTPResponseException as exc:
            message = f"{p.host}:{p.port} answered {exc.code}: {exc.message[:200]}"
            if exc.code >= 500:
                raise PermanentError(message) from None
            raise TransientError(message) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientError(f"cannot deliver via {p.host}:{p.port}: {type(exc).__name__}") from None


def build(params: Params, resources: Resources) -> EmailChannel:
    return EmailChannel(params)

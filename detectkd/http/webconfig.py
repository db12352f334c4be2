"""The web config file (`web_config_file`), as the Prometheus exporter-toolkit reads it.

```yaml
tls_server_config:
  cert_file: /etc/detectk/tls/server.crt
  key_file: /etc/detectk/tls/server.key
  # client_ca_file: /etc/detectk/tls/ca.crt
  # client_auth_type: RequireAndVerifyClientCert
basic_auth_users:
  alice: $2y$10$...   # bcrypt hash (htpasswd -nBC 10 alice)
```

TLS, when configured, serves every endpoint; basic auth, when users are
configured, guards every endpoint. Write endpoints (reload, silences) are
refused unless basic auth is configured, whatever `lifecycle_api` says
(`detectkd.http.guard`); the users are checked by `detectkd.http.auth`.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from detectkd.config.types import Frozen
from detectkd.config.validation import validate
from detectkd.config.yamlsource import load_yaml
from detectkd.errors import ConfigError, ConfigIssue

TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


class TlsServerConfig(Frozen):
    cert_file: str  # the server's certificate (PEM)
    key_file: str  # its private key (PEM)
    client_ca_file: str | None = None  # CA that client certificates must chain to
    client_auth_type: Literal["NoClientCert", "RequireAndVerifyClientCert"] = "NoClientCert"
    min_version: Literal["TLS12", "TLS13"] = "TLS12"


def _bcrypt(hashed: str) -> str:
    if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
        raise ValueError("the password must be a bcrypt hash ($2y$...), not plain text")
    return hashed


class WebConfig(Frozen):
    tls_server_config: TlsServerConfig | None = None  # serve HTTPS
    basic_auth_users: dict[str, Annotated[str, AfterValidator(_bcrypt)]] = Field(default_factory=dict)

    @property
    def auth(self) -> bool:
        return bool(self.basic_auth_users)


def load_web_config(path: Path | None) -> WebConfig:
    """Read and check the file (certificates included). Raises ConfigError with file and line."""
    if path is None:
        return WebConfig()
    doc = load_yaml(path, {})
    if doc.issues:
        raise ConfigError(doc.issues)
    model, problems = validate(doc, WebConfig, doc.data or {})
    if model is None:
        raise ConfigError(problems)
    assert isinstance(model, WebConfig)
    if model.tls_server_config is not None:
        try:
            ssl_context(model.tls_server_config, path.parent)
        except (OSError, ssl.SSLError) as exc:
            line = doc.line_of(("tls_server_config",))
            raise ConfigError(
                [ConfigIssue(str(path), line, "tls_server_config", f"cannot load: {exc}")]
            ) from None
    return model


def ssl_context(tls: TlsServerConfig, base: Path) -> ssl.SSLContext:
    def at(p: str) -> str:
        return str(base / p) if not Path(p).is_absolute() else p

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = TLS_VERSIONS[tls.min_version]
    ctx.load_cert_chain(at(tls.cert_file), at(tls.key_file))
    if tls.client_ca_file:
        ctx.load_verify_locations(at(tls.client_ca_file))
    if tls.client_auth_type == "RequireAndVerifyClientCert":
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx

"""Jinja2 for query, URL and message templates (DetectK's variable names).

Templates are compiled once at load; an undefined variable is an error at
render time rather than an empty string that silently matches nothing.
"""

from __future__ import annotations

from typing import Any

import jinja2

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
)


def compile_template(text: str) -> jinja2.Template:
    """Raises jinja2.TemplateSyntaxError (with .lineno) on a broken template."""
    return _ENV.from_string(text)


def render(template: jinja2.Template, variables: dict[str, Any]) -> str:
    return template.render(**variables)


def check_template(text: str) -> str | None:
    """None if `text` compiles, else a one-line reason."""
    try:
        compile_template(text)
    except jinja2.TemplateSyntaxError as exc:
        return f"template syntax error on template line {exc.lineno}: {exc.message}"
    return None

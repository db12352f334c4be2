"""Jinja2 for query, URL and message templates (DetectK's variable names).

Templates are compiled once at load; an undefined variable is an error at
render time rather than an empty string that silently matches nothing.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
)


@functools.lru_cache(maxsize=65536)
def compile_template(text: str) -> jinja2.Template:
    """Raises jinja2.TemplateSyntaxError (with .lineno) on a broken template.

    Cached by text: validation, the runtime and every reload compile a query once.
    """
    return _ENV.from_string(text)


def render(template: jinja2.Template, variables: dict[str, Any]) -> str:
    return template.render(**variables)


def check_template(text: str, sample: dict[str, Any] | None = None) -> str | None:
    """None if `text` compiles (and renders with `sample`, when given), else a one-line reason."""
    try:
        template = compile_template(text)
        if sample is not None:
            template.render(**sample)
    except jinja2.TemplateSyntaxError as exc:
        return f"template syntax error on template line {exc.lineno}: {exc.message}"
    except jinja2.UndefinedError as exc:
        names = ", ".join(sorted(sample or {}))
        return f"template uses an unknown variable: {exc.message} (available: {names})"
    except Exception as exc:
        return f"template fails to render with sample values: {type(exc).__name__}: {exc}"
    return None

"""Jinja2 for query, URL and message templates (DetectK's variable names).

Templates are compiled once at load. In a query, URL or header template an
undefined variable is an error rather than an empty string that silently
matches nothing. Message templates render leniently, as DetectK renders
them: an unknown name is empty (a warning with file and line at load), and a
message that fails to render falls back to the default text, so an alert is
never lost to its template (`compile_message_template`).

Every template renders in Jinja2's immutable sandbox with no globals but
`range`: a template sees only the variables it is given (no attribute
starting with `_`, no method that mutates, nothing of `os` or the
environment: environment values enter configs only through `${VAR}` when the
file is loaded). Every render is on a budget of loop iterations, output,
time and value size (`detectkd.render_budget`, charged by `detectkd.sandbox`),
so a template can neither hang the process nor build a gigabyte string.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError

from detectkd import render_budget as rb
from detectkd.render_budget import RenderBudgetExceeded
from detectkd.sandbox import Sandbox

_ENV = Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def _datetime_format(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """DetectK's filter: `{{ execution_time | datetime_format('%Y-%m-%d') }}`."""
    return str(value.strftime(fmt))


_ENV.add_filter("datetime_format", _datetime_format)


_MESSAGES = Sandbox(undefined=jinja2.ChainableUndefined, autoescape=False, keep_trailing_newline=False)
_MESSAGES.add_filter("datetime_format", _datetime_format)


@functools.lru_cache(maxsize=4096)
def compile_message_template(text: str) -> jinja2.Template:
    """A message template: unknown names (and attributes of them) render empty."""
    return _MESSAGES.from_string(text)


def unsafe_access(text: str) -> str | None:
    """A message template that reaches for an attribute or key starting with `_` (Python
    internals): refused at load even though it would only render empty."""
    for node in _MESSAGES.parse(text).find_all((nodes.Getattr, nodes.Getitem)):
        name = (
            node.attr
            if isinstance(node, nodes.Getattr)
            else getattr(getattr(node, "arg", None), "value", None)
        )
        if isinstance(name, str) and name.startswith("_"):
            return f"template does something templates may not: access to {name!r} is unsafe"
    return None


def message_template_warnings(text: str, sample: dict[str, Any]) -> list[str]:
    """What a message template will not show as its author expects (it still loads): names
    that are not message variables, or a failure to render sample values (then the default
    text is sent). Syntax errors are `check_template`'s, a render over budget
    `message_template_problem`'s."""
    out = []
    unknown = sorted(meta.find_undeclared_variables(_MESSAGES.parse(text)) - set(sample) - {"range"})
    if unknown:
        out.append(
            f"message_template uses {', '.join(unknown)}, not a message variable: rendered empty "
            f"(variables: {', '.join(sorted(sample))})"
        )
    failure = _render_failure(text, sample)
    if failure is not None and not isinstance(failure, RenderBudgetExceeded):
        out.append(
            f"message_template fails with sample values ({type(failure).__name__}: {failure}); "
            "such alerts are sent with the default text"
        )
    return out


def message_template_problem(text: str, sample: dict[str, Any]) -> str | None:
    """A message template that may not load: one that reaches for internals, or whose render
    of sample values goes over the render budget (`detectkd.render_budget`)."""
    if problem := unsafe_access(text):
        return problem
    failure = _render_failure(text, sample)
    return str(failure) if isinstance(failure, RenderBudgetExceeded) else None


def _render_failure(text: str, sample: dict[str, Any]) -> Exception | None:
    try:
        compile_message_template(text).render(**sample)
    except Exception as exc:
        return exc
    return None


_PERIOD_VARS = re.compile(r"\{[{%][^}]*\b(period_(start|finish)\w*|execution_time)\b")


def period_aware(text: str) -> bool:
    """Does a query, URL or parameter template select by period (so history can be asked for)?"""
    return _PERIOD_VARS.search(text) is not None


@functools.lru_cache(maxsize=65536)
def compile_template(text: str) -> jinja2.Template:
    """Raises jinja2.TemplateSyntaxError (with .lineno) on a broken template.

    Cached by text: validation, the runtime and every reload compile a query once.
    """
    return _ENV.from_string(text)


def template_names(text: str) -> frozenset[str] | None:
    """The variables a query, URL or parameter template reads (so only those are computed
    for each render, `Window.template_vars`); None: all (it pulls in other templates)."""
    return _names(_ENV.parse(text))


def _names(tree: nodes.Template) -> frozenset[str] | None:
    if any(tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport))):
        return None
    return frozenset(meta.find_undeclared_variables(tree))


class Query:
    """A query, URL or parameter template compiled once, rendered once per period.

    A template of text and `{{ name }}` only (most queries, DetectK's) renders by joining its
    pieces: the text Jinja's render gives (`str` of each value), under the same output budget
    (the same charge, `render_budget.size_of`, and over it, or with a name missing, Jinja
    renders it and raises the same error), without a sandboxed render per period. Any other
    template renders with Jinja."""

    def __init__(self, text: str) -> None:
        self.template = compile_template(text)
        tree = _ENV.parse(text)
        self.names = _names(tree)  # what `Window.template_vars` needs to compute
        self._pieces = _plain_pieces(tree)

    def render(self, variables: Mapping[str, Any]) -> str:
        if self._pieces is not None:
            try:
                parts = [variables[p] if name else p for name, p in self._pieces]
            except KeyError:
                return self.template.render(**variables)  # StrictUndefined's error
            if sum(rb.size_of(p, rb.MAX_OUTPUT) for p in parts) <= rb.MAX_OUTPUT:
                return "".join(map(str, parts))
        return self.template.render(**variables)


@functools.lru_cache(maxsize=65536)
def compile_query(text: str) -> Query:
    """`Query` of `text`; raises as `compile_template` does."""
    return Query(text)


def _plain_pieces(tree: nodes.Template) -> tuple[tuple[bool, str], ...] | None:
    """(is a variable, text or name) of a template of text and `{{ name }}` only; None: any
    other template."""
    pieces: list[tuple[bool, str]] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                pieces.append((False, child.data))
            elif isinstance(child, nodes.Name) and child.ctx == "load":
                pieces.append((True, child.name))
            else:
                return None
    return tuple(pieces)


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
    except RenderBudgetExceeded as exc:
        return str(exc)
    except SecurityError as exc:
        return f"template does something templates may not: {exc}"
    except jinja2.UndefinedError as exc:
        names = ", ".join(sorted(sample or {}))
        return f"template uses an unknown variable: {exc.message} (available: {names})"
    except Exception as exc:
        return f"template fails to render with sample values: {type(exc).__name__}: {exc}"
    return None

"""Read YAML into plain Python values while remembering where every key stood.

ruamel's round-trip loader keeps line numbers; we copy the document into
plain dicts/lists (so pydantic and the rest of the daemon never see ruamel
types) and keep a side table `path -> line` for error messages. `${VAR}` and
`${VAR:-default}` are substituted in every string scalar on the way.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from detectkd.errors import ConfigIssue

Path_ = tuple[str | int, ...]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Document:
    """A parsed YAML file: plain data plus the line of every key path (1-based)."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)
    env_keys: set[Path_] = field(default_factory=set)

    def line_of(self, path: Path_) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return None

    def issue(self, path: Path_, message: str) -> ConfigIssue:
        return ConfigIssue(self.file, self.line_of(path), dotted(path), message)


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def substitute_env(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace `${VAR}` / `${VAR:-default}`; return the text and the missing names."""
    missing: list[str] = []

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            missing.append(name)
            return ""
        return value

    return _ENV.sub(repl, text), missing


def load_yaml(path: Path, env: Mapping[str, str] | None = None) -> Document:
    """Parse one file. Syntax errors become issues with the file and line."""
    env = os.environ if env is None else env
    doc = Document(file=str(path), data=None)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        doc.issues.append(ConfigIssue(str(path), None, "", f"cannot read file: {exc.strerror}"))
        return doc
    return parse_yaml_text(text, str(path), env)


def parse_yaml_text(text: str, file: str, env: Mapping[str, str]) -> Document:
    doc = Document(file=file, data=None)
    yaml = YAML(typ="rt")
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        last_line = max(1, len(text.splitlines()))
        line = min(mark.line + 1, last_line) if mark is not None else None
        message = f"YAML syntax error: {exc.problem or exc.context or 'invalid YAML'}"
        if exc.problem and exc.context and exc.context_mark is not None:
            message += f" ({exc.context}, opened on line {exc.context_mark.line + 1})"
        doc.issues.append(ConfigIssue(file, line, "", message))
        return doc
    except YAMLError as exc:
        doc.issues.append(ConfigIssue(file, None, "", f"YAML error: {exc}"))
        return doc
    doc.lines[()] = 1
    doc.data = _plain(raw, (), doc, env)
    return doc


def _plain(node: Any, path: Path_, doc: Document, env: Mapping[str, str]) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            kpath = (*path, str(key))
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                doc.lines[kpath] = node.lc.key(key)[0] + 1
            out[str(key)] = _plain(value, kpath, doc, env)
        return out
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, value in enumerate(node):
            ipath = (*path, index)
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                doc.lines[ipath] = node.lc.item(index)[0] + 1
            items.append(_plain(value, ipath, doc, env))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        text, missing = substitute_env(str(node), env)
        if text != str(node):
            doc.env_keys.add(path)
        for name in missing:
            doc.issues.append(
                doc.issue(path, f"environment variable ${{{name}}} is not set (and has no default)")
            )
        return text
    return node

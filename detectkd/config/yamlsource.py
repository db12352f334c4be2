"""Read YAML into plain Python values while remembering where every key stood.

ruamel's round-trip loader keeps line numbers; we copy the document into
plain dicts/lists (so pydantic and the rest of the daemon never see ruamel
types) and keep a side table `path -> line` for error messages. `${VAR}` and
`${VAR:-default}` are substituted in every string scalar on the way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from detectkd.errors import ConfigIssue

Path_ = tuple[str | int, ...]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class YamlLimits:
    max_bytes: int = 1_048_576  # a file larger than this is not parsed
    max_values: int = 100_000  # values after alias expansion


_LIMITS = [YamlLimits()]


def set_limits(limits: YamlLimits) -> None:
    """From the daemon's settings (`config_max_bytes`, `config_max_values`)."""
    _LIMITS[0] = limits


class _TooBig(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


@dataclass
class Document:
    """A parsed YAML file: plain data plus the line of every key path (1-based)."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)

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
    limit = _LIMITS[0].max_bytes
    try:
        size = path.stat().st_size
        if size > limit:
            message = f"file is {size:,} bytes, above the limit of {limit:,} (config_max_bytes)"
            doc.issues.append(ConfigIssue(str(path), None, "", message))
            return doc
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        doc.issues.append(ConfigIssue(str(path), None, "", f"cannot read file: {exc.strerror}"))
        return doc
    return parse_yaml_text(text, str(path), env)


def parse_yaml_text(text: str, file: str, env: Mapping[str, str]) -> Document:
    doc = Document(file=file, data=None)
    # The safe composer runs on libyaml (ruamel.yaml.clib) when it is installed and
    # keeps every node's position: about 5x faster than the round-trip loader.
    yaml = YAML(typ="safe", pure=False)
    try:
        root = yaml.compose(text)
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
    if root is not None:
        walker = _Walker(doc, env, yaml.constructor, _LIMITS[0].max_values)
        try:
            doc.data = walker.value(root, ())
        except _TooBig as big:
            doc.data, doc.lines = None, {(): 1}
            why = f"YAML expands to more than {walker.limit:,} values (aliases repeating aliases?); "
            doc.issues.append(ConfigIssue(file, big.line, "", why + "limit: config_max_values"))
    return doc


class _Walker:
    """Node tree -> plain data, recording lines, substituting env, rejecting duplicate keys."""

    def __init__(self, doc: Document, env: Mapping[str, str], constructor: Any, limit: int) -> None:
        self.doc = doc
        self.env = env
        self.constructor = constructor
        self.limit = limit
        self.left = limit  # values still allowed: aliases re-walk their node every time

    def value(self, node: Node, path: Path_) -> Any:
        self.left -= 1
        if self.left < 0:
            raise _TooBig(node.start_mark.line + 1)
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            out: list[Any] = []
            for index, item in enumerate(node.value):
                ipath = (*path, index)
                self.doc.lines[ipath] = item.start_mark.line + 1
                out.append(self.value(item, ipath))
            return out
        return self.scalar(node, path)

    def mapping(self, node: MappingNode, path: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for src in sources:
                    if isinstance(src, MappingNode):
                        for k, v in self.mapping(src, path).items():
                            merged.setdefault(k, v)
                continue
            key = str(self.constructor.construct_object(key_node, deep=True))
            kpath = (*path, key)
            line = key_node.start_mark.line + 1
            if key in out:
                first = self.doc.lines.get(kpath)
                self.doc.issues.append(
                    ConfigIssue(self.doc.file, line, dotted(kpath), f"duplicate key (first on line {first})")
                )
                continue
            self.doc.lines[kpath] = line
            out[key] = self.value(value_node, kpath)
        for k, v in merged.items():
            out.setdefault(k, v)
        return out

    def scalar(self, node: Node, path: Path_) -> Any:
        if node.tag == "tag:yaml.org,2002:timestamp":
            raw: Any = node.value  # keep `start_time: 2026-01-01 00:00` as the text it is
        else:
            raw = self.constructor.construct_object(node, deep=True)
        if isinstance(raw, str):
            text, missing = substitute_env(raw, self.env)
            for name in missing:
                self.doc.issues.append(
                    self.doc.issue(path, f"environment variable ${{{name}}} is not set (and has no default)")
                )
            return text
        return raw

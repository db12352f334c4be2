"""Label matchers of silences, Alertmanager style: `metric=orders`, `region=~eu-.*`,
`host!=db1`, `source!~test.*`.

A regex is the user's: it is compiled once, by RE2 (google-re2), whose matching time is
linear in the input. Python's `re` backtracks: `metric=~((.*)*)*z` against a 13-character
metric name held the GIL 5 s, and every character more tripled it. A regex matches the
whole value, as in Alertmanager (`eu-.*` is `^(?:eu-.*)$`). What RE2 does not accept
(backreferences, lookarounds, a program over its memory budget) is refused when the
matcher is made, with RE2's reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import re2

MAX_VALUE_BYTES = 1024  # a matcher's value (a regex included)
MAX_NAME = 128

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the reason goes into the error, not to stderr
_OPTIONS.never_capture = True  # groups are never read: a smaller, faster program
# RE2's own anchored Match: the wrapper's `fullmatch` builds a match object and maps byte
# offsets back to characters, 12 us a call where this is 2 us (Python's `re`: 1 us).
_BOTH = getattr(getattr(re2, "_Anchor", None), "ANCHOR_BOTH", None)

# What a matcher sees: metric, tag (all of the metric's tags), source, series labels.
Labels = Mapping[str, str | tuple[str, ...]]


class SilenceError(ValueError):
    """A silence (or one of its matchers) that cannot be made: says what is wrong."""


def compile_whole(pattern: str) -> Callable[[str], bool]:
    """Whether a text matches `pattern` whole, compiled once by RE2. Raises SilenceError with
    RE2's reason."""
    try:
        rx = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise SilenceError(f"bad regex {pattern!r}: {reason}") from None
    raw = getattr(rx, "_regexp", None)
    if raw is None or _BOTH is None:  # another google-re2 layout: its (slower) public API
        return lambda text: rx.fullmatch(text) is not None

    def whole(text: str) -> bool:
        data = text.encode(errors="replace")
        return bool(raw.Match(_BOTH, data, 0, len(data))[0] != (-1, -1))

    return whole


@dataclass(frozen=True)
class Matcher:
    name: str  # metric, tag, source, or a series label
    op: str  # = != =~ !~
    value: str
    _rx: Callable[[str], bool] | None = field(default=None, init=False, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        if len(self.name) > MAX_NAME:
            raise SilenceError(f"a matcher's name is limited to {MAX_NAME} characters")
        if len(self.value.encode()) > MAX_VALUE_BYTES:
            limit = f"a matcher's value is limited to {MAX_VALUE_BYTES} bytes"
            raise SilenceError(f"{limit} ({self.name}{self.op}...)")
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_rx", compile_whole(self.value))
        elif self.op not in ("=", "!="):
            raise SilenceError(f"bad matcher operator {self.op!r}: use =, !=, =~ or !~")

    @staticmethod
    def parse(text: str) -> Matcher:
        m = _MATCHER.match(text)
        if m is None:
            shown = text if len(text) <= 80 else text[:80] + "..."
            use = "use name=value, name!=value, name=~regex, name!~regex"
            raise SilenceError(f"bad matcher {shown!r}: {use}")
        name, op, value = m.groups()
        return Matcher(name, op, value.strip("\"'"))

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"

    def matches(self, labels: Labels) -> bool:
        raw = labels.get(self.name, "")
        values = raw if isinstance(raw, tuple) else (raw,)
        if self.op == "=":
            return self.value in values
        if self.op == "!=":
            return self.value not in values
        whole = self._rx
        assert whole is not None  # compiled for =~ and !~ in __post_init__
        hit = any(whole(v) for v in values)
        return hit if self.op == "=~" else not hit

"""The budget of one template render: loop iterations, output, time and value sizes.

A metric file may come from an untrusted pull request (`detectkd validate` renders its
templates), so a template must not be able to hang the process or fill its memory. Every
render (queries, URLs, headers, messages, links) gets a `Budget`; the sandbox
(`detectkd.sandbox`) charges it from hooks in the compiled template: each `for` item, each
piece of output, each call, filter and intercepted operator. What a single step can build
is bounded by `MAX_VALUE` before it is built, so a step is cheap and the clock checked
between steps is enough. Exceeding the budget raises `RenderBudgetExceeded` ("template
render budget exceeded: ..."): a config error at load, a failed run (or the default
message text) at run time.

The limits are module constants (documented in docs/operations.md); tests lower them.
"""

from __future__ import annotations

import re
import time
from collections.abc import ItemsView, KeysView, Mapping, ValuesView
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.runtime import Undefined

MAX_LOOP_ITERATIONS = 100_000  # items of all `for` loops of one render, nested ones included
MAX_OUTPUT = 1_000_000  # characters written, at every level (macros, blocks, filter blocks)
MAX_SECONDS = 1.0  # wall clock of one render
MAX_VALUE = 1_000_000  # characters (or items) any one value may have
MAX_EXPONENT = 1_000
MAX_INT_BITS = 100_000  # an integer a `*` or `**` may make (about 30,000 digits)
MAX_SLOW_INPUT = 100_000  # characters a filter written in Python per character may take


class RenderBudgetExceeded(SecurityError):
    """A template went over its render budget (a SecurityError: the sandbox refused it)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"template render budget exceeded: {what}")


class Budget:
    """What one render has spent; shared by every context the render derives."""

    __slots__ = ("deadline", "iterations", "output")

    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_SECONDS
        self.iterations = 0
        self.output = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderBudgetExceeded(f"over {MAX_SECONDS:g} s of render time")

    def iteration(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_LOOP_ITERATIONS:
            raise RenderBudgetExceeded(
                f"{self.iterations:,} loop iterations (limit {MAX_LOOP_ITERATIONS:,} per render)"
            )
        self.tick()

    def write(self, value: Any) -> Any:
        """Charge `value` as output; returns it."""
        self.output += size_of(value, MAX_OUTPUT - self.output)
        if self.output > MAX_OUTPUT:
            raise RenderBudgetExceeded(
                f"over {MAX_OUTPUT:,} characters of output (limit {MAX_OUTPUT:,} per render)"
            )
        self.tick()
        return value


def refuse_large(size: int, what: str) -> None:
    if size > MAX_VALUE:
        raise RenderBudgetExceeded(f"{what} would make over {MAX_VALUE:,} characters or items")


def check_value(value: Any, what: str) -> Any:
    """`value`, if it is not over MAX_VALUE characters as text."""
    refuse_large(size_of(value, MAX_VALUE), what)
    return value


def size_of(value: Any, limit: int = MAX_VALUE, inner: bool = False) -> int:
    """An upper bound of `len(str(value))`, counted only until it passes `limit`.

    Inside containers strings count as their repr (up to 10 characters for an unprintable
    one). Shared references count every time they appear, as `str` would print them, so
    `[[s] * 1000] * 1000` is as large as what it prints.
    """
    if isinstance(value, str) and not inner:
        return len(value)
    total = 0
    stack = [value]
    while stack and total <= limit:
        v = stack.pop()
        if isinstance(v, str):
            n = len(v)
            total += 2 * n + 2 if v.isprintable() else 10 * n + 2  # as repr shows it
        elif isinstance(v, bytes | bytearray):
            total += 4 * len(v) + 3
        elif isinstance(v, range):
            digits = max(_scalar(v.start), _scalar(v.stop)) + 2
            total += 2 + len(v) * digits
        elif isinstance(v, Mapping):
            total += 2 + 4 * len(v)
            for key, item in v.items():
                stack.extend((key, item))
                if len(stack) > limit:
                    break
        elif isinstance(v, list | tuple | set | frozenset | KeysView | ValuesView | ItemsView):
            total += 2 + 2 * len(v)
            if total <= limit:
                stack.extend(v)
        else:
            total += _scalar(v)
    return total


def _scalar(v: Any) -> int:
    if isinstance(v, Undefined):
        return 0
    if isinstance(v, bool) or v is None:
        return 5
    if isinstance(v, int):
        return v.bit_length() // 3 + 2  # decimal digits <= bits * 0.302
    if isinstance(v, float):
        return 24
    return 100  # a datetime, a macro, a loop: short when printed


def check_int(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_VALUE:
        raise RenderBudgetExceeded(f"{what} with {value:,} (limit {MAX_VALUE:,})")


def check_args(args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> None:
    for a in (*args, *kwargs.values()):
        check_int(a, what)


def check_multiply(left: Any, right: Any) -> None:
    for seq, n in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(n, int):
            size = size_of(seq, MAX_VALUE, inner=not isinstance(seq, str))
            if size * n > MAX_VALUE or len(seq) * n > MAX_VALUE:
                made = f"{max(size, len(seq)) * n:,}"
                raise RenderBudgetExceeded(f"`*` would make {made} characters or items (limit {MAX_VALUE:,})")
    bits = left.bit_length() + right.bit_length() if isinstance(left, int) and isinstance(right, int) else 0
    if bits > MAX_INT_BITS:
        raise RenderBudgetExceeded(f"`*` would make an integer of over {MAX_INT_BITS:,} bits")


def check_power(left: Any, right: Any) -> None:
    if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
        raise RenderBudgetExceeded(f"exponent {right} is above {MAX_EXPONENT}")
    if isinstance(left, int) and isinstance(right, int) and left.bit_length() * right > MAX_INT_BITS:
        raise RenderBudgetExceeded(f"`**` would make an integer of over {MAX_INT_BITS:,} bits")


def check_add(left: Any, right: Any) -> None:
    if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        inner = not isinstance(left, str)
        refuse_large(size_of(left, MAX_VALUE, inner) + size_of(right, MAX_VALUE, inner), "`+`")


_DIRECTIVE = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.?)")


def check_percent(fmt: str, args: Any) -> None:
    """`fmt % args` (and the `format` filter): refused before it is built if it could be
    over MAX_VALUE characters (`'%1000000000d' % 1`, `'%(a)s' * 10**5 % {'a': s}`)."""
    mapping = args if isinstance(args, Mapping) else None
    seq = () if mapping is not None else (args if isinstance(args, tuple) else (args,))
    ints = [abs(a) for a in seq if isinstance(a, int)]
    total = len(fmt) + sum(size_of(a, MAX_VALUE, inner=True) for a in seq)
    for m in _DIRECTIVE.finditer(fmt):
        key, width, precision, _ = m.groups()
        for number in (width, precision):
            if number == "*":
                total += max(ints, default=0)
            elif number:
                total += int(number) if len(number) < 12 else MAX_VALUE + 1
        if mapping is not None and key is not None and key in mapping:
            total += size_of(mapping[key], MAX_VALUE, inner=True)
        if total > MAX_VALUE:
            break
    refuse_large(total, "`%` formatting")


def check_format_spec(spec: str) -> None:
    """A `str.format` field: no width or precision over MAX_VALUE (`'{:>1000000000}'`)."""
    for number in re.findall(r"\d+", spec):
        if len(number) > 7 or int(number) > MAX_VALUE:
            raise RenderBudgetExceeded(f"format width {number} is above {MAX_VALUE:,}")

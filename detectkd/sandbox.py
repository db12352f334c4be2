"""Jinja2's immutable sandbox, with a render budget (`detectkd.render_budget`) charged from
the compiled template.

Where the budget is charged:
- every item of every `for` loop (the loop's iterable is wrapped when the template is
  compiled; a recursive loop's `loop(...)` is wrapped when called);
- every piece of output: template text, `{{ ... }}` (through `finalize`) and what filter
  blocks, call blocks and recursive loops write, in macros and blocks too;
- every call, filter and intercepted operator checks the clock, refuses an argument that
  would build an over-large value before building it (`'x'.ljust(10**9)`,
  `'%1000000000d' % 1`, `s|indent(999999)`, `[s] * 1000`), and refuses an over-large result;
- `~`, list, tuple and dict literals are checked for size, so nothing can grow by doubling.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from functools import update_wrapper
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import _PassArg, pass_context

from detectkd import render_budget as rb
from detectkd.render_budget import Budget, RenderBudgetExceeded, check_value, size_of


class BudgetContext(Context):
    """A render's context; contexts derived from it (blocks, loop calls) share its budget."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = Budget()

    def derived(self, locals: dict[str, Any] | None = None) -> Context:
        ctx = super().derived(locals)
        ctx.budget = self.budget  # type: ignore[attr-defined]
        return ctx


def _budget(context: Context) -> Budget:
    budget: Budget = context.budget  # type: ignore[attr-defined]
    return budget


class _Counted:
    """An iterable whose every item is charged to the budget (the length, if any, kept for
    `loop.length`)."""

    __slots__ = ("_budget", "_items", "_source")

    def __init__(self, source: Iterable[Any], budget: Budget) -> None:
        self._source = source
        self._items = iter(source)
        self._budget = budget

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        item = next(self._items)
        self._budget.iteration()
        return item

    def __len__(self) -> int:
        if isinstance(self._source, Sized):
            return len(self._source)
        raise TypeError("no length")


class _Codegen(CodeGenerator):
    """Jinja2's code generator with the budget's hooks written around some expressions
    (Jinja2 allows no new node types, so the loops' iterables are marked by identity)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop_iterables: set[int] = set()

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if id(node) not in self._loop_iterables:
            return super().visit(node, *args, **kwargs)
        self.write("environment.budget_loop(context, ")
        super().visit(node, *args, **kwargs)
        self.write(")")
        return None

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        self._loop_iterables.add(id(node.iter))
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.budget_concat(context, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._checked(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._checked(super().visit_Dict, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":
            super().visit_Tuple(node, frame)
        else:
            self._checked(super().visit_Tuple, node, frame)

    def _checked(self, visit: Callable[[Any, Frame], None], node: nodes.Expr, frame: Frame) -> None:
        self.write("environment.budget_value(context, ")
        visit(node, frame)
        self.write(")")

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return f"environment.budget_write(context, {super()._output_const_repr(group)})"

    def start_write(self, frame: Frame, node: nodes.Node | None = None) -> None:
        super().start_write(frame, node)
        self.write("environment.budget_write(context, ")

    def end_write(self, frame: Frame) -> None:
        self.write(")")
        super().end_write(frame)


class _BoundedFormatter(SandboxedFormatter):
    """`str.format` whose fields may not make the result over MAX_VALUE characters."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.total = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        rb.check_format_spec(format_spec)
        rb.refuse_large(self.total + size_of(value, rb.MAX_VALUE), "str.format")
        out = super().format_field(value, format_spec)
        self.total += len(out)
        rb.refuse_large(self.total, "str.format")
        return out


_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "to_bytes"})


def _check_method(owner: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Methods of strings and numbers that could build a huge value from small arguments."""
    if name in _WIDTH_METHODS:
        rb.check_args(args, kwargs, f"{name}()")
    elif name == "expandtabs" and isinstance(owner, str | bytes):
        tab = next(iter((*args, *kwargs.values())), 8)
        if isinstance(tab, int):
            tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
            rb.refuse_large(len(owner) + tabs * tab, name)
    elif name == "replace" and isinstance(owner, str) and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str) and isinstance(new, str):
            rb.refuse_large(len(owner) + (owner.count(old) if old else len(owner) + 1) * len(new), name)
    elif name == "join" and isinstance(owner, str | bytes) and args and isinstance(args[0], Sized):
        items = args[0]
        rb.refuse_large(size_of(items, rb.MAX_VALUE, inner=True) + len(items) * len(owner), name)
    elif name == "strftime" and args and isinstance(args[0], str):
        rb.refuse_large(len(args[0]) * 32, name)  # `%c` is 24 characters
    elif name == "translate" and isinstance(owner, str) and args and isinstance(args[0], Mapping):
        longest = max((size_of(v) for v in args[0].values()), default=0)
        rb.refuse_large(len(owner) * max(longest, 1), name)


class Sandbox(ImmutableSandboxedEnvironment):
    """The environment of every detectkd template: no globals but `range`, `*`, `**`, `+`
    and `%` intercepted, every render on a budget."""

    intercepted_binops = frozenset(["*", "**", "+", "%"])
    context_class = BudgetContext
    code_generator_class = _Codegen

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        self.globals = {"range": self.globals["range"]}  # no cycler, joiner, lipsum, namespace, dict
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}

    def add_filter(self, name: str, func: Callable[..., Any]) -> None:
        self.filters[name] = _guard_filter(name, func)

    # -- hooks the compiled template calls (see _Codegen) --

    def budget_loop(self, context: Context, iterable: Any) -> Any:
        if isinstance(iterable, Undefined):
            return iterable  # iterates as Undefined does (an error, or nothing)
        return _Counted(iterable, _budget(context))

    def budget_write(self, context: Context, value: Any) -> Any:
        return _budget(context).write(value)

    def budget_value(self, context: Context, value: Any) -> Any:
        _budget(context).tick()
        return check_value(value, "a literal")

    def budget_concat(self, context: Context, parts: tuple[Any, ...]) -> str:
        _budget(context).tick()
        rb.refuse_large(sum(size_of(p, rb.MAX_VALUE) for p in parts), "`~`")
        return "".join(map(str, parts))

    # -- the sandbox's own interception points --

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _budget(context).tick()
        if operator == "*":
            rb.check_multiply(left, right)
        elif operator == "**":
            rb.check_power(left, right)
        elif operator == "+":
            rb.check_add(left, right)
        elif operator == "%" and isinstance(left, str):
            rb.check_percent(left, right)
        return check_value(super().call_binop(context, operator, left, right), f"`{operator}`")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _budget(__context).tick()
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's `loop(children)`
            args = (__self.budget_loop(__context, args[0]), *args[1:])
        elif isinstance(__obj, types.BuiltinMethodType | types.MethodWrapperType):
            if __obj.__name__ == "join" and args and not isinstance(args[0], Sized | Undefined):
                args = (list(args[0]), *args[1:])  # a generator's items counted like a list's
            _check_method(getattr(__obj, "__self__", None), __obj.__name__, args, kwargs)
        return check_value(super().call(__context, __obj, *args, **kwargs), "a call")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if super().wrap_str_format(value) is None:
            return None
        owner: str = value.__self__
        is_map = value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                return str(_BoundedFormatter(self).vformat(owner, (), args[0]))
            return str(_BoundedFormatter(self).vformat(owner, args, kwargs))

        return update_wrapper(bounded, value)


@pass_context
def _finalize(context: Context, value: Any) -> Any:
    return _budget(context).write(value)


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` as a filter on the budget: clock checked, arguments that would build a huge
    value refused before, an over-large result refused after."""
    pass_arg = _PassArg.from_obj(func)
    pre = _PRECHECKS.get(name)

    @pass_context
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        _budget(context).tick()
        if pre is not None:
            value = pre(value, args, kwargs)
        if pass_arg is _PassArg.context:
            result = func(context, value, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg is _PassArg.environment:
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        return check_value(result, f"the {name} filter")

    return update_wrapper(guarded, func, assigned=("__name__", "__qualname__", "__doc__"), updated=())


Check = Callable[[Any, tuple[Any, ...], dict[str, Any]], Any]  # returns the value to filter


def _ints(what: str) -> Check:
    def check(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        rb.check_args(args, kwargs, what)
        return value

    return check


def _per_line(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """indent: each line gets the indent (a width or a string)."""
    width = next(iter((*args, *kwargs.values())), 4)
    n = size_of(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    text = str(value) if isinstance(value, str) else ""
    rb.refuse_large(len(text) + (text.count("\n") + 1) * n, "the indent filter")
    return value


def _join(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The items (a generator made a list first: `range(...)|map(...)|join(s)`) and the
    separator between each two."""
    if not isinstance(value, Sized) and isinstance(value, Iterable):
        value = list(value)
    sep = args[0] if args else kwargs.get("d", "")
    items = value if isinstance(value, Sized) else ()
    total = size_of(value, rb.MAX_VALUE, inner=True) + len(items) * size_of(sep)
    rb.refuse_large(total, "the join filter")
    return value


def _replace(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if isinstance(value, str) and len(args) >= 2:
        _check_method(value, "replace", (str(args[0]), str(args[1])), {})
    return value


def _format(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    rb.check_percent(str(value), kwargs or args)
    return value


def _sum(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    start = args[1] if len(args) > 1 else kwargs.get("start", 0)
    if not isinstance(start, int | float):
        raise RenderBudgetExceeded("the sum filter adds numbers only (a start of a list or string copies)")
    return value


def _slow(what: str) -> Check:
    """Filters that walk their input in Python: bounded input, and per-line additions."""

    def check(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        text = value if isinstance(value, str) else ""
        if len(text) > rb.MAX_SLOW_INPUT:
            raise RenderBudgetExceeded(f"the {what} filter on over {rb.MAX_SLOW_INPUT:,} characters")
        extra = sum(size_of(a) for a in (*args, *kwargs.values()) if isinstance(a, str))
        rb.refuse_large(len(text) * (1 + extra), f"the {what} filter")
        rb.check_args(args, kwargs, f"the {what} filter")
        return value

    return check


def _tojson(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    indent = args[0] if args else kwargs.get("indent")
    width = size_of(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0
    rb.refuse_large(size_of(value, rb.MAX_VALUE, inner=True) * (1 + width), "the tojson filter")
    return value


_PRECHECKS: dict[str, Check] = {
    "batch": _ints("the batch filter"),
    "slice": _ints("the slice filter"),
    "center": _ints("the center filter"),
    "truncate": _ints("the truncate filter"),
    "indent": _per_line,
    "join": _join,
    "replace": _replace,
    "format": _format,
    "sum": _sum,
    "wordwrap": _slow("wordwrap"),
    "urlize": _slow("urlize"),
    "tojson": _tojson,
}

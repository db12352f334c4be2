"""`detectkd backtest --assert`: promises a config makes about labelled history, and whether
a backtest keeps them.

An assertion list is `name op number`, comma-separated (`recall>=0.9,false_alarms_per_week<=2`),
ops `>=`, `<=`, `>`, `<`, `==`. The figures come from a backtest's counts (`Figures`); the
label figures keep the meaning of `detectkd.alerting.feedback.score`: a labelled incident is
caught when the config flags any period of its span, a labelled false alarm is raised when it
does. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

WEEK_S = 7 * 86400

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_ASSERTION = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|==|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


class AssertionSyntaxError(ValueError):
    """A malformed assertion list; the message names the bad part."""


@dataclass(frozen=True)
class Figures:
    """What one backtest (or a sum of several) measured against its labels."""

    incidents: int = 0  # incident labels in the range
    caught: int = 0  # of them, flagged by the config
    false_alarm_labels: int = 0  # false_alarm labels in the range
    raised: int = 0  # of them, still flagged by the config
    alerts: int = 0  # FIRING notifications that would have been sent (first of an episode)
    seconds: float = 0.0  # the replayed range

    def __add__(self, other: Figures) -> Figures:
        """Counts add up; the range is the same replayed range for every metric, not a sum
        (so a rate over several metrics is the team's rate over that range)."""
        return Figures(
            self.incidents + other.incidents,
            self.caught + other.caught,
            self.false_alarm_labels + other.false_alarm_labels,
            self.raised + other.raised,
            self.alerts + other.alerts,
            max(self.seconds, other.seconds),
        )


class Undefined(Exception):
    """A figure with nothing to measure (recall without incident labels); says why."""


def _ratio(num: int, den: int, why: str) -> float:
    if den == 0:
        raise Undefined(why)
    return num / den


def _weeks(f: Figures) -> float:
    if f.seconds <= 0:
        raise Undefined("the replayed range is empty")
    return f.seconds / WEEK_S


METRICS: dict[str, Callable[[Figures], float]] = {
    "recall": lambda f: _ratio(f.caught, f.incidents, "no incident labels in the range"),
    "precision": lambda f: _ratio(
        f.caught, f.caught + f.raised, "no labelled incident or false alarm is flagged by the config"
    ),
    "incidents": lambda f: f.incidents,
    "incidents_caught": lambda f: f.caught,
    "incidents_missed": lambda f: f.incidents - f.caught,
    "false_alarms": lambda f: f.raised,
    "false_alarms_per_week": lambda f: f.raised / _weeks(f),
    "alerts": lambda f: f.alerts,
    "alerts_per_week": lambda f: f.alerts / _weeks(f),
}


# What a figure was made of, printed beside it.
DETAIL: dict[str, Callable[[Figures], str]] = {
    "recall": lambda f: f"{f.caught} of {f.incidents} labelled incidents caught",
    "precision": lambda f: f"{f.caught} incidents of {f.caught + f.raised} labels flagged",
    "false_alarms_per_week": lambda f: f"{f.raised} in {f.seconds / WEEK_S:.3g} weeks",
    "alerts_per_week": lambda f: f"{f.alerts} in {f.seconds / WEEK_S:.3g} weeks",
}


@dataclass(frozen=True)
class Assertion:
    name: str
    op: str
    bound: float

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.bound:g}"


def parse_assertions(text: str) -> list[Assertion]:
    """`recall>=0.9,false_alarms_per_week<=2` as assertions. Raises AssertionSyntaxError naming
    the bad part."""
    parts = text.split(",")
    if not text.strip():
        raise AssertionSyntaxError("empty: write e.g. 'recall>=0.9,false_alarms_per_week<=2'")
    out: list[Assertion] = []
    for i, part in enumerate(parts, 1):
        m = _ASSERTION.match(part)
        if m is None:
            raise AssertionSyntaxError(
                f"part {i} {part.strip()!r}: expected NAME OP NUMBER, OP one of {' '.join(OPS)}"
                " (e.g. 'recall>=0.9')"
            )
        name, op, number = m.groups()
        if name not in METRICS:
            raise AssertionSyntaxError(
                f"part {i} {part.strip()!r}: unknown figure {name!r}; known: " + ", ".join(METRICS)
            )
        bound = float(number)
        if not math.isfinite(bound):
            raise AssertionSyntaxError(f"part {i} {part.strip()!r}: the number must be finite")
        out.append(Assertion(name, op, bound))
    return out


@dataclass(frozen=True)
class Verdict:
    scope: str  # a metric's name, or "overall"
    assertion: Assertion
    value: float | None  # None: undefined
    held: bool
    why: str = ""  # an undefined figure: why; else what it was made of

    def line(self) -> str:
        word = "held  " if self.held else "BROKEN"
        if self.value is None:
            return f"{word} {self.scope}: {self.assertion} (undefined: {self.why})"
        why = f": {self.why}" if self.why else ""
        return f"{word} {self.scope}: {self.assertion} (measured {self.value:.4g}{why})"


def evaluate(
    assertions: Sequence[Assertion], scope: str, figures: Figures, lenient: bool = False
) -> list[Verdict]:
    """Each assertion against `figures`. An undefined figure breaks the assertion, unless
    `lenient` (a metric of several whose own labels say nothing; the overall line judges it)."""
    out: list[Verdict] = []
    for a in assertions:
        try:
            value = METRICS[a.name](figures)
        except Undefined as exc:
            if not lenient:
                out.append(Verdict(scope, a, None, False, str(exc)))
            continue
        detail = DETAIL[a.name](figures) if a.name in DETAIL else ""
        out.append(Verdict(scope, a, value, OPS[a.op](value, a.bound), detail))
    return out


def judge(assertions: Sequence[Assertion], measured: Iterable[tuple[str, Figures]]) -> list[Verdict]:
    """Per metric, then (with several) overall on the summed counts. A figure undefined for one
    metric of several (recall of a metric nobody labelled) is not judged there; it breaks
    the promise only when it is undefined overall too."""
    rows = list(measured)
    if len(rows) == 1:
        return evaluate(assertions, rows[0][0], rows[0][1])
    verdicts = [v for name, f in rows for v in evaluate(assertions, name, f, lenient=True)]
    total = sum((f for _, f in rows), Figures())
    return verdicts + evaluate(assertions, "overall", total)

"""ERROR notifications for failing runs, grouped per source.

A metric whose runs fail `error_runs` times in a row (policy `on_error:
error`) is ERROR. When `min_metrics` metrics of one source (a profile, or
one connection) are ERROR at once, one SOURCE DOWN notification goes out
for the source instead of one ERROR per metric, and one SOURCE UP when a
metric of that source runs again. Notifications wait `group_wait` after the
first failure so that the other metrics of a source can fail too (they run
at their own offsets) before anyone is told, and no ERROR goes out while
`min_metrics` metrics of its source have failed at least once: that outage
is still forming (its members reach `error_runs` one interval apart).

Pure bookkeeping: `due` says what is owed, `sent` records that it was
stored in the outbox. Persisted as alert-state rows: (metric, `@error`) and
(`@source:<name>`, "").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from detectkd.alerting.alert import AlertStatus
from detectkd.alerting.state import SeriesState, Status

ERROR_SERIES = "@error"
SOURCE_PREFIX = "@source:"


@dataclass
class MetricHealth:
    source: str
    notify: bool  # on_error: error
    error_runs: int
    failures: int = 0  # failed runs in a row
    failing_since: int | None = None
    notified: int | None = None  # failing_since of the ERROR that was sent
    grouped: bool = False  # covered by its source's SOURCE DOWN
    error: str = ""

    def failing(self) -> bool:
        return self.failures >= self.error_runs

    def state(self) -> SeriesState:
        status = Status.FIRING if self.notified is not None else Status.OK
        return SeriesState(status, self.failures, self.failing_since, self.notified)


@dataclass
class SourceHealth:
    notified: int | None = None  # down_since of the SOURCE DOWN that was sent
    sent_at: int = 0  # when it was sent (0 after a restart: any success ends it)
    recovered: bool = False  # a metric of the source ran successfully since

    def state(self) -> SeriesState:
        status = Status.FIRING if self.notified is not None else Status.OK
        return SeriesState(status, 0, self.notified, self.notified)


@dataclass(frozen=True)
class HealthNotice:
    kind: Literal["error", "source_down"]
    status: AlertStatus
    subject: str  # the metric (error) or the source (source_down)
    since: int
    members: tuple[str, ...] = ()
    error: str = ""
    at: int = 0  # when it became due


@dataclass
class Outages:
    group_wait: float
    min_metrics: int
    metrics: dict[str, MetricHealth] = field(default_factory=dict)
    sources: dict[str, SourceHealth] = field(default_factory=dict)
    troubled: set[str] = field(default_factory=set)  # failing, notified or grouped metrics
    resent: dict[str, int] = field(default_factory=dict)  # "kind:subject": last sent to Alertmanager

    def track(self, metric: str, source: str, notify: bool, error_runs: int) -> MetricHealth:
        """Register (or update, on reload) a metric; keeps what it knew."""
        h = self.metrics.get(metric)
        if h is None:
            h = self.metrics[metric] = MetricHealth(source, notify, error_runs)
        h.source, h.notify, h.error_runs = source, notify, error_runs
        self.sources.setdefault(source, SourceHealth())
        return h

    def forget(self, metric: str) -> None:
        self.metrics.pop(metric, None)
        self.troubled.discard(metric)

    def restore(self, metric: str, st: SeriesState) -> None:
        h = self.metrics.get(metric)
        if h is not None:
            h.failures, h.failing_since, h.notified = st.streak, st.since, st.notified_since
            if h.failures or h.notified is not None:
                self.troubled.add(metric)

    def restore_source(self, source: str, st: SeriesState) -> None:
        self.sources.setdefault(source, SourceHealth()).notified = st.notified_since

    def observe(self, metric: str, ok: bool, now: int, error: str = "") -> bool:
        """Record a run's outcome. True when a notification may now be owed."""
        h = self.metrics.get(metric)
        if h is None:
            return False
        src = self.sources[h.source]
        if ok:
            if src.notified is not None and now > src.sent_at:
                src.recovered = True  # the source answers again
            troubled = metric in self.troubled
            h.failures, h.failing_since, h.error, h.grouped = 0, None, "", False
            if h.notified is None:
                self.troubled.discard(metric)
            return troubled or src.recovered
        if src.notified is not None:
            h.grouped = True  # joins its source's outage silently
        elif h.grouped:
            h.grouped, h.failing_since = False, now  # the source is back; this metric still fails
        h.failures += 1
        h.error = error
        if h.failing_since is None:
            h.failing_since = now
        self.troubled.add(metric)
        return True

    def due(self, now: int) -> list[HealthNotice]:
        """What is owed now (nothing is marked: call `sent` once it is in the outbox).

        Costs O(metrics in trouble), so it can run after every run and on a timer.
        """
        out: list[HealthNotice] = []
        troubled = sorted((name, self.metrics[name]) for name in self.troubled if name in self.metrics)
        by_source: dict[str, list[tuple[str, MetricHealth]]] = {}
        for name, h in troubled:
            by_source.setdefault(h.source, []).append((name, h))
        for source in sorted(set(by_source) | {k for k, v in self.sources.items() if v.notified is not None}):
            src = self.sources[source]
            members = by_source.get(source, [])
            if src.notified is None:
                # Members of an outage that just ended count again only once they fail anew.
                failing = [(name, h) for name, h in members if h.failing() and not h.grouped]
                first = min((h.failing_since or now for _, h in failing), default=now)
                if len(failing) >= self.min_metrics and now - first >= self.group_wait:
                    who = tuple(name for name, _ in failing)
                    out.append(
                        HealthNotice("source_down", "firing", source, first, who, failing[0][1].error, now)
                    )
            elif src.recovered or not any(h.failing() for _, h in members):
                out.append(HealthNotice("source_down", "resolved", source, src.notified, at=now))
        down = {n.subject for n in out if n.kind == "source_down" and n.status == "firing"}
        # An outage is forming where enough metrics of a source have failed at least once: the
        # first to reach `error_runs` waits for the others instead of alerting alone.
        forming = {
            source
            for source, members in by_source.items()
            if sum(1 for _, h in members if h.failures and not h.grouped) >= self.min_metrics
        }
        for name, h in troubled:
            grouped = h.grouped or h.source in down or h.source in forming
            if h.notified is None and h.failing() and h.notify and not grouped:
                since = h.failing_since if h.failing_since is not None else now
                if now - since >= self.group_wait and self.sources[h.source].notified is None:
                    out.append(HealthNotice("error", "firing", name, since, error=h.error))
            elif h.notified is not None and h.failures == 0:
                out.append(HealthNotice("error", "resolved", name, h.notified))
        return out

    def active(self) -> list[HealthNotice]:
        """The ERROR and SOURCE DOWN alerts that were sent and are not over (re-sent to
        Alertmanager while they last, `alerting.resend`)."""
        out = []
        for source, src in sorted(self.sources.items()):
            if src.notified is not None:
                members = tuple(
                    sorted(m for m, h in self.metrics.items() if h.source == source and h.failures)
                )
                out.append(HealthNotice("source_down", "firing", source, src.notified, members))
        for name in sorted(self.troubled):
            h = self.metrics.get(name)
            if h is not None and h.notified is not None:
                out.append(HealthNotice("error", "firing", name, h.notified, error=h.error))
        return out

    def sent(self, n: HealthNotice) -> None:
        if n.kind == "error":
            h = self.metrics.get(n.subject)
            if h is not None:
                h.notified = n.since if n.status == "firing" else None
                if h.notified is None and h.failures == 0 and not h.grouped:
                    self.troubled.discard(n.subject)
            return
        src = self.sources.setdefault(n.subject, SourceHealth())
        src.notified = n.since if n.status == "firing" else None
        src.sent_at, src.recovered = n.at, False
        for name in n.members:
            if name in self.metrics:
                self.metrics[name].grouped = True
        if n.status == "resolved":
            for name in list(self.troubled):
                h = self.metrics.get(name)
                if h is not None and h.source == n.subject and h.failures == 0:
                    h.grouped = False
                    if h.notified is None:
                        self.troubled.discard(name)

"""What the API and systemd's STATUS= show of the daemon: per metric, per source, one line."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from detectkd.alerting.alert import Alert
from detectkd.alerting.episodes import episodes
from detectkd.alerting.outage import Outages
from detectkd.alerting.silences import Labels, Silences, active_spans, series_labels
from detectkd.alerting.state import Status, decide
from detectkd.alerting.why import change
from detectkd.detectors.base import Result
from detectkd.redact import redact
from detectkd.runtime.judge import charted
from detectkd.runtime.status import MetricEntry, MetricState
from detectkd.runtime.watch import warming
from detectkd.runtime.where import where_lines_of

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from detectkd.config.models import Conditions
    from detectkd.config.settings import Settings
    from detectkd.runtime.history import HistoryLoader
    from detectkd.runtime.leader import Leadership
    from detectkd.runtime.metricset import MetricSet
    from detectkd.specs.loader import MetricSpec
    from detectkd.storage.base import StateStore, StoredPoint


COLUMNS = ("t", "value", "expected", "lower", "upper", "anomaly")  # of `series_data`


SERIES_POINT_BUDGET = 500_000  # periods x series one series request may read (30 d of 10 s: 259,200)


class RangeTooLong(ValueError):
    """A series request over more points than `SERIES_POINT_BUDGET` (an HTTP 400)."""


def _table(
    points: dict[str, list[StoredPoint]], found: dict[tuple[str, int], list[Result]], cond: Conditions
) -> dict[str, dict[str, list[Any]]]:
    out: dict[str, dict[str, list[Any]]] = {}
    for series, pts in sorted(points.items()):
        cols: dict[str, list[Any]] = {k: [] for k in (*COLUMNS, "anomalies")}
        for p in pts:
            results = found.get((series, p.period), [])
            verdict = decide(results, cond) if results else None
            r = charted(results, verdict.primary if verdict is not None else None)
            anomalous = verdict is not None and verdict.anomalous
            for key, v in zip(COLUMNS, (p.period, p.value, *_band(r), anomalous), strict=True):
                cols[key].append(v)
            if anomalous and verdict is not None and verdict.primary is not None:
                hit = verdict.primary
                why = {"t": p.period, "detector": hit.detector, "score": round(hit.score, 4)}
                cols["anomalies"].append(
                    why | {"direction": hit.direction, "change": change(p.value, hit.expected)}
                )
        out[series] = cols
    return out


def _band(r: Result | None) -> tuple[float | None, float | None, float | None]:
    return (r.expected, r.lower, r.upper) if r is not None else (None, None, None)


class DaemonView:
    """Read-only views of the daemon's metric set (a mixin of `Daemon`)."""

    metrics: MetricSet
    scheduler: AsyncIOScheduler
    outages: Outages
    silences: Silences
    config_errors: list[str]
    history: HistoryLoader
    settings: Settings
    leadership: Leadership | None
    store: StateStore

    def api_ha(self) -> dict[str, Any] | None:
        """`ha.enabled`: this replica's role in its shard's election (None without ha)."""
        lead = self.leadership
        if lead is None:
            return None
        return {"shard": lead.shard, "leader": lead.leader, "holder": lead.holder, "token": lead.token}

    def running_metrics(self) -> int:
        return len(self.metrics.slots)

    def status_line(self) -> str:
        """systemd's STATUS=: what `systemctl status detectkd` shows."""
        m = self.metrics
        states = [slot.runtime.status.state for slot in m.slots.values()]
        failing = states.count(MetricState.ERROR) + len(m.unbuilt)
        line = f"{len(m.slots)} metrics, {failing} failing, {states.count(MetricState.FIRING)} firing"
        if self.config_errors:
            line += f", {len(self.config_errors)} config errors"
        return line

    def series_labels(self, metric: str, series: str) -> Labels:
        slot = self.metrics.slots.get(metric)
        return series_labels(slot.labels if slot is not None else {"metric": metric}, series)

    def api_metrics(
        self, contains: str | None = None, tag: str | None = None, state: str | None = None
    ) -> list[MetricEntry]:
        """Every metric's entry, by name; only those whose name contains `contains`, that
        carry `tag`, and whose state is `state`, when given."""
        return [self.metric_entry(n) for n in self.metric_names(contains, tag, state)]

    def metric_names(
        self, contains: str | None = None, tag: str | None = None, state: str | None = None
    ) -> list[str]:
        """The names `api_metrics` lists, without building their entries (a page needs few)."""
        return [
            n
            for n in sorted(self.metrics.specs)
            if (contains is None or contains in n)
            and (tag is None or tag in self.metrics.specs[n].config.tags)
            and (state is None or self._state_of(n) == state)
        ]

    def state_counts(self) -> dict[str, int]:
        """How many metrics are in each state."""
        out: dict[str, int] = {}
        for name in self.metrics.specs:
            s = self._state_of(name)
            out[s] = out.get(s, 0) + 1
        return out

    def metric_entry(self, name: str) -> MetricEntry:
        slot = self.metrics.slots.get(name)
        if slot is None:
            spec = self.metrics.specs[name]
            entry = MetricEntry(
                name=name, state=MetricState.DISABLED.value, file=spec.file, tags=list(spec.config.tags)
            )
            unbuilt = self.metrics.unbuilt.get(name)
            if unbuilt is not None:  # enabled, but its runtime failed to build: retried
                entry["state"] = MetricState.ERROR.value
                entry["last_error"] = f"{name}: metric failed to start: {unbuilt[0]}"
            return entry
        rt = slot.runtime
        item = rt.api()
        job = self.scheduler.get_job(name) if self.scheduler.running else None
        next_run = getattr(job, "next_run_time", None) if job is not None else None
        item["next_run"] = next_run.isoformat() if next_run else None
        h = self.outages.metrics.get(name)
        if h is not None:
            item["source"] = h.source
            item["error_notified"] = h.notified is not None
        item["silenced_by"] = self._silenced_by(name, list(rt.states))
        if (loading := self.history.api(name, rt.grid.step)) is not None:
            item["history"], item["warming"] = loading, loading["note"]
            # A warm-up (its live runs wait, or have not run yet) or a failed batch: how far, why
            warm, before, note = loading["kind"] == "warm-up", item.get("not_judging"), loading["note"]
            if item.get("judging") is not True and (warm or loading["error"]):
                item["judging"] = False
                item["not_judging"] = note if warm or not before else f"{before}; {note}"
                job = self.history.jobs.get(name)
                if warm and job is not None and not job.failures:  # its runs wait: every series warms
                    w = warming(job.series if job.many else [""], note)
                    item["judging_series"], item["series_not_judging"] = w.counts(), dict(w.unjudged)
        item["shard"] = self.settings.shard
        item["tags"] = list(self.metrics.specs[name].config.tags)
        if rt.fresh.off is not None:  # late series' history not loaded (`runtime.freshseries`)
            item["late_series"] = rt.fresh.off
        if rt.shadows:
            item["shadow"] = rt.shadows.api()  # `shadow:` variants: firing series, alerts, last error
        return item

    def _state_of(self, name: str) -> str:
        slot = self.metrics.slots.get(name)
        if slot is not None:
            return slot.runtime.status.state.value
        return MetricState.ERROR.value if name in self.metrics.unbuilt else MetricState.DISABLED.value

    def _silenced_by(self, metric: str, series: list[str]) -> list[str]:
        now = time.time()
        ids: dict[str, None] = {}
        for s in series or [""]:
            ids.update(dict.fromkeys(self.silences.matching(self.series_labels(metric, s), now)))
        return sorted(ids)

    def api_sources(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for h in self.outages.metrics.values():
            entry = out.setdefault(h.source, {"metrics": 0, "failing": 0, "down_since": None})
            entry["metrics"] += 1
            entry["failing"] += h.failing()
        for source, src in self.outages.sources.items():
            if source in out and src.notified is not None:
                out[source]["down_since"] = datetime.fromtimestamp(src.notified, UTC).isoformat()
        return dict(sorted(out.items()))

    def metric_spec(self, name: str) -> MetricSpec | None:
        """The metric as loaded (enabled or not)."""
        return self.metrics.specs.get(name)

    def metric_config(self, name: str) -> dict[str, Any] | None:
        """The metric's config as loaded (environment substituted, secrets redacted)."""
        spec = self.metrics.specs.get(name)
        return redact(spec.config.model_dump(mode="json", exclude_none=True)) if spec is not None else None

    async def series_data(self, name: str, since: int, until: int) -> dict[str, dict[str, list[Any]]] | None:
        """Per series, the stored periods in [since, until): value, expected, band, anomaly
        (the stored detections combined by the metric's conditions, as a run decides), and
        `anomalies`: for each anomalous period the detector, score and direction that said
        so. None: no such metric. Raises `RangeTooLong` (before reading anything) when the
        range holds more than `SERIES_POINT_BUDGET` points; the table is built in a worker
        thread, off the event loop."""
        slot = self.metrics.slots.get(name)
        if slot is None:
            return None
        step = max(1.0, slot.spec.config.schedule.interval.total_seconds())
        series = max(1, len(slot.runtime.states))
        points = (until - since) / step * series
        if points > SERIES_POINT_BUDGET:
            most = int(SERIES_POINT_BUDGET / series * step)
            raise RangeTooLong(
                f"the range holds about {points:,.0f} points ({series} series); at most "
                f"{SERIES_POINT_BUDGET:,}: ask for {most:,} s or less"
            )
        store = await slot.runtime.data()
        stored = await store.read_points(name, None, since, until)
        found: dict[tuple[str, int], list[Result]] = {}
        for d in await store.read_detections(name, since, until):
            found.setdefault((d.series, d.period), []).append(d.result)
        return await asyncio.to_thread(_table, stored, found, slot.spec.conditions)

    async def alert_episodes(self, name: str, since: int, until: int) -> list[dict[str, Any]]:
        """The metric's alert episodes meeting [since, until), newest first: from the outbox
        (its rows are kept a week after sending) and the series open now."""
        slot = self.metrics.slots.get(name)
        rows = await self.store.outbox_history(name, since - 86400)
        open_now = []
        for series, st in (slot.runtime.states if slot is not None else {}).items():
            if st.status == Status.FIRING and st.since is not None:
                open_now.append((series, "anomaly", st.since))
            elif st.status == Status.NODATA and st.empty_since is not None:
                open_now.append((series, "nodata", st.empty_since))
        found = episodes(((Alert.from_json(r.payload), r.status) for r in rows), open_now)
        return [e.api() for e in found if e.started_at < until and (e.resolved_at or until) >= since]

    def silence_spans(self, name: str, since: int, until: int) -> list[dict[str, Any]]:
        """When silences matching the metric or one of its series were active in [since, until)."""
        slot = self.metrics.slots.get(name)
        if slot is None:
            return []
        labels = [self.series_labels(name, s) for s in (list(slot.runtime.states) or [""])]
        step = max(slot.runtime.interval.total_seconds(), (until - since) / 500)
        out = []
        for s in self.silences.items.values():
            if any(s.matches(lb) for lb in labels):
                out += [
                    {
                        "id": s.id,
                        "comment": s.comment,
                        "from": int(a),
                        "to": int(b),
                        "matchers": [str(m) for m in s.matchers],
                    }
                    for a, b in active_spans(s, since, until, step)
                ]
        return sorted(out, key=lambda x: x["from"])

    def alert_rows(self) -> list[dict[str, Any]]:
        """Series FIRING, PENDING or NO DATA across metrics, and failing metrics (ERROR),
        newest first: the web UI's alerts page."""
        rows = []
        for name, slot in self.metrics.slots.items():
            for series, st in slot.runtime.states.items():
                if st.status.value in ("firing", "pending", "nodata"):
                    since = st.empty_since if st.status.value == "nodata" else st.since
                    rows.append(
                        {
                            "metric": name,
                            "series": series,
                            "state": st.status.value,
                            "since": since,
                            "labels": series_labels({"metric": name}, series),
                            "where": where_lines_of(st),
                        }
                    )
        for name, h in self.outages.metrics.items():
            if h.failing():
                rows.append(
                    {
                        "metric": name,
                        "series": "",
                        "state": "error",
                        "since": h.failing_since,
                        "error": h.error,
                        "labels": {"metric": name},
                    }
                )
        return sorted(rows, key=lambda r: -(r["since"] or 0))

"""A metric's `completeness:` block: evidence that a period is complete before it is judged,
and the re-judging of periods that late rows changed (`detectkd.runtime.completeness`,
`detectkd.runtime.recheck`)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from detectkd.config.types import Duration, Frozen


class Completeness(Frozen):
    # A query on the metric's source (same templating as its query: period_start, period_finish,
    # ...): its first row's first column is a time (a watermark: complete once >= period_finish)
    # or any other value (complete when truthy; no row, NULL, 0, false: not yet).
    complete_when: str | None = None
    # Stability: the period's value read twice this far apart agrees within `tolerance`.
    settle: Duration | None = None
    tolerance: float = Field(default=0.01, ge=0)  # relative: |a - b| <= tolerance x max(|a|, |b|)
    # A period still not complete this long after it became due is judged anyway, marked
    # "judged incomplete" (status and log). Default: one interval.
    max_wait: Duration | None = None
    poll: Duration = timedelta(minutes=1)  # how often `complete_when` is asked again while waiting
    # Each run re-reads the periods already judged this far back; a changed value re-judges
    # its period (a FIRING that no longer holds is retracted, a late anomaly alerts, marked).
    recheck: Duration | None = None

    @model_validator(mode="after")
    def _something(self) -> Completeness:
        if self.complete_when is None and self.settle is None and self.recheck is None:
            raise ValueError("`completeness` needs `complete_when`, `settle` or `recheck`")
        for key in ("settle", "poll", "recheck", "max_wait"):
            value = getattr(self, key)
            if value is not None and value.total_seconds() < 1:
                raise ValueError(f"`{key}` must be at least 1 second")
        return self

"""`auto`'s parameters (the detector: `detectors.auto`; what each step does: its docstring
and docs/detectors.md)."""

from __future__ import annotations

from pydantic import Field, model_validator

from detectkd.config.types import Frozen


class Params(Frozen):
    window: int = Field(default=400, ge=20)  # points: level baseline and residual spread
    # Where the level window spans at most half a day (steps up to 108 s at `window` 400, the values
    # of a block's window too: most of them missing, it keeps the median), the level
    # baseline follows its window's slope (a robust line: the medians of the window's two halves
    # against their median times, drawn from the block's start) instead of standing at its median,
    # and is judged by its errors as a forecast (the line of the window's older values over its
    # newer ones): a gauge on the steep part of a daily wave is not read as lagging it (`autofit`).
    # False: the window's median everywhere.
    trend: bool = True
    # The baseline that judges is the one whose newest `fit_window` residuals deviate least from
    # its window's centre (0, or `window` and more: the whole window's; a baseline with fewer
    # than half of min(`min_samples`, `fit_window`) finite ones there is not picked).
    fit_window: int = Field(default=200, ge=0)
    # A seasonal baseline at the recent offset (`anchor`): its centre is the median of the newest
    # this many residuals before a block, and its spread and fit are its errors as such forecasts,
    # block by block through the window (0, or more than `window` less `refresh`: the window's
    # centre, as before).
    anchor: int = Field(default=0, ge=0)
    # A longer seasonal cycle (the week) judges where its fit is within this factor of a shorter
    # one's (the day's): it holds the shorter one's shape and foresees its own steps (a weekend's
    # first hours), which the shorter one's better recent fit does not (1: the best fit, as before).
    long_margin: float = Field(default=1.0, ge=1.0)
    # ... only where its expectation differs from the shorter one's by more than this many of the
    # shorter one's spreads (0: wherever it fits about as well).
    long_step: float = Field(default=0.0, ge=0.0)
    # The best fit measured as a forecast (`fit_ahead`): the newest `fit_window` residuals about the
    # centre of the window's points before them, not of the whole window (a level on a slope predicts
    # its next points badly even where it fits its own window well). False: about the window's
    # centre, as before; nothing where `fit_window` is 0 or `window` or more.
    fit_ahead: bool = False
    cycles: int = Field(default=3, ge=2)  # previous days / weeks in a seasonal baseline
    seasonal: bool = True
    reference: int = Field(default=2000, ge=50)  # judged points whose |z| define "unusual"
    quantile: float = Field(default=0.995, gt=0.5, lt=1.0)
    threshold: float = Field(default=1.0, gt=0)
    min_z: float = Field(default=4.0, ge=0)
    # One point alone alarms only this far beyond the line; otherwise it takes two in a row.
    spike: float = Field(default=3.0, ge=1.0)
    # In a run of points beyond the line, the surprise halves every this many points after the
    # first: a sustained change is news at its start (0: no fading).
    fade: float = Field(default=6.0, ge=0)
    min_samples: int = Field(default=50, ge=10)
    # Cycles longer than this many points of history are left out (memory: 12 bytes a point).
    max_history: int = Field(default=8000, ge=100)
    # Baselines are refreshed every this many periods, on the absolute interval grid.
    refresh: int = Field(default=12, ge=1)
    # Judge non-negative integer series (counts) on the square-root scale.
    counts: bool = True
    # After a restart, the recent |z| are recomputed for at most this many stored points.
    rebuild: int = Field(default=2000, ge=0)
    # After a run of alarms, a new alarm needs a surprise greater than the run's peak for this
    # many judged points (a rest period): one change, one page (0: off).
    rest: int = Field(default=100, ge=0)
    # In the rest period a pair (persistence: not a spike, a range break or a sustained median)
    # on the last alarm's side alarms anew only beyond this many times the run's peak: an episode
    # that grows by a few percent is the same episode (1: any greater; 1.5 chosen
    # leave-one-category-out on NAB).
    rest_margin: float = Field(default=1.5, ge=1.0)
    # A range break rests, and is held while resting, at its own surprise, not at the spike level
    # it alarms at (which every break shares, so that a greater break later was held as no greater).
    rest_breaks: bool = False
    # Range break: a value beyond the range of the values within this many intervals before its
    # block (at least a week and a day, at most what auto reads) alarms alone, like a spike (0: off).
    range_window: int = Field(default=4000, ge=0)
    # Values in the range window (not intervals: missing ones do not count) before a range break counts.
    range_min: int = Field(default=200, ge=1)
    # A range break is beyond the range by this share of the range's width ...
    range_tolerance: float = Field(default=0.05, ge=0)
    # ... and by this many spreads of the judging baseline ...
    range_spreads: float = Field(default=1.0, ge=0)
    # ... and its |z| is at least this share of min_z (not of the line, which a recent step
    # inflates).
    range_gate: float = Field(default=0.5, ge=0)
    # Extreme-value gate (SPOT): a run's first alarm (not a range break) needs |z| beyond the line
    # the reference |z| cross with this probability per point, a GPD over their `tail` quantile.
    risk: float = Field(default=0.0, ge=0, lt=1)
    tail: float = Field(default=0.98, gt=0.5, lt=1.0)  # the quantile of |z| whose excesses the GPD fits
    # Extreme-value gate for lone spikes only (`autospikes`; 0: off): a spike that would alarm alone
    # (not a range break, not a pair) also needs |z| beyond the line the reference |z| cross with this
    # probability per point, a GPD over their `tail` quantile.
    spike_risk: float = Field(default=0.0, ge=0, lt=1)
    # A lone spike (as for `spike_risk`) matched on one of the `cycles` previous days, within this
    # many minutes of the same time of day, by a value at least half as far from its expected value
    # is routine (a daily job whose time jitters): held below the line (`autospikes`; 0: off).
    spike_jitter: int = Field(default=30, ge=0, le=360)
    # A pair that would start a run of alarms (not a spike, a range break, a stuck run or a sustained
    # median) is held below the line where the ring's |z| a whole number of days back (1 to `cycles`,
    # as far as the ring reaches), within 30 minutes of that, reached this share of its |z|: the
    # series' residuals run that large at that hour (`autopairs`; 0: off; 1.0 chosen
    # leave-one-category-out on NAB, with the synthetic family's clause).
    pair_hour: float = Field(default=1.0, ge=0, le=2)
    # Two in a row that would start a run of alarms (persistence) also need the mean of the last
    # this many |z| beyond the `quantile` of every such mean in the reference (`autopairs`; 0: off).
    pair_mean: int = Field(default=3, ge=0, le=50)
    # Declustered reference: a point of a run beyond the line whose run already counts this many alarms
    # (held ones too) enters the reference at most at the line, so an episode raises the line by its first
    # points, not by its length (extreme-value declustering by runs; the line is the reference's 10th
    # largest |z|: below 10, one episode cannot set it alone). 0: off, every |z| as judged.
    decluster: int = Field(default=0, ge=0)
    # Sustained deviation: the median of the last this many |z| alarms alone when it is beyond
    # the largest such median of the `reference` points before by `sustain_margin`, and beyond
    # min_z / 2 and their one-in-ten |z|: the typical deviation jumped. 0: off (the default:
    # 24 catches more of NAB's windows but pages a little more and costs memory and CPU).
    sustain: int = Field(default=0, ge=0)
    sustain_margin: float = Field(default=1.1, ge=1.0)  # how far beyond the largest recent median
    # Counts (see `counts`) judged by a negative binomial whose dispersion comes from the
    # judging baseline's residuals: a burst at a busy hour is less news, a drop more (`autocounts`).
    dispersion: bool = True
    # With `dispersion`: a count's spread is at least this share of Poisson's (0 -> 3 errors a
    # minute is not huge), as far as its level window varies like a random count.
    poisson_floor: float = Field(default=1.0, ge=0, le=1)
    # Stuck value (`autostuck`): a run of at least this many equal values alarms, once, when it
    # outlasts `stuck_margin` x the longest run among the values `auto` reads before it (their
    # first run left out), with a week and a day of them before the run (none where `auto` reads
    # less: one-minute data, unless `max_history` takes the weekly cycle in). 0: off (the default).
    stuck: int = Field(default=0, ge=0)
    stuck_margin: float = Field(default=1.3, ge=1.0)  # how far beyond the longest recent run
    # Line and range agree (`autonovel`): a point beyond the line and beyond the range of the
    # series' last this many values (a count: by more than one) alarms alone, like a range
    # break. 0: off (the default).
    line_range: int = Field(default=0, ge=0)
    # `line_range`'s new extreme must pass the range by more than this share of its width (a count:
    # and by more than one); needs `line_range`.
    line_margin: float = Field(default=0.0, ge=0, le=1)
    # `line_range`'s margin test made on the logarithms where the window's values and the point are
    # above 0 and the point is not a count's: a multiplicative gauge's records judged where its tail
    # is not long; needs `line_margin` (the logarithm keeps every order).
    line_log: bool = False
    # Long memory (`autolong`): the line is also at least the largest |z| of about the last this
    # many days (a decayed histogram of |z|, its weights halving every this many days of judged
    # points; 512 bytes a series): a burst no higher than one within that time is not news. 0: off.
    long_days: float = Field(default=0.0, ge=0)
    # ... the level the weighted |z| above it reach (0.5: the largest; 4: the fourth largest, or
    # two pairs, of about `long_days`; more: a rarer-than-usual level, not the record).
    long_count: float = Field(default=0.5, gt=0)
    # Weekly profile (`autoweekly`, on by default since 2026-12-07): where the weekly cycle is out of
    # reach (steps of 1-3 minutes unless `max_history` takes it in; elsewhere it does nothing), the
    # daily baseline D becomes D + P, P an hourly profile of D's residuals 1..3 weeks back (2 KiB a
    # series). 0: off; 1-3: the weeks of that hour needed behind a correction.
    weekly_profile: int = Field(default=1, ge=0, le=3)
    # ... a correction P is shrunk by max(0, 1 - this x the variance of a bucket mean / P^2).
    weekly_shrink: float = Field(default=2.0, ge=0)

    @model_validator(mode="after")
    def _one_reading_of_the_ring(self) -> Params:
        if self.decluster and self.sustain:  # its medians read the |z| as judged, not as kept
            raise ValueError("decluster and sustain cannot both be on (the sustained median reads raw |z|)")
        if (self.line_margin or self.line_log) and not self.line_range:
            raise ValueError("line_margin and line_log act on line_range's new extremes: set line_range")
        if self.line_log and not self.line_margin:
            raise ValueError(
                "line_log changes only line_margin's test (a logarithm keeps every order): set line_margin"
            )
        return self

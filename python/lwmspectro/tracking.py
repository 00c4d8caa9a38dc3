"""Tracking over windows: what one emission is, read over its recent windows rather than one.

A window is 16 ms of signal; modulation and mobility are hard to tell from one, and consecutive
windows of one emission say the same thing with independent noise. The `Tracker` of a stream
takes its windows in order and keeps, per task, the mean over the track of each window's
log-probabilities (`ModelOutput.probabilities`); the tracked value is the class of largest mean
and its confidence that class's share of the normalised geometric mean of the windows'
probabilities. That share is the windows' agreement: it does not grow with the number of windows
(consecutive windows of one emission share its channel, so they are not independent evidence
and their product would overstate it), which leaves a long track's confidence on the modest side.
A Gaussian SNR estimate is tracked the same way: the normalised geometric mean of the windows'
Gaussians, whose mean weighs each window by its precision; so is a Doppler head's estimate, over
log10(1 + fD), on the windows whose mobility counts.

The track holds the windows of the last `span_s` seconds and starts again when the emission
changes:

* its protocol: `change_windows` consecutive windows read as one protocol other than the tracked
  one (a single misread window does not end the track; the new track starts with those windows).
  The rule counts the windows the stream holds in that time, not those classified: when a live
  receiver classifies only some windows (it skips to the newest when behind), the windows read
  within `change_windows` window spacings of the newest decide, so that a track still ends within
  about 50 ms of a change instead of holding the previous emission for most of the next one. The
  spacing is the smallest gap between consecutive windows seen on the stream;
* its power: a window whose power (lwmspectro.framer's `power_db`) differs from the previous
  window's by more than `power_jump_db` (another transmitter, or the same one retuned);
* its time: a window that starts before the previous one (a stream started again).

Modulation, SNR and mobility are averaged over the windows the tracked protocol's expert read, so
that another expert's heads, reading a window it was not made for, do not blur the track. Mobility
leaves out the windows that start within `mobility_settle_s` of the track's first window (the
runtime's `past_reach_s`, 127 ms for today's cards): their dynamics view reaches back past it,
across the change that started the track (the previous emission, a gain step), and reads that
change as fast fading. A track younger than that has no tracked mobility yet. A window
that cannot be judged (readout.InvalidWindow) adds nothing and ends nothing.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .readout import CONFIDENCE_OF, TASKS, InvalidWindow, ModelOutput, Tracked, doppler_hz_of, snr_confidence

TRACK_POWER_JUMP_DB = 10.0
"""A window power this far from the previous window's starts a new track: a new emission. Fading
moves a 16 ms window's power by a few dB (more for a narrow channel in a deep fade, which the
user can allow for)."""
TRACK_CHANGE_WINDOWS = 3
"""Consecutive windows read as another protocol that end a track: with a per-window protocol right
60 % of the time a run of three alike errors comes about once in 250 windows, while a real change
is followed within 50 ms."""
LOG_FLOOR = float(np.finfo(np.float64).tiny)
"""A probability that underflowed to zero counts as the smallest positive double in a log."""


@dataclass(frozen=True)
class _Window:
    time_s: float
    protocol: str
    expert: str | None
    log_probabilities: Mapping[str, np.ndarray]
    snr: tuple[float, float] | None
    """(mean, standard deviation) in dB of a Gaussian SNR head's estimate."""
    log_doppler: tuple[float, float] | None
    """(mean, standard deviation) of a Doppler head's estimate of log10(1 + fD / Hz)."""


def check_span(span_s: float) -> float:
    """`span_s` as seconds a track may span: a positive finite number, else a ValueError saying so."""
    if isinstance(span_s, bool) or not isinstance(span_s, (int, float)) or not 0 < span_s < math.inf:
        raise ValueError(f"track span {span_s!r} s: give a positive number of seconds")
    return float(span_s)


def check_power_jump(power_jump_db: float) -> float:
    """`power_jump_db` as a change of window power that starts a new track: positive (inf: never)."""
    if isinstance(power_jump_db, bool) or not isinstance(power_jump_db, (int, float)) or not power_jump_db > 0:
        raise ValueError(
            f"track power jump {power_jump_db!r} dB: give a positive number of dB (inf: never start a new "
            "track on a power change)"
        )
    return float(power_jump_db)


def _agreement(log_probabilities: Sequence[np.ndarray]) -> tuple[int, float]:
    """The class of largest mean log-probability over windows, and its share of the normalised
    geometric mean of their probabilities."""
    mean = np.mean(log_probabilities, axis=0)
    shares = np.exp(mean - mean.max())
    shares /= shares.sum()
    best = int(shares.argmax())
    return best, float(shares[best])


class Tracker:
    """The tracked values of one stream's windows (see the module docstring).

    span_s: seconds of windows a track averages (the windows whose start lies within span_s of the
    newest one's).
    classes: the classes of each task's probabilities, by task (the runtime's `head_classes`).
    snr_half_bin_db: half the SNR bin spacing, for the confidence of a Gaussian SNR estimate
    (the runtime's `snr_half_bin_db`).
    power_jump_db: the change of window power that starts a new track (math.inf: never).
    change_windows: consecutive windows of another protocol that start a new track.
    mobility_settle_s: seconds after a track's first window before its windows' mobility counts
    (the runtime's `past_reach_s`; 0: from the first window).
    """

    def __init__(
        self,
        span_s: float,
        classes: Mapping[str, Sequence[object]],
        snr_half_bin_db: float,
        *,
        power_jump_db: float = TRACK_POWER_JUMP_DB,
        change_windows: int = TRACK_CHANGE_WINDOWS,
        mobility_settle_s: float = 0.0,
    ):
        self.span_s = check_span(span_s)
        self.power_jump_db = check_power_jump(power_jump_db)
        if isinstance(change_windows, bool) or not isinstance(change_windows, int) or change_windows < 1:
            raise ValueError(f"track change windows {change_windows!r}: give a whole number of windows, 1 or more")
        missing = [task for task in TASKS if task not in classes]
        if missing:
            raise ValueError(f"the tracker needs the classes of every task; missing {missing}")
        if (
            isinstance(mobility_settle_s, bool)
            or not isinstance(mobility_settle_s, (int, float))
            or not 0 <= mobility_settle_s < math.inf
        ):
            raise ValueError(f"track mobility settle {mobility_settle_s!r} s: give 0 or a positive number of seconds")
        self.mobility_settle_s = float(mobility_settle_s)
        self.classes = {task: list(names) for task, names in classes.items()}
        self.snr_half_bin_db = float(snr_half_bin_db)
        self.change_windows = change_windows
        self._windows: deque[_Window] = deque()
        self._started_s: float | None = None
        self._protocol: str | None = None
        self._power_db: float | None = None
        self._spacing_s: float | None = None

    @classmethod
    def for_runtime(cls, runtime: Any, span_s: float, *, power_jump_db: float = TRACK_POWER_JUMP_DB) -> Tracker:
        """A tracker of the windows `runtime` (lwmspectro.runtime.Runtime) reads: its classes, its
        SNR bins and its views' reach into the past (mobility_settle_s)."""
        return cls(
            span_s,
            runtime.head_classes,
            runtime.snr_half_bin_db,
            power_jump_db=power_jump_db,
            mobility_settle_s=runtime.past_reach_s,
        )

    def reset(self) -> None:
        """Forget the track: the next window starts a new one."""
        self._windows.clear()
        self._started_s = None
        self._protocol = None
        self._power_db = None

    def update(
        self, outcome: ModelOutput | InvalidWindow, time_s: float, power_db: float | None = None
    ) -> Tracked | None:
        """Add the window that starts at `time_s` (seconds from the stream's start) with power
        `power_db` (None or NaN: unknown, no power check) and return the tracked values up to it;
        None for a window that cannot be judged."""
        if isinstance(outcome, InvalidWindow):
            return None
        if self._windows and time_s < self._windows[-1].time_s:
            self.reset()
        if self._windows and time_s > self._windows[-1].time_s:
            gap = time_s - self._windows[-1].time_s
            self._spacing_s = gap if self._spacing_s is None else min(self._spacing_s, gap)
        if power_db is not None and math.isfinite(power_db):
            if self._power_db is not None and abs(power_db - self._power_db) > self.power_jump_db:
                self.reset()
            self._power_db = power_db
        self._windows.append(self._window(outcome, time_s))
        if self._started_s is None:
            self._started_s = time_s
        recent = self._recent(time_s)
        if recent and all(w.protocol == outcome.protocol != self._protocol for w in recent):
            self._windows = deque(reversed(recent))
            self._started_s = recent[-1].time_s
        while self._windows[0].time_s <= time_s - self.span_s:
            self._windows.popleft()
        return self._tracked()

    def _recent(self, time_s: float) -> list[_Window]:
        """The windows, newest first, that decide a protocol change: the last `change_windows`, or
        fewer when the stream's windows in that time were not all classified; none while a track has
        fewer windows than that and the spacing is unknown."""
        recent = list(itertools.islice(reversed(self._windows), self.change_windows))
        if self._spacing_s is None:
            return recent if len(recent) == self.change_windows else []
        # Half a spacing of slack: window start times come from sample counts and rates.
        since = time_s - (self.change_windows - 0.5) * self._spacing_s
        return [w for w in recent if w.time_s > since]

    def _window(self, outcome: ModelOutput, time_s: float) -> _Window:
        log_probabilities = {
            task: np.log(np.maximum(np.asarray(p, np.float64), LOG_FLOOR)) for task, p in outcome.probabilities.items()
        }
        if "protocol" not in log_probabilities:
            raise ValueError("a tracked window needs the router's probabilities (ModelOutput.probabilities)")
        snr = None
        if outcome.snr_db is not None and outcome.snr_sigma_db is not None:
            snr = (float(outcome.snr_db), float(outcome.snr_sigma_db))
        return _Window(time_s, outcome.protocol, outcome.expert, log_probabilities, snr, outcome.log_doppler)

    def _tracked(self) -> Tracked:
        windows = list(self._windows)
        best, confidence = _agreement([w.log_probabilities["protocol"] for w in windows])
        protocol = str(self.classes["protocol"][best])
        self._protocol = protocol
        read = [w for w in windows if w.expert == protocol]
        started = windows[0].time_s if self._started_s is None else self._started_s
        # Half a microsecond of slack: window start times come from sample counts and rates.
        settled = started + self.mobility_settle_s - 5e-7
        values: dict[str, Any] = {}
        for task in TASKS[1:]:
            rows = [
                w.log_probabilities[task]
                for w in read
                if task in w.log_probabilities and (task != "mobility" or w.time_s >= settled)
            ]
            if rows:
                best, values[CONFIDENCE_OF[task]] = _agreement(rows)
                values[task] = self.classes[task][best]
        snr = _geometric_mean([w.snr for w in read if w.snr is not None])
        if "snr_db" not in values and snr is not None:
            values["snr_db"] = round(snr[0], 1)
            values["snr_confidence"] = snr_confidence(snr[1], self.snr_half_bin_db)
        doppler = _geometric_mean([w.log_doppler for w in read if w.log_doppler is not None and w.time_s >= settled])
        if doppler is not None:
            values["doppler_hz"] = doppler_hz_of(doppler[0])
        return Tracked(windows=len(windows), protocol=protocol, protocol_confidence=confidence, **values)


def _geometric_mean(gaussians: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """(mean, standard deviation) of the normalised geometric mean of Gaussians (mean, standard
    deviation): each weighed by its precision, the spread that of their mean precision (the windows
    of one emission share its channel: their agreement, not independent evidence); None for none."""
    if not gaussians:
        return None
    precision = float(np.mean([1.0 / sigma**2 for _, sigma in gaussians]))
    mean = float(np.mean([m / sigma**2 for m, sigma in gaussians])) / precision
    return mean, precision**-0.5

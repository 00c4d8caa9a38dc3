"""LWM Synthetic Source: labelled WiFi / LTE / NR (and noise / foreign) observations from
lwmspectro.synth, streamed at the sample rate with the ground truth of each as a stream tag.

The generator is several times slower than real time, so the source plays a loop of observations
generated once at start-up (and cached on disk, keyed by the generator settings and seed, so a
second start is instant) while a low-priority worker process generates fresh ones that replace
the loop's observations as they are played."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pmt
from gnuradio import gr

from .common import TAG_TRUTH, ConfigError, to_pmt

LABEL = "LWM Synthetic Source"
LOOP_OBSERVATIONS = 32
"""Observations generated at start-up and looped (about 0.5 s of signal, 125 MB on disk)."""
PACE_SECONDS = 0.005
"""Signal time produced per work() call when pacing to the sample rate."""
MAX_LAG_SECONDS = 0.25
"""A stream this far behind the clock (the flowgraph stalled) restarts the clock rather than
catching up in a burst."""
FRESH_AHEAD = 2
"""Fresh observations kept generated or waiting, so that the worker never idles."""
WORKER_NICENESS = 19
OUTPUT_BUFFER_ITEMS = 1 << 18
"""Samples handed downstream per work() call at most: large, so that the Python call overhead
stays small beside 30.72 MS/s (about a twentieth of a core at real time, half a core with
GNU Radio's default buffer)."""


def _choice(value):
    """GRC enums give '' for "draw / cycle"; the generator takes None."""
    return None if value in ("", None) else value


def cache_dir() -> Path:
    """Where looped observations are kept: $LWMSPECTRO_CACHE, else the user's cache folder."""
    root = os.environ.get("LWMSPECTRO_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(root) / "lwmspectro" / "synthetic"


def _core_digest() -> str:
    """The sha256 of the core package's Python sources, so that a changed generator (an edit in
    development as well as a new release) never replays observations cached by an older one."""
    import lwmspectro

    digest = hashlib.sha256()
    for path in sorted(Path(lwmspectro.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(stream) -> str:
    """Everything that decides the generated observations: the generator's settings, the fixed
    labels, the spectrogram geometry and the core's code."""
    settings = {
        "generator": stream.config.to_dict(),
        "fixed": stream.fixed,
        "cycle": stream.cycle,
        "params": stream.params.to_dict(),
        "scenario_folder": str(stream.scenario_folder),
        "core": _core_digest(),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:24]


def load_loop(stream, count: int) -> tuple[list[np.ndarray], list[dict]]:
    """The stream's first `count` observations: from the cache where it holds them (memory-mapped),
    else generated here and cached."""
    from lwmspectro.fileio import atomic_write

    folder = cache_dir()
    samples_path = folder / f"{cache_key(stream)}.npy"
    truth_path = samples_path.with_suffix(".json")
    try:
        truths = json.loads(truth_path.read_text())
        cached = np.load(samples_path, mmap_mode="r")
        if len(truths) >= count and cached.shape[0] == len(truths) and cached.shape[1] == stream.params.window_samples:
            return [cached[i] for i in range(count)], truths[:count]
    except (OSError, ValueError):
        pass
    gr.logger("lwm_synthetic_source").info(
        f"{LABEL}: generating the first {count} observations once (cached in {folder})"
    )
    observations = [stream.next_observation() for _ in range(count)]
    samples = np.stack([iq for iq, _ in observations]).astype(np.complex64, copy=False)
    truths = json.loads(json.dumps([truth for _, truth in observations], default=_json_plain))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(samples_path, lambda f: np.save(f, samples))
        atomic_write(truth_path, json.dumps(truths))
    except OSError as err:
        gr.logger("lwm_synthetic_source").warn(f"{LABEL}: cannot cache the loop in {folder}: {err}")
    return list(samples), truths


def _json_plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class FreshObservations:
    """A worker process (at the lowest CPU priority, so that the flowgraph keeps its cores, and
    apart from the flowgraph's interpreter lock) generating the stream's next observations;
    `pop()` hands out the ones ready."""

    def __init__(self, stream):
        self._stream = stream
        self._ready: collections.deque = collections.deque()
        self._in_flight = 0
        self._lock = threading.Lock()
        self.failure: str | None = None
        self._process = subprocess.Popen(
            [sys.executable, "-c", f"from {__name__} import serve_observations; serve_observations()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read, name="lwm_synthetic_fresh", daemon=True)
        self._reader.start()
        self._request()

    def pop(self) -> tuple[np.ndarray, dict] | None:
        with self._lock:
            fresh = self._ready.popleft() if self._ready else None
        self._request()
        return fresh

    def close(self) -> None:
        with self._lock:
            self.failure = self.failure or "closed"
        self._process.kill()
        self._process.wait()
        self._reader.join()

    def _request(self) -> None:
        with self._lock:
            try:
                while self.failure is None and self._in_flight + len(self._ready) < FRESH_AHEAD:
                    request = (self._stream.next_spec(), self._stream.params, self._stream.scenario_folder)
                    pickle.dump(request, self._process.stdin)
                    self._process.stdin.flush()
                    self._in_flight += 1
            except OSError as err:
                self.failure = f"cannot reach the worker: {err}"

    def _read(self) -> None:
        while True:
            try:
                observation = pickle.load(self._process.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                with self._lock:
                    self.failure = self.failure or f"the worker exited with status {self._process.wait()}"
                return
            with self._lock:
                self._in_flight -= 1
                self._ready.append(observation)


def serve_observations() -> None:
    """The worker's side: for each (spec, params, scenario folder) read from stdin, the observation
    and its truth written to stdout, both pickled. Anything else printed goes to stderr."""
    from lwmspectro.synth import make_stream

    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    os.nice(WORKER_NICENESS)
    while True:
        try:
            spec, params, scenario_folder = pickle.load(sys.stdin.buffer)
        except EOFError:
            return
        pickle.dump(make_stream(spec, params, scenario_folder=scenario_folder), channel)
        channel.flush()


class synthetic_source(gr.sync_block):
    """Complex samples at the generator's analysis rate (`samp_rate`, 30.72 MS/s), one labelled
    observation after another. Each observation's first sample carries an `lwm_truth` tag:
    a PMT dict of its labels (protocol, modulation, snr_db, mobility, speed_kmh, ...).

    protocol, modulation, mobility: fixed values, or '' to draw one per observation (the
    protocol cycles through WiFi, LTE and NR when `cycle`).
    snr_db: a fixed SNR in dB, or None to draw one.
    seed: fixes the whole sequence (the loop is its first `loop_observations` observations).
    observations: end the stream after this many (0 = endless).
    loop_observations: observations generated at start-up (or read from the cache) and looped.
    realtime: pace the stream to the sample rate, as a radio would (off: as fast as it goes).
    refresh: replace the loop's observations by fresh ones from a background worker process.
    """

    def __init__(
        self,
        protocol="",
        modulation="",
        snr_db=None,
        mobility="",
        cycle=True,
        seed=0,
        observations=0,
        loop_observations=LOOP_OBSERVATIONS,
        realtime=True,
        refresh=True,
    ):
        from lwmspectro.synth import SyntheticStream

        if int(observations) < 0:
            raise ConfigError(f"{LABEL}: observations {observations} is negative; give 0 (endless) or a count")
        if int(loop_observations) < 1:
            raise ConfigError(f"{LABEL}: loop_observations {loop_observations} must be at least 1")
        try:
            self.stream = SyntheticStream(
                protocol=_choice(protocol),
                modulation=_choice(modulation),
                snr_db=snr_db,
                mobility=_choice(mobility),
                cycle=bool(cycle),
                seed=int(seed),
            )
        except ValueError as err:
            raise ConfigError(f"{LABEL}: {err}") from err
        gr.sync_block.__init__(self, name="lwm_synthetic_source", in_sig=None, out_sig=[np.complex64])
        self.set_min_output_buffer(OUTPUT_BUFFER_ITEMS)
        self.samp_rate = float(self.stream.params.sample_rate_hz)
        self.observation_samples = self.stream.params.window_samples
        self.limit = int(observations)
        loop_size = min(int(loop_observations), self.limit) if self.limit else int(loop_observations)
        self._loop, self._truths = load_loop(self.stream, loop_size)
        self.stream.index = loop_size
        self.realtime = bool(realtime)
        self.refresh = bool(refresh) and (self.limit == 0 or self.limit > loop_size)
        self._fresh: FreshObservations | None = None
        self._slot = -1
        self._samples = np.zeros(0, np.complex64)
        self._position = 0
        self.observations = 0
        self.fresh_observations = 0
        self._finishing = False
        self._clock: tuple[float, int] | None = None

    def finish(self) -> None:
        """End the stream after the observation being streamed, so that the flowgraph drains
        and stops by itself with every readout delivered."""
        self._finishing = True

    def start(self):
        if self.refresh:
            self._fresh = FreshObservations(self.stream)
        return True

    def stop(self):
        if self._fresh is not None:
            self._fresh.close()
            self._fresh = None
        return True

    def _next_observation(self) -> tuple[np.ndarray, dict]:
        self._slot = (self._slot + 1) % len(self._loop)
        fresh = self._fresh.pop() if self._fresh is not None else None
        if fresh is not None:
            self._loop[self._slot], self._truths[self._slot] = fresh
            self.fresh_observations += 1
        elif self._fresh is not None and self._fresh.failure is not None:
            self.logger.warn(f"the worker generating fresh observations failed ({self._fresh.failure}); looping on")
            self._fresh.close()
            self._fresh = None
        return self._loop[self._slot], self._truths[self._slot]

    def _paced(self, wanted: int) -> int:
        """How many samples to produce now so that the stream keeps to the sample rate; sleeps
        while the stream is ahead of the clock."""
        now, produced = time.monotonic(), self.nitems_written(0)
        if self._clock is None:
            self._clock = (now, produced)
        started, produced_then = self._clock
        ahead = started + (produced - produced_then) / self.samp_rate - now
        if ahead < -MAX_LAG_SECONDS:
            self._clock = (now, produced)
        elif ahead > 0:
            time.sleep(ahead)
        return min(wanted, max(1, int(self.samp_rate * PACE_SECONDS)))

    def work(self, input_items, output_items):
        out = output_items[0]
        wanted = self._paced(len(out)) if self.realtime else len(out)
        written = 0
        while written < wanted:
            if self._position >= len(self._samples):
                if self._finishing or (self.limit and self.observations >= self.limit):
                    return written or -1
                self._samples, truth = self._next_observation()
                self._position = 0
                self.observations += 1
                self.add_item_tag(0, self.nitems_written(0) + written, pmt.intern(TAG_TRUTH), to_pmt(truth))
            count = min(wanted - written, len(self._samples) - self._position)
            out[written : written + count] = self._samples[self._position : self._position + count]
            self._position += count
            written += count
        return written

"""LWM Synthetic Source: labelled WiFi / LTE / NR (and noise / foreign) emissions from
lwmspectro.synth, streamed at the sample rate observation by observation, with the ground truth of
each observation as a stream tag.

An emission is one transmission as a radio receives it: one example (protocol, modulation, SNR,
mobility, channel) lasting `emission_s`, its channel fading on from one observation to the next and
its truth the same in each, so that the dynamics view (128 ms into the past) and tracking over
windows see one emission, not a new one every 16 ms.

The generator is several times slower than real time, so the source plays a loop of emissions
generated once at start-up (and cached on disk, keyed by the generator settings and seed, so a
second start is instant) while a low-priority worker process continues the sequence; each fresh
emission, once whole, takes the place of the loop's next emission to be played."""

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

from lwmspectro.synth import DEFAULT_EMISSION_S

from .common import TAG_TRUTH, ConfigError, to_pmt, whole_number

LABEL = "LWM Synthetic Source"
LOOP_EMISSIONS = 3
"""Emissions generated at start-up and looped: a WiFi, an LTE and an NR one when cycling (at the
default 0.25 s, 48 observations: 0.76 s of signal, 187 MB on disk and in memory)."""
PACE_SECONDS = 0.005
"""Signal time produced per work() call when pacing to the sample rate."""
MAX_LAG_SECONDS = 0.25
"""A stream this far behind the clock (the flowgraph stalled) restarts the clock rather than
catching up in a burst."""
FRESH_AHEAD = 2
"""Fresh observations kept generated or waiting beyond a whole emission, so that the worker goes on
with the next emission while a whole one waits for its turn in the loop."""
OBSERVATION_REQUEST = b"+"
"""What asks the worker for its stream's next observation."""
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
    labels, the emission length, the spectrogram geometry and the core's code."""
    settings = {
        "generator": stream.config.to_dict(),
        "fixed": stream.fixed,
        "cycle": stream.cycle,
        "emission_observations": stream.emission_observations,
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
    samples = np.empty((count, stream.params.window_samples), np.complex64)
    truths = []
    for i in range(count):
        samples[i], truth = stream.next_observation()
        truths.append(truth)
    truths = json.loads(json.dumps(truths, default=_json_plain))
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


class FreshEmissions:
    """A worker process (at the lowest CPU priority, so that the flowgraph keeps its cores, and
    apart from the flowgraph's interpreter lock) continuing a copy of the stream from where it
    stands, observation by observation; `pop()` hands out the next emission once it is whole."""

    def __init__(self, stream):
        self._per_emission = stream.emission_observations
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
        try:
            pickle.dump(stream, self._process.stdin)
            self._process.stdin.flush()
        except OSError as err:
            self.failure = f"cannot reach the worker: {err}"
        self._request()

    def pop(self) -> list[tuple[np.ndarray, dict]] | None:
        """The next emission's observations and truths, or None while it is not whole."""
        with self._lock:
            whole = len(self._ready) >= self._per_emission
            fresh = [self._ready.popleft() for _ in range(self._per_emission)] if whole else None
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
            wanted = self._per_emission + FRESH_AHEAD - self._in_flight - len(self._ready)
            try:
                if self.failure is None and wanted > 0:
                    self._process.stdin.write(OBSERVATION_REQUEST * wanted)
                    self._process.stdin.flush()
                    self._in_flight += wanted
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
    """The worker's side: reads the stream (a pickled SyntheticStream) from stdin, then for each
    request byte writes the stream's next observation and its truth to stdout, pickled. Anything
    else printed goes to stderr."""
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    os.nice(WORKER_NICENESS)
    try:
        stream = pickle.load(sys.stdin.buffer)
    except EOFError:
        return
    while sys.stdin.buffer.read(1):
        pickle.dump(stream.next_observation(), channel)
        channel.flush()


class synthetic_source(gr.sync_block):
    """Complex samples at the generator's analysis rate (`samp_rate`, 30.72 MS/s), one labelled
    emission after another, each a run of observations. Each observation's first sample carries an
    `lwm_truth` tag: a PMT dict of its emission's labels (protocol, modulation, snr_db, mobility,
    speed_kmh, ...).

    protocol, modulation, mobility: fixed values, or '' to draw one per emission (the protocol
    cycles through WiFi, LTE and NR when `cycle`).
    snr_db: a fixed SNR in dB, or None to draw one.
    seed: fixes the whole sequence (the loop is its first `loop_emissions` emissions).
    observations: end the stream after this many (0 = endless).
    emission_s: how long an emission lasts, rounded up to whole observations (one observation or
    less: a new emission every observation).
    loop_emissions: emissions generated at start-up (or read from the cache) and looped.
    realtime: pace the stream to the sample rate, as a radio would (off: as fast as it goes).
    refresh: replace the loop's emissions by fresh ones from a background worker process.
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
        emission_s=DEFAULT_EMISSION_S,
        loop_emissions=LOOP_EMISSIONS,
        realtime=True,
        refresh=True,
    ):
        from lwmspectro.synth import SyntheticStream

        seed = whole_number(seed, 0, LABEL, "seed")
        observations = whole_number(observations, 0, LABEL, "observations (0: endless)")
        loop_emissions = whole_number(loop_emissions, 1, LABEL, "loop emissions")
        try:
            self.stream = SyntheticStream(
                protocol=_choice(protocol),
                modulation=_choice(modulation),
                snr_db=snr_db,
                mobility=_choice(mobility),
                cycle=bool(cycle),
                seed=seed,
                emission_s=emission_s,
            )
        except ValueError as err:
            raise ConfigError(f"{LABEL}: {err}") from err
        gr.sync_block.__init__(self, name="lwm_synthetic_source", in_sig=None, out_sig=[np.complex64])
        self.set_min_output_buffer(OUTPUT_BUFFER_ITEMS)
        self.samp_rate = float(self.stream.params.sample_rate_hz)
        self.observation_samples = self.stream.params.window_samples
        self.emission_observations = self.stream.emission_observations
        self.emission_seconds = self.emission_observations * self.observation_samples / self.samp_rate
        """The emission length as played: whole observations."""
        self.limit = observations
        loop_size = loop_emissions * self.emission_observations
        if self.limit:
            loop_size = min(loop_size, self.limit)
        self._loop, self._truths = load_loop(self.stream, loop_size)
        self.stream.index = loop_emissions  # the worker goes on after the loop's emissions
        self.realtime = bool(realtime)
        self.refresh = bool(refresh) and (self.limit == 0 or self.limit > loop_size)
        self._fresh: FreshEmissions | None = None
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
            self._fresh = FreshEmissions(self.stream)
        return True

    def stop(self):
        if self._fresh is not None:
            self._fresh.close()
            self._fresh = None
        return True

    def _next_observation(self) -> tuple[np.ndarray, dict]:
        """The loop's next observation; at the start of each of its emissions, a fresh emission
        takes that one's place when the worker has one whole."""
        self._slot = (self._slot + 1) % len(self._loop)
        if self._fresh is not None and self._slot % self.emission_observations == 0:
            fresh = self._fresh.pop()
            if fresh is not None:
                for offset, (samples, truth) in enumerate(fresh):
                    self._loop[self._slot + offset], self._truths[self._slot + offset] = samples, truth
                self.fresh_observations += len(fresh)
            elif self._fresh.failure is not None:
                self.logger.warn(f"the worker generating fresh emissions failed ({self._fresh.failure}); looping on")
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

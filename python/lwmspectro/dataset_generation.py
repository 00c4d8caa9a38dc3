"""Write a sharded spectrogram dataset from a GeneratorConfig: deterministic, resumable, parallel.

Shard i holds examples [i * shard_size, (i + 1) * shard_size); each example depends only
on (config.seed, index), so shards can be made in any order, by any number of processes
or machines (`shard_filter` = (i, N) keeps the shards with index % N == i, `use_ray`
spreads them over a Ray cluster), and a killed run resumes by skipping the shards whose
checksums verify. For the same reason a dataset grows in place: the same config with a larger
n_samples keeps every whole shard and makes the rest (it never shrinks). A config may also
gain views (those it lists keep their parameters): the shards made before keep what they hold,
and only those made from then on hold the new views (the manifest's `added_views`).

An example of G alone is realised only at the T frames G reads (synth.make_spectrogram).
One with other views or a capture chain is a stream as long as its views read, put through its
capture (when it draws one: its receiver is drawn first, and an `other` signal, which draws its
own width, is drawn to fit the receiver's passband), and its views are computed from the
capture at its source rate with views.compute_observation, as the receiver's framer computes
them: for the observation that starts once a view of the past (the dynamics view's 128 ms) has
all it reads behind it.
Only the samples the views read are formed (views.observation_regions), through the capture
chain's reach (capture.capture_reach) and the channel's: the same numbers the whole stream has
there (synth.ReceivedStream, capture.apply_capture_regions): with the capture's reach, some 18 %
of the 128 ms for the wideband and dynamics views, some 55 % with a sent-power view (which reads
0.37 ms of each millisecond).
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from . import views
from .allocator import keep_freed_memory
from .capture import CaptureConfig, apply_capture_regions, capture_key, capture_reach
from .dataset import (
    G_VIEW,
    LABEL_FIELDS,
    add_shard_views,
    read_shard_labels,
    read_sidecar,
    shard_is_complete,
    shard_name,
    write_manifest,
    write_shard,
)
from .resample import rational_ratio
from .synth import GeneratorConfig, ReceivedStream, draw_example, make_spectrogram

CAPTURE_DRAW = 2
"""Extra seed word of the per-example capture draw, apart from draw_spec's and the channel's."""
CAPTURE_EDGE_S = 100e-6
"""Stream realised before and after what the views read when an example may be captured, then
dropped: longer than half the capture's longest filter (the anti-alias filter at 2 MS/s, about
37 us), so that the views read a capture in its steady state, as a receiver does."""


@dataclass(frozen=True)
class ExamplePlan:
    """How every example of one config is made, worked out once per shard."""

    views: dict[str, Any]
    """The stored views by name (G among them)."""
    capture: CaptureConfig | None
    lead: int
    """Analysis-rate samples realised before the capture's first kept sample."""
    samples: int
    """Analysis-rate samples realised from there on."""

    @property
    def frames_only(self) -> bool:
        """G alone and no capture: realise only the frames G reads."""
        return list(self.views) == [G_VIEW] and (self.capture is None or self.capture.probability == 0)

    @classmethod
    def of(cls, config: GeneratorConfig, stored: dict[str, Any] | None = None) -> ExamplePlan:
        """The plan of `config`'s examples, for the views it stores or for the views `stored`
        (by name; G among them), as a study of a view's variants reads them."""
        stored = config.view_params() if stored is None else stored
        capture = config.capture_config()
        rate = config.params.sample_rate_hz
        if capture is None or capture.probability == 0:
            return cls(stored, capture, 0, observation_reads(list(stored.values()), rate)[1])
        edge = int(np.ceil(CAPTURE_EDGE_S * rate))
        needed = 0
        for source_rate in {rate, *capture.source_rates_hz}:
            up, down = rational_ratio(rate, source_rate)
            read = observation_reads(list(stored.values()), source_rate)[1]
            # One more source sample than the views read: the capture is cut at a whole sample.
            needed = max(needed, -(-(read + 1) * down // up))
        return cls(stored, capture, edge, needed + edge)


def observation_reads(chosen: list, sample_rate_hz: float) -> tuple[int, int]:
    """(start, samples) of one observation of the views `chosen` at a source rate, as the framer
    reads it: where it starts once a view of the past has all it reads behind it, and the
    source samples its views read from the first on."""
    offsets = views.view_offsets(chosen, sample_rate_hz)
    start = -min(offsets)
    reach = max(offset + views.min_source_samples(p, sample_rate_hz) for offset, p in zip(offsets, chosen))
    return start, start + reach


def example_source(
    config: GeneratorConfig, index: int, plan: ExamplePlan, whole_stream: bool = False
) -> tuple[np.ndarray, float, int, dict]:
    """(the source-rate I/Q the views of the `index`-th example read, its rate, where its observation
    starts, the label row). Only the samples the views read are formed (zero elsewhere);
    `whole_stream` forms every sample of the stream and its capture: the same numbers where the
    views read (the levels are measured over the same samples), at many times the cost."""
    params = config.params
    spec = draw_example(config, index)
    rate = params.sample_rate_hz
    rng = np.random.default_rng([config.seed, index, CAPTURE_DRAW])
    receiver = None if plan.capture is None else plan.capture.draw_receiver(rng)
    if receiver is not None and spec.protocol == "other":
        # An `other` signal draws its own width: wider than the passband, the capture would leave
        # band-limited noise under its label.
        spec = dataclasses.replace(spec, max_band_hz=receiver.passband_hz)
    stream = ReceivedStream(spec, params, plan.lead + plan.samples, config.scenario_folder)
    settings = None
    if plan.capture is not None and receiver is not None:
        occupied = float(stream.occupied_bw_hz or 0.0)
        settings = plan.capture.draw_tuning(rng, receiver, occupied, stream.occupied_centre_hz, spec.carrier_hz, rate)
    source_rate = rate if settings is None else settings.source_rate_hz
    cut = int(plan.lead * source_rate / rate)
    chosen = list(plan.views.values())
    start, _ = observation_reads(chosen, source_rate)
    regions = [(a + cut, b + cut) for a, b in views.observation_regions(chosen, source_rate, start)]
    everything = [(0, stream.n_samples)]
    if settings is None:
        iq, row = stream.realise(everything if whole_stream else regions, measured=regions)
        source = iq[cut:]
    else:
        reach = capture_reach(settings, rate, stream.n_samples, regions)
        iq, row = stream.realise(everything if whole_stream else reach.analysis_regions, reach.analysis_regions)
        formed = [(0, reach.n_source)] if whole_stream else regions
        key = capture_key(rng)
        source = apply_capture_regions(iq, settings, rate, key, formed, reach.analysis_regions, regions)[cut:]
    row["capture"] = None if settings is None else settings.labels()
    return source, source_rate, start, row


def make_example(
    config: GeneratorConfig, index: int, plan: ExamplePlan | None = None, whole_stream: bool = False
) -> tuple[dict, dict]:
    """(view name -> float32 array, label row) of the `index`-th example of `config` (`whole_stream`:
    as example_source)."""
    plan = plan or ExamplePlan.of(config)
    if plan.frames_only:
        g, row = make_spectrogram(draw_example(config, index), config.params, config.scenario_folder)
        return {G_VIEW: g}, row
    source, source_rate, start, row = example_source(config, index, plan, whole_stream)
    arrays = {}
    for name, output in zip(
        plan.views, views.compute_observation(list(plan.views.values()), source, source_rate, start)
    ):
        if output is None:
            raise ValueError(f"view {name!r} reads further back than the {len(source)} samples realised")
        arrays[name] = output.values
    return arrays, row


def check_output_folder(folder: Path, option: str) -> None:
    """Refuse an output folder that cannot be made or written: one of its parents is a file, or
    the nearest existing one is not writable. `option` names it in the error."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option}: {existing} is a file, not a folder; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option}: the folder {existing} is not writable; choose another path or fix its permissions")


def make_shard(config: GeneratorConfig, index: int, folder: Path) -> int:
    """Generate and write shard `index`; returns its sample count. BLAS runs on one thread, as
    in a worker process or a Ray task: a product split over threads sums in another order, and
    the shard's bytes would depend on where it was made."""
    keep_freed_memory()
    with threadpool_limits(limits=1):
        return _make_shard(config, index, folder)


def _make_shard(config: GeneratorConfig, index: int, folder: Path) -> int:
    first = index * config.shard_size
    last = first + config.shard_count(index)
    plan = ExamplePlan.of(config)
    stored = {name: np.empty((last - first, *views.view_shape(p)), np.float16) for name, p in plan.views.items()}
    rows = []
    for i, example in enumerate(range(first, last)):
        arrays, row = make_example(config, example, plan)
        for name, array in arrays.items():
            stored[name][i] = array
        row["index"] = example
        rows.append(row)
    spectrograms = stored.pop(G_VIEW)
    write_shard(folder, index, spectrograms, rows, stored or None)
    return len(rows)


def _make_shard_job(job) -> int:
    """A job of generate_dataset: (config, shard index, folder) makes the shard; with a fourth
    item, the names of views the shard lacks, it adds just those (fill_shard_views)."""
    config_dict, index, folder, *lacking = job
    config = GeneratorConfig.from_dict(config_dict)
    if lacking:
        return fill_shard_views(config, index, Path(folder), lacking[0])
    return make_shard(config, index, Path(folder))


def _lacking(folder: Path, index: int, added: Sequence[str]) -> list[str]:
    """The views `added` to the config that shard `index` does not hold."""
    held = read_sidecar(Path(folder) / f"{shard_name(index)}.json").get("sha256_views", {})
    return [name for name in added if name not in held]


DRAWN_AGAIN = (*LABEL_FIELDS, "channel", "other_kind")
"""The label fields an example draws the same whatever views it is formed for (its capture's
tuning too, but for an `other` signal's, which follows the band its stream realises)."""


def fill_shard_views(config: GeneratorConfig, index: int, folder: Path, names: Sequence[str]) -> int:
    """Add the views `names` to shard `index`, made before they were added to the config. Each
    example is drawn again, its labels checked against the shard's (DRAWN_AGAIN), and
    only the samples those views read are formed. The values then come out close to, not bit for
    bit, what a shard made with every view holds: the samples formed follow the views read, and
    with them the draws made after the PHY's (the residual CFO and SFO, a few Hz and a hundredth
    of a ppm) and what the PHY realised beyond the views' span (its packet count). Returns the
    shard's example count."""
    keep_freed_memory()
    folder = Path(folder)
    first = index * config.shard_size
    stored_rows = read_shard_labels(folder, index)
    alone = GeneratorConfig.from_dict({**config.to_dict(), "views": [G_VIEW, *names]})
    plan = ExamplePlan.of(alone)
    arrays = {name: np.empty((len(stored_rows), *views.view_shape(plan.views[name])), np.float16) for name in names}
    with threadpool_limits(limits=1):
        for i, stored in enumerate(stored_rows):
            computed, row = make_example(alone, first + i, plan)
            drawn = json.loads(json.dumps(row, sort_keys=True))
            if any(drawn.get(key) != stored.get(key) for key in DRAWN_AGAIN):
                raise ValueError(
                    f"shard {index} of {folder}: example {first + i} draws other labels than the shard holds; "
                    "the shard was made by another version of the generator: use a new --out folder"
                )
            for name in names:
                arrays[name][i] = computed[name]
    add_shard_views(folder, index, arrays)
    return len(stored_rows)


def one_thread_per_worker() -> None:
    """Pool initializer: one BLAS / OpenMP thread per worker process. Each process otherwise
    starts a thread per core, and N workers oversubscribe the cores N times over (measured
    on 16 cores: 16 worker processes made 16 shards in 240 s with default threading, 54
    shards in 80 s with one thread each)."""
    threadpool_limits(limits=1)


def pending_shards(
    config: GeneratorConfig, folder: Path, shard_filter: tuple[int, int] = (0, 1), added: Sequence[str] = ()
) -> list[int]:
    """The shards of `shard_filter` still to make: missing, cut short or corrupt; a shard that
    lacks only views `added` to the config after it was made is kept."""
    part, parts = shard_filter
    if not 0 <= part < parts:
        raise ValueError(f"--shard {part}/{parts}: need 0 <= i < N")
    others = [name for name in config.view_params() if name != G_VIEW]
    return [
        i
        for i in range(config.n_shards)
        if i % parts == part
        and not shard_is_complete(folder, i, views=others, count=config.shard_count(i), added=added)
    ]


def _check_same_config(folder: Path, config: GeneratorConfig) -> list[str]:
    """Refuse a folder made with another config; returns the views added to the config since
    its first shards were made (which those shards lack)."""
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return []
    try:
        written = json.loads(manifest.read_text())
        previous = written["config"]
        added = list(written.get("added_views", []))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(
            f"{manifest}: not a dataset manifest ({err}); delete it to resume (it is rewritten from the "
            "shards), or use a new --out folder"
        ) from None
    current = config.to_dict()
    if not isinstance(previous, dict) or {**previous, "n_samples": None, "views": None} != {
        **current,
        "n_samples": None,
        "views": None,
    }:
        raise ValueError(f"{folder} holds a dataset made with another config; use a new --out folder")
    stored = {name: views.view_to_dict(params) for name, params in config.view_params().items()}
    before = written.get("views") or {G_VIEW: views.view_to_dict(config.params)}
    if any(stored.get(name) != entry for name, entry in before.items()):
        raise ValueError(
            f"{folder} holds views made with other parameters than this version's defaults for the "
            "names its config lists, or views this config no longer lists; use a new --out folder"
        )
    if previous["n_samples"] > current["n_samples"]:
        raise ValueError(
            f"{folder} holds {previous['n_samples']} examples of this config and a dataset only grows; "
            f"pass --n-samples {previous['n_samples']} or more, or use a new --out folder"
        )
    return added + [name for name in stored if name not in before]


def generate_dataset(
    config: GeneratorConfig,
    folder,
    workers: int = 1,
    shard_filter=(0, 1),
    use_ray: bool = False,
    progress: bool = True,
    fill_views: bool = False,
) -> dict:
    """Make every pending shard, the manifest rewritten as each one lands (so that the shards made
    so far can be read, and trained on, while the rest are made or after an interrupted run), and
    return the final manifest. `fill_views` also adds to the shards made before views were added
    to the config the views they lack (fill_shard_views), so that every shard holds every view;
    their other files stay as they were."""
    folder = Path(folder)
    check_output_folder(folder, f"--out {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    added = _check_same_config(folder, config)
    _write_manifest(folder, config, added)
    todo = pending_shards(config, folder, shard_filter, added)
    # Shards made before views were added get just those views: forming again only the samples
    # they read costs a fraction of a whole example (0.12 against 0.78 CPU-s for one 802.11 view
    # of train-constellation.json), and the shard's other files stay as they were. The shards
    # not pending were verified just above: their sidecars say what they lack.
    fills: dict[int, list[str]] = {}
    if fill_views and added:
        part, parts = shard_filter
        lacking = {i: _lacking(folder, i, added) for i in range(part, config.n_shards, parts) if i not in todo}
        fills = {i: names for i, names in lacking.items() if names}
    jobs: list[tuple] = [(config.to_dict(), i, str(folder)) for i in todo]
    jobs += [(config.to_dict(), i, str(folder), names) for i, names in fills.items()]
    total = sum(config.shard_count(i) for i in [*todo, *fills])
    bar = tqdm(total=total, unit="spec", desc=f"generate {folder.name}", disable=not progress)

    def landed(count: int) -> None:
        bar.update(count)
        _write_manifest(folder, config, added)

    if use_ray:
        _make_shards_on_ray(jobs, landed)
    elif workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(workers, initializer=one_thread_per_worker) as pool:
            for count in pool.imap_unordered(_make_shard_job, jobs):
                landed(count)
    else:
        for job in jobs:
            landed(_make_shard_job(job))
    bar.close()
    return _write_manifest(folder, config, added)


def _write_manifest(folder: Path, config: GeneratorConfig, added: Sequence[str]) -> dict:
    stored = config.view_params() if config.views is not None else None
    return write_manifest(folder, config.params, config.to_dict(), config.n_shards, stored, added)


def _make_shards_on_ray(jobs: list, landed: Callable[[int], None]) -> None:
    """Make the shards as Ray tasks: on the cluster at RAY_ADDRESS when it is set (each node
    needs this package installed), else on a local instance started here and stopped after;
    `landed` is told each finished task's example count."""
    try:
        import ray
    except ImportError as err:
        raise ValueError("--ray needs the `ray` package: pip install 'lwmspectro[ray]'") from err
    started = not ray.is_initialized()
    if started:
        address = os.environ.get("RAY_ADDRESS") or None
        if address:
            ray.init(address=address)
        else:
            ray.init(address=None, include_dashboard=False)
    try:
        remote = ray.remote(_make_shard_job)
        pending = [remote.remote(job) for job in jobs]
        while pending:
            done, pending = ray.wait(pending)
            landed(sum(ray.get(done)))
    finally:
        if started:
            ray.shutdown()

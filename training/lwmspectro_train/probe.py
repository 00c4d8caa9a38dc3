"""Linear probes of the spectrogram views: which labels each view can show, before any training.

A fixed, seeded labelled set is generated on the training sites (to fit) and on the held-out
site (to score). Each example is seen in three captures: (a) at the analysis rate, centred, as
the generator writes it; (b) captured at 20 MS/s behind a band-limiting anti-alias filter; (c)
captured off-centre (both through `lwmspectro.capture`, rate, filter, offset and CFO only).
Every view (today's G first, then each one `lwmspectro.views` registers) is computed on each
capture as the live framer would see it (G: resampled to its analysis rate). Its output is
pooled by blocks (the mean and standard deviation of each, at most POOLED_SIZE blocks along
each of its last two axes) and flattened; a logistic regression on the standardised features (how
many of them and how regularised chosen by cross-validation on the fitting set) is fitted per
label, view and capture on the training-site examples and scored on the held-out-site ones.

Example generation is the slow part, so its results (pooled features per view, labels) are
cached by chunk under the output folder: a rerun, or one with a new view, computes only what is
missing, then re-fits.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import multiprocessing
import shlex
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from lwmspectro import capture, labels, scenarios, synth
from lwmspectro import spectrogram as spectrogram_module
from lwmspectro.dataset_generation import one_thread_per_worker
from lwmspectro.fileio import atomic_write
from lwmspectro.spectrogram import DEFAULT_PARAMS, SpectrogramParams, spectrogram

POOLED_SIZE = 32
"""Block means along each of a view's last two axes keep at most this many values."""
PROBE_SETTINGS = ((128, 0.5), (512, 0.1), (None, 0.01))
"""(features kept, inverse L2 strength C) the probe chooses from by cross-validation on the fitting
set. Kept features are those whose class means differ most (ANOVA F-test; None keeps all): with all
of them, a few hundred examples let the regression fit noise in thousands of features, and a label
plainly in a handful of them is read at 87-90 % instead of 100 %; a label spread thinly over many
features wants them all, more strongly regularised."""
PROBE_FOLDS = 3
PROBE_MAX_ITER = 1000
QUANTILES = np.linspace(0.02, 0.98, 25)
"""Quantiles of all of a view's values the probe also reads: the distribution of per-element
powers is where a constellation's order shows (its fourth moment), wherever the elements sit."""
HISTOGRAM_EDGES = np.concatenate([[-np.inf], np.linspace(-2.0, 1.0, 65), [np.inf]])
"""Fixed bins (0.047 wide: 0.5 dB of an aligned view's log10 relative power) of a histogram of
all of a view's values, read as log(1 + count). Quantiles move with the share of empty elements
(a cell at 20 % load leaves most resource elements empty); the log counts of fixed bins do not:
the load adds the same constant to each occupied bin's, and a linear probe reads the
constellation's rings from their differences (LTE modulation, 120 examples, 3-fold
cross-validation: 45 % from the block statistics, 77 % from the histogram)."""
POOLING = "block mean and standard deviation, 25 quantiles, a 66-bin histogram"
"""What pooled_features keeps (part of the cache key)."""
CHUNK = 25
"""Examples per cache file."""
BAND_LIMITED_RATE_HZ = 20e6
TODAYS_G = "G (today)"
ROUTER_VIEWS = ("wideband", "cp_profile", "ofdm_aligned_15khz", "ofdm_pattern_15khz", "lte_sync_15khz")
"""The views the shipped router reads."""
SENT_POWER_VIEWS = ("dynamics_wifi", "dynamics_lte", "dynamics_nr")
COMBINATIONS = {
    "router: wideband + cp_profile": ROUTER_VIEWS[:2],
    "router: wideband + cp_profile + 15 kHz aligned + pattern": ROUTER_VIEWS[:4],
    "router: wideband + cp_profile + 15 kHz aligned + pattern + LTE sync": ROUTER_VIEWS,
    "router: the five + narrowband + spectral levels + CP SNR": (
        *ROUTER_VIEWS,
        "narrowband",
        "spectral_levels",
        "cp_snr",
    ),
    "router: the five + narrowband + spread levels + CP SNR": (
        *ROUTER_VIEWS,
        "narrowband",
        "spectral_levels_spread",
        "cp_snr",
    ),
    "router: the five + WiFi sent power": (*ROUTER_VIEWS, "dynamics_wifi"),
    "router: the five + WiFi sent power + narrowband + spectral levels + CP SNR": (
        *ROUTER_VIEWS,
        "dynamics_wifi",
        "narrowband",
        "spectral_levels",
        "cp_snr",
    ),
    "aligned 15 + 30 kHz": ("ofdm_aligned_15khz", "ofdm_aligned_30khz"),
    "wifi: aligned + constellation": ("ofdm_aligned_wifi", "ofdm_constellation_wifi"),
    "wifi: constellation + pilot-tracked": ("ofdm_constellation_wifi", "ofdm_constellation_wifi_pilots"),
    "15 kHz: aligned + constellation": ("ofdm_aligned_15khz", "ofdm_constellation_15khz"),
    "15 + 30 kHz: aligned + constellation": (
        "ofdm_aligned_15khz",
        "ofdm_aligned_30khz",
        "ofdm_constellation_15khz",
        "ofdm_constellation_30khz",
    ),
    "15 + 30 kHz: constellation": ("ofdm_constellation_15khz", "ofdm_constellation_30khz"),
    "sent power: wifi + lte + nr": SENT_POWER_VIEWS,
    "SNR: spectral levels + CP SNR": ("spectral_levels", "cp_snr"),
    "SNR: spectral levels + CP SNR + sent power": ("spectral_levels", "cp_snr", *SENT_POWER_VIEWS),
    "SNR: spread levels + CP SNR": ("spectral_levels_spread", "cp_snr"),
    "SNR: spread levels + CP SNR + sent power": ("spectral_levels_spread", "cp_snr", *SENT_POWER_VIEWS),
    "every view": (),
}
"""Columns that read several views at once (their features side by side), as a model with C > 1
input views would: each names the registered views it joins (by the registry name, today's G
included); () joins them all. The router candidates beyond its five views were picked by 3-fold
cross-validation on the fitting set alone: the WiFi sent-power view follows 128 ms of packets,
where the 15 ms views of a WiFi cell at a 4-11 % duty cycle and 0-5 dB see one or two."""

CAPTURES = ("analysis", "band_limited", "off_centre")
CAPTURE_TITLES = {
    "analysis": "(a) 30.72 MS/s, centred",
    "band_limited": "(b) 20 MS/s, band-limited",
    "off_centre": "(c) off-centre",
}
SPLITS = {"train": "train", "heldout": "heldout"}
"""Probe split -> generator scenario selection."""


@dataclass(frozen=True)
class ProbeSize:
    n_train: int
    n_heldout: int


SIZES = {"quick": ProbeSize(8, 6), "default": ProbeSize(2000, 1000)}
"""Examples per split. The default's finest task, NR modulation at SNR >= 15 dB (an eighth of
the examples, over two numerologies and four orders), fits on about 230 and is scored on about
120. At half that (1000 / 500), some numerology-order pairs had 7 to 10 fitting examples and 30
kHz 256QAM read as 64QAM in 10 of its 13 held-out examples, where 150 NR examples drawn for the
task alone read it right: the probe measured its own sample, not the views."""


@dataclass(frozen=True)
class View:
    """One spectrogram view as the probe uses it."""

    name: str
    compute: Callable[[np.ndarray, float], np.ndarray]
    """(I/Q at its source rate, that rate) -> the view's array."""
    min_source_samples: Callable[[float], int]
    """Source samples at a rate the view needs."""
    key: str
    """What the view's output depends on (its parameters and code), for the cache."""


GENERATION_MODULES = ("synth", "capture", "resample", "labels", "config_base", "phy", "channels", "scenarios")
"""Parts of the core that decide the generated examples (their sources key the example cache)."""


@functools.cache
def code_digest(module: ModuleType) -> str:
    """sha256 of `module`'s source and of the sources of the core modules it refers to by name:
    a view's cached features are reused only while the code that computes them is unchanged. Read
    once per process, as the modules are imported once."""
    files = {Path(module.__file__ or "")}
    for value in vars(module).values():
        source = value if isinstance(value, ModuleType) else sys.modules.get(getattr(value, "__module__", "") or "")
        if source is not None and source.__name__.startswith("lwmspectro.") and source.__file__:
            files.add(Path(source.__file__))
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def generation_digest() -> str:
    """sha256 of the core sources that decide the examples and of the probe's own draws of them
    and their captures (split_config, probe_example, captures_of)."""
    import lwmspectro

    root = Path(lwmspectro.__file__).parent
    digest = hashlib.sha256()
    for name in GENERATION_MODULES:
        paths = sorted((root / name).rglob("*.py")) if (root / name).is_dir() else [root / f"{name}.py"]
        for path in paths:
            digest.update(path.read_bytes())
    for function in (split_config, probe_example, captures_of):
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()


def _sliced(compute: Callable[[np.ndarray, float], np.ndarray], needed: Callable[[float], int]):
    """`compute` given one observation: the first samples the view reads (as the framer cuts them)."""
    return lambda iq, rate_hz: compute(iq[: needed(rate_hz)], rate_hz)


def todays_g(params: SpectrogramParams = DEFAULT_PARAMS, name: str = TODAYS_G) -> View:
    """Today's G: the capture resampled to its analysis rate (as the live framer does), one observation."""

    def compute(iq: np.ndarray, rate_hz: float) -> np.ndarray:
        return spectrogram(iq, params, sample_rate_hz=rate_hz)

    needed = params.source_window_samples
    key = json.dumps([params.to_dict(), code_digest(spectrogram_module)], sort_keys=True)
    return View(name, _sliced(compute, needed), needed, key)


def registered_views(skip: Sequence = ()) -> list[View]:
    """Every view `lwmspectro.views` registers, but those whose parameters are in `skip`."""
    from lwmspectro import views

    def bind(name: str, params) -> View:
        def needed(rate_hz: float) -> int:
            return int(views.min_source_samples(params, rate_hz))

        def compute(iq: np.ndarray, rate_hz: float) -> np.ndarray:
            return np.asarray(views.compute_view(params, iq, rate_hz))

        key = json.dumps([views.view_to_dict(params), code_digest(views)], sort_keys=True)
        return View(name, _sliced(compute, needed), needed, key)

    return [bind(name, params) for name, params in views.VIEWS.items() if params not in skip]


def probe_views(params: SpectrogramParams = DEFAULT_PARAMS) -> list[View]:
    """The views the probe compares: today's G first (named after its registry entry when it has
    one), then every other registered view."""
    from lwmspectro import views

    names = [name for name, registered in views.VIEWS.items() if registered == params]
    first = todays_g(params, f"{names[0]} (today's G)" if names else TODAYS_G)
    return [first, *registered_views(skip=(params,))]


def _block_starts(n: int, size: int) -> np.ndarray:
    """Starts of `size` near-equal blocks covering n (n blocks of one when n <= size)."""
    if n <= size:
        return np.arange(n)
    sizes = np.full(size, n // size)
    sizes[: n % size] += 1
    return np.concatenate([[0], np.cumsum(sizes)[:-1]])


def pooled_features(view_output: np.ndarray, size: int = POOLED_SIZE) -> np.ndarray:
    """A view's array as the probe's feature vector: the mean and the standard deviation of each
    block of near-equal blocks, at most `size` along each of its last two axes (leading axes, e.g.
    channels, kept), flattened, float32. The spread keeps what a block mean averages away: how
    much the elements under it vary (a constellation's amplitude spread, fading); the quantiles of
    all its values and their histogram (per leading channel) what no block shows alone: their
    distribution."""
    x = np.asarray(view_output, np.float64)
    if x.ndim == 1:
        x = x[None, :]
    rows, cols = _block_starts(x.shape[-2], size), _block_starts(x.shape[-1], size)

    def pool(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(np.add.reduceat(values, rows, axis=-2), cols, axis=-1)

    counts = pool(np.ones(x.shape[-2:]))
    mean = pool(x) / counts
    spread = np.sqrt(np.maximum(pool(x * x) / counts - mean**2, 0.0))
    values = x.reshape(*x.shape[:-2], -1)
    quantiles = np.quantile(values, QUANTILES, axis=-1)
    counts = np.stack([np.histogram(channel, HISTOGRAM_EDGES)[0] for channel in values.reshape(-1, values.shape[-1])])
    return np.concatenate([mean.ravel(), spread.ravel(), quantiles.ravel(), np.log1p(counts).ravel()]).astype(
        np.float32
    )


def _probe_model(n_features: int, kept: int | None, c: float, seed: int):
    return make_pipeline(
        StandardScaler(),
        SelectKBest(f_classif, k="all" if kept is None else min(kept, n_features)),
        LogisticRegression(C=c, max_iter=PROBE_MAX_ITER, random_state=seed),
    )


def probe_predictions(train_x: np.ndarray, train_y: Sequence, test_x: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """What a logistic regression on standardised features predicts for `test_x`, its setting
    (PROBE_SETTINGS) chosen by stratified cross-validation on (train_x, train_y) and then fitted on
    all of it; None when the training set holds fewer than two classes or there is nothing to predict."""
    train_y = np.asarray(train_y)
    if len(test_x) == 0 or len(np.unique(train_y)) < 2:
        return None
    n_features = train_x.shape[1]
    with warnings.catch_warnings():
        # A tiny or inseparable set may stop lbfgs early, and a view may hold constant features (the
        # F-test then ranks them last); the held-out accuracy still says what the view shows.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        setting = PROBE_SETTINGS[0]
        if np.unique(train_y, return_counts=True)[1].min() >= PROBE_FOLDS:
            folds = StratifiedKFold(PROBE_FOLDS, shuffle=True, random_state=seed)
            scores = [
                cross_val_score(_probe_model(n_features, kept, c, seed), train_x, train_y, cv=folds).mean()
                for kept, c in PROBE_SETTINGS
            ]
            setting = PROBE_SETTINGS[int(np.argmax(scores))]
        model = _probe_model(n_features, *setting, seed).fit(train_x, train_y)
    return model.predict(test_x)


def column_predictions(
    columns: Iterable[tuple[np.ndarray, Sequence, np.ndarray]], seed: int, workers: int
) -> list[np.ndarray | None]:
    """probe_predictions of each (fitting x, fitting labels, scored x), on `workers` processes
    (each fit is seeded alone, so the predictions are the same)."""
    return Parallel(n_jobs=workers)(
        delayed(probe_predictions)(fit_x, fit_y, scored_x, seed) for fit_x, fit_y, scored_x in columns
    )


def fit_probe(
    train_x: np.ndarray, train_y: Sequence, test_x: np.ndarray, test_y: Sequence, seed: int = 0
) -> float | None:
    """Held-out accuracy of `probe_predictions` on (test_x, test_y); None where it predicts nothing."""
    predicted = probe_predictions(train_x, train_y, test_x, seed)
    return None if predicted is None else float(np.mean(predicted == np.asarray(test_y)))


TARGETS = {
    "protocol": (0.97, "router: the five + WiFi sent power"),
    "modulation_wifi": (0.85, "wifi: constellation + pilot-tracked"),
    "modulation_lte": (0.85, "ofdm_constellation_15khz"),
    "modulation_nr": (0.85, "15 + 30 kHz: constellation"),
    "snr_bin": (0.80, "every view"),
    "mobility": (0.80, "sent power: wifi + lte + nr"),
}
"""Per task: the held-out accuracy the views must let a linear probe reach, and the column
(views) the model's part that reads that label uses."""


@dataclass(frozen=True)
class Task:
    """One table: a label read from the examples a filter keeps."""

    title: str
    target: str
    keep: Callable[[dict], bool]
    label: Callable[[dict], object]


def _snr_at_least(threshold: float) -> Callable[[dict], bool]:
    return lambda row: row["snr_db"] is not None and row["snr_db"] >= threshold


TASKS = [
    Task(
        "Protocol (wifi / lte / nr / none / other), SNR >= 0 dB",
        "protocol",
        lambda row: row["protocol"] == "none" or _snr_at_least(0)(row),
        lambda row: row["protocol"],
    ),
    *[
        Task(
            f"Modulation, {protocol}, SNR >= 15 dB",
            f"modulation_{protocol}",
            lambda row, protocol=protocol: row["protocol"] == protocol and _snr_at_least(15)(row),
            lambda row: row["modulation"],
        )
        for protocol in labels.PROTOCOLS
    ],
    Task(
        "SNR bin (" + " / ".join(f"{snr:g}" for snr in labels.SNR_GRID_DB) + " dB), every signal",
        "snr_bin",
        lambda row: row["snr_db"] is not None,
        lambda row: labels.snr_bin_index(row["snr_db"]),
    ),
    Task(
        "Mobility (static / pedestrian / vehicular), SNR >= 10 dB",
        "mobility",
        lambda row: row["mobility"] is not None and _snr_at_least(10)(row),
        lambda row: row["mobility"],
    ),
]


def stream_samples(views: Sequence[View], params: SpectrogramParams = DEFAULT_PARAMS) -> int:
    """Analysis-rate samples each example is generated with: enough for every view at every
    capture's rate, plus a margin for the resamplers' edges."""
    rate = params.sample_rate_hz
    needed = [params.window_samples]
    for view in views:
        for source_rate in (rate, BAND_LIMITED_RATE_HZ):
            needed.append(-(-view.min_source_samples(source_rate) * rate // source_rate))
    return int(max(needed)) + 4096


def captures_of(
    stream: synth.ReceivedStream,
    iq: np.ndarray,
    row: dict,
    band_limited: capture.CaptureSettings,
    rng: np.random.Generator,
) -> dict[str, tuple[np.ndarray, float, dict]]:
    """The three captures of one analysis-rate example (`iq`, `row`: `stream` realised): name ->
    (I/Q, its rate, capture labels). `band_limited` is the 20 MS/s receiver, drawn before the
    stream so that an `other` signal was drawn to fit its passband (probe_example)."""
    rate_hz = stream.params.sample_rate_hz
    occupied = float(row.get("occupied_bw_hz") or 0.0)
    receivers = {"band_limited": (band_limited, True), "off_centre": (capture.draw_receiver(rng, rate_hz), False)}
    out = {"analysis": (iq, rate_hz, {})}
    for name, (receiver, centred) in receivers.items():
        settings = capture.draw_tuning(
            rng,
            receiver,
            occupied,
            row["carrier_hz"],
            occupied_centre_hz=stream.occupied_centre_hz,
            analysis_rate_hz=rate_hz,
            centred=centred,
            receiver_steps=False,
        )
        out[name] = (capture.apply_capture(iq, settings, rate_hz, rng), settings.source_rate_hz, settings.labels())
    return out


def split_config(seed: int, split: str, params: SpectrogramParams) -> synth.GeneratorConfig:
    """The generator config of one split's examples. Each split draws from a seed of its own: the
    `index`-th example of a config is a function of (seed, index) alone, so with one seed for both
    the held-out example i would be the fitting example i again (the same protocol, SNR, bits and
    noise) but for the site's channel, and a probe could read it from memory."""
    return synth.GeneratorConfig(
        seed=seed * len(SPLITS) + list(SPLITS).index(split), scenarios=SPLITS[split], spectrogram=params.to_dict()
    )


def probe_example(
    config: synth.GeneratorConfig, index: int, params: SpectrogramParams, n_samples: int, rng: np.random.Generator
) -> tuple[dict[str, tuple[np.ndarray, float, dict]], dict]:
    """(captures_of the `index`-th example of `config`, its label row). The narrowest capture's
    receiver is drawn first: an `other` signal draws its own width, and one wider than the
    20 MS/s passband would leave band-limited noise under its label, as the generator avoids."""
    spec = synth.draw_spec(config, index)
    band_limited = capture.draw_receiver(rng, BAND_LIMITED_RATE_HZ)
    if spec.protocol == "other":
        spec = dataclasses.replace(spec, max_band_hz=band_limited.passband_hz)
    stream = synth.ReceivedStream(spec, params, n_samples)
    iq, row = stream.realise([(0, n_samples)])
    return captures_of(stream, iq, row, band_limited, rng), row


def _view_digest(view: View, n_samples: int) -> str:
    text = json.dumps([view.name, view.key, n_samples, POOLED_SIZE, POOLING])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ProbeCache:
    """Per split and chunk: the examples' labels (JSON) and each view's pooled features
    (n, len(CAPTURES), F) in .npy files, under `folder`."""

    def __init__(self, folder: Path, seed: int, views: Sequence[View], n_samples: int, params: SpectrogramParams):
        self.folder = Path(folder) / f"seed-{seed}-{generation_digest()[:16]}"
        self.seed = seed
        self.views = list(views)
        self.n_samples = n_samples
        self.params = params
        self.digests = {view.name: _view_digest(view, n_samples) for view in self.views}

    def _labels_path(self, split: str, chunk: int) -> Path:
        return self.folder / split / f"labels-{self.n_samples}-{chunk:05d}.json"

    def _features_path(self, split: str, chunk: int, view: View) -> Path:
        return self.folder / split / self.digests[view.name] / f"{chunk:05d}.npy"

    @staticmethod
    def _indices(chunk: int, n_examples: int) -> range:
        return range(chunk * CHUNK, min((chunk + 1) * CHUNK, n_examples))

    def _missing(self, split: str, chunk: int) -> list[View]:
        return [view for view in self.views if not self._features_path(split, chunk, view).exists()]

    def fill(self, sizes: dict[str, int], progress: bool, workers: int = 1) -> None:
        """Generate whatever the first `sizes[split]` examples of each split still lack, a chunk
        per job on `workers` processes (one pool for every split: its processes import the code
        once, so every example of a run is made by the same code)."""
        todo = [
            (split, chunk, n_examples)
            for split, n_examples in sizes.items()
            for chunk in range(-(-n_examples // CHUNK))
            if self._missing(split, chunk) or not self._labels_path(split, chunk).exists()
        ]
        total = sum(sizes.values())
        bar = tqdm(total=total, desc="examples", unit="ex", disable=not progress, dynamic_ncols=True)
        bar.update(total - sum(len(self._indices(chunk, n)) for _, chunk, n in todo))
        if workers > 1 and len(todo) > 1:
            jobs = [
                (self.folder, self.digests, self.seed, self.params.to_dict(), self.n_samples, split, chunk, n)
                for split, chunk, n in todo
            ]
            with multiprocessing.get_context("spawn").Pool(workers, initializer=one_thread_per_worker) as pool:
                for count in pool.imap_unordered(_fill_chunk_job, jobs):
                    bar.update(count)
        else:
            for split, chunk, n in todo:
                bar.update(self.fill_chunk(split, chunk, n))
        bar.close()

    def fill_chunk(self, split: str, chunk: int, n_examples: int) -> int:
        """Generate one chunk's labels and missing features; returns its example count."""
        config = split_config(self.seed, split, self.params)
        indices = self._indices(chunk, n_examples)
        missing = self._missing(split, chunk)
        rows, features = [], {view.name: [] for view in missing}
        for index in indices:
            rng = np.random.default_rng([self.seed, list(SPLITS).index(split), index])
            captured, row = probe_example(config, index, self.params, self.n_samples, rng)
            row["captures"] = {name: labels_ for name, (_, _, labels_) in captured.items()}
            rows.append(_json_ready(row))
            for view in missing:
                features[view.name].append(
                    np.stack([pooled_features(view.compute(x, rate)) for x, rate, _ in captured.values()])
                )
        for view in missing:
            path = self._features_path(split, chunk, view)
            path.parent.mkdir(parents=True, exist_ok=True)
            stacked = np.stack(features[view.name]).astype(np.float32)
            atomic_write(path, lambda f, stacked=stacked: np.save(f, stacked))
        atomic_write(self._labels_path(split, chunk), json.dumps(rows))
        return len(indices)

    def load(self, split: str, n_examples: int) -> tuple[list[dict], dict[str, np.ndarray]]:
        """(label rows, view name -> features (n, len(CAPTURES), F)) of the first `n_examples`."""
        chunks = range(-(-n_examples // CHUNK))
        rows = [row for chunk in chunks for row in json.loads(self._labels_path(split, chunk).read_text())]
        features = {
            view.name: np.concatenate([np.load(self._features_path(split, chunk, view)) for chunk in chunks])
            for view in self.views
        }
        return rows[:n_examples], {name: array[:n_examples] for name, array in features.items()}


def _fill_chunk_job(job: tuple) -> int:
    """One chunk in a worker process, under the parent's cache names: the parent's views are
    rebuilt there (they hold closures, which do not pickle)."""
    folder, digests, seed, params_dict, n_samples, split, chunk, n_examples = job
    params = SpectrogramParams.from_dict(params_dict)
    views = [view for view in probe_views(params) if view.name in digests]
    cache = ProbeCache(folder.parent, seed, views, n_samples, params)
    cache.folder, cache.digests = folder, digests
    return cache.fill_chunk(split, chunk, n_examples)


def _json_ready(value):
    """Labels with numpy scalars turned into Python ones."""
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class ProbeRow:
    task: Task
    capture: str
    n_train: int
    n_heldout: int
    chance: float | None
    accuracy: dict[str, float | None]
    by_snr: dict[float, tuple[int, dict[str, float | None]]]
    """Held-out SNR -> (examples scored, accuracy per view) of the same probes (signals only)."""


def _accuracy(correct: dict[str, np.ndarray | None], chosen: np.ndarray) -> dict[str, float | None]:
    """Per view, the share of the `chosen` examples it got right (None where it has no probe or none are chosen)."""
    return {
        view: None if hits is None or not chosen.any() else float(hits[chosen].mean()) for view, hits in correct.items()
    }


def _registry_name(view: View) -> str:
    return view.name.removesuffix(" (today's G)")


def column_names(views: Sequence[View]) -> list[str]:
    """The table's columns: each view, then each combination whose views are all probed."""
    present = {_registry_name(view) for view in views}
    joined = [name for name, parts in COMBINATIONS.items() if set(parts) <= present]
    return [view.name for view in views] + joined


def joined_features(views: Sequence[View], features: dict[str, np.ndarray], column: str) -> np.ndarray:
    """The features of a column: one view's, or a combination's views' side by side."""
    if column in features:
        return features[column]
    parts = COMBINATIONS[column] or tuple(_registry_name(view) for view in views)
    by_registry = {_registry_name(view): view.name for view in views}
    return np.concatenate([features[by_registry[part]] for part in parts], axis=-1)


def score(
    views: Sequence[View],
    train: tuple[list[dict], dict[str, np.ndarray]],
    heldout: tuple[list[dict], dict[str, np.ndarray]],
    seed: int,
    progress: bool,
    workers: int = 1,
) -> list[ProbeRow]:
    """Fit and score a probe per task, capture and view, the columns of a row on `workers`
    processes (each fit is seeded alone, so the table is the same)."""
    out = []
    cells = [(task, name) for task in TASKS for name in CAPTURES]
    for task, name in tqdm(cells, desc="probes", unit="row", disable=not progress, dynamic_ncols=True):
        column = CAPTURES.index(name)
        (train_rows, train_features), (held_rows, held_features) = train, heldout
        train_keep = [i for i, row in enumerate(train_rows) if task.keep(row)]
        held_keep = [i for i, row in enumerate(held_rows) if task.keep(row)]
        train_y = [task.label(train_rows[i]) for i in train_keep]
        held_y = [task.label(held_rows[i]) for i in held_keep]
        chance = None
        if held_y:
            _, counts = np.unique(np.asarray(held_y), return_counts=True)
            chance = float(counts.max() / len(held_y))
        held_snr = np.array([held_rows[i]["snr_db"] for i in held_keep], dtype=float)
        names = column_names(views)
        predictions = column_predictions(
            (
                (
                    joined_features(views, train_features, view_column)[train_keep, column],
                    train_y,
                    joined_features(views, held_features, view_column)[held_keep, column],
                )
                for view_column in names
            ),
            seed,
            workers,
        )
        correct = {
            view_column: None if predicted is None else predicted == np.asarray(held_y)
            for view_column, predicted in zip(names, predictions)
        }

        overall = _accuracy(correct, np.ones(len(held_keep), bool))
        by_snr = {}
        for snr in labels.SNR_GRID_DB:
            at_snr = held_snr == snr
            by_snr[float(snr)] = (int(at_snr.sum()), _accuracy(correct, at_snr))
        out.append(ProbeRow(task, name, len(train_keep), len(held_keep), chance, overall, by_snr))
    return out


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def render_markdown(
    command: str, seed: int, size: ProbeSize, views: Sequence[View], rows: Sequence[ProbeRow], n_samples: int
) -> str:
    """docs/g-ablation.md: the command, how the probe works, then one table per label."""
    names = column_names(views)
    settings = ", ".join(f"({'all' if kept is None else kept}, {c:g})" for kept, c in PROBE_SETTINGS)
    passband = "-".join(f"{100 * f:g}" for f in capture.PASSBAND_FRACTION_RANGE) + " %"
    lines = [
        "# G ablation: what a linear probe reads from each spectrogram view",
        "",
        f"Regenerate with `{command}` (seed {seed}).",
        "",
        f"- Examples: {size.n_train} from the training sites ({', '.join(scenarios.TRAIN_SCENARIOS)}) to fit, "
        f"{size.n_heldout} from the held-out site ({scenarios.HELDOUT_SCENARIO}) to score; the generator's "
        "default class mix, SNR grid and mobility classes, site channels, "
        f"{n_samples} samples at 30.72 MS/s each.",
        "- Captures (`lwmspectro.capture`): (a) the example as generated, 30.72 MS/s with the signal at DC; "
        f"(b) captured at 20 MS/s, centred, behind an anti-alias filter passing {passband} of the Nyquist band; "
        f"(c) captured at 30.72 MS/s with the signal off DC by as much as keeps it inside a passband of {passband}. "
        f"(b) and (c) add an uncompensated oscillator error of up to {capture.CFO_PPM_RANGE[1]:g} ppm of the "
        "carrier; no other receiver impairment. Each view reads the "
        "capture at its rate as the live blocks would (today's G resampled to 30.72 MS/s).",
        f"- Probe: each view's output cut into at most {POOLED_SIZE} x {POOLED_SIZE} near-equal blocks along its "
        "last two axes; the mean and standard deviation of each block, 25 quantiles (2-98 %) of all its "
        "values and the log counts of a 66-bin histogram of them (-2 to 1 in 64 bins, and the two tails), "
        "flattened and standardised (the last columns join several views' features side by side); the "
        f"N whose class means differ most on the fitting set (ANOVA F-test) feed a logistic regression with an L2 "
        f"penalty C, (N, C) chosen among {settings} by {PROBE_FOLDS}-fold cross-validation on the fitting set; "
        "fitted per label, view and "
        "capture on the training-site examples and scored on the held-out-site examples of the same capture.",
        "- Accuracy on the held-out site; `chance` is its most frequent class's share; n counts the examples "
        "that fit / score the probe.",
        "",
    ]
    lines += [
        "## The chosen views against the targets",
        "",
        "Each label as the part of the model that reads it would see it (the router its views, each expert "
        "its protocol's constellation views, WiFi's with its pilot-tracked one, mobility the experts' sent-power "
        "views side by side, SNR every view), with the best column "
        "of the tables below beside it.",
        "",
        "| label | target | chosen views | "
        + " | ".join(CAPTURE_TITLES[name] for name in CAPTURES)
        + " | best column |",
        "|---|---|---|" + "---|" * len(CAPTURES) + "---|",
    ]
    for task in TASKS:
        target, chosen = TARGETS[task.target]
        by_capture = {row.capture: row for row in rows if row.task is task}
        cells = []
        for name in CAPTURES:
            value = by_capture[name].accuracy.get(chosen) if name in by_capture else None
            verdict = "" if value is None else (" met" if value >= target else " missed")
            cells.append(_percent(value) + verdict)
        analysis = by_capture.get(CAPTURES[0])
        scored = {k: v for k, v in (analysis.accuracy if analysis else {}).items() if v is not None}
        best = max(scored, key=lambda k: scored[k]) if scored else None
        best_cell = "n/a" if best is None else f"{best}: {_percent(scored[best])}"
        lines.append(f"| {task.title} | {_percent(target)} | {chosen} | " + " | ".join(cells) + f" | {best_cell} (a) |")
    lines.append("")
    for task in TASKS:
        lines += [f"## {task.title}", ""]
        lines.append("| capture | n fit / scored | chance | " + " | ".join(names) + " |")
        lines.append("|---|---|---|" + "---|" * len(names))
        for row in rows:
            if row.task is not task:
                continue
            cells = [_percent(row.accuracy[name]) for name in names]
            lines.append(
                f"| {CAPTURE_TITLES[row.capture]} | {row.n_train} / {row.n_heldout} | {_percent(row.chance)} | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    protocol = TASKS[0]
    lines += [
        "## Protocol by SNR",
        "",
        "The protocol probes above, their held-out accuracy per SNR (signals only: `none` has no SNR).",
        "",
        "| capture | SNR | n scored | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for row in rows:
        if row.task is not protocol:
            continue
        for snr, (count, accuracy) in row.by_snr.items():
            if count:
                cells = [_percent(accuracy[name]) for name in names]
                lines.append(f"| {CAPTURE_TITLES[row.capture]} | {snr:g} dB | {count} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def run_probe(
    out: Path,
    report: Path,
    size: ProbeSize,
    seed: int,
    command: Sequence[str],
    progress: bool = True,
    params: SpectrogramParams = DEFAULT_PARAMS,
    workers: int = 1,
) -> list[ProbeRow]:
    """Generate (or reuse) the probe set under `out` on `workers` processes, fit the probes, write
    the table to `report`."""
    views = probe_views(params)
    n_samples = stream_samples(views, params)
    cache = ProbeCache(Path(out) / "cache", seed, views, n_samples, params)
    cache.fill({"train": size.n_train, "heldout": size.n_heldout}, progress, workers)
    rows = score(
        views, cache.load("train", size.n_train), cache.load("heldout", size.n_heldout), seed, progress, workers
    )
    text = render_markdown(shlex.join(command), seed, size, views, rows, n_samples)
    Path(report).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(report, text)
    return rows


STORED_BATCH = 256
"""Examples of a stored dataset pooled at once (a wideband view of 20 000 examples would be 1.3 GB)."""


def _stored_features(
    folder: Path, names: Sequence[str], progress: bool, limit: int | None = None
) -> tuple[list[dict], dict[str, np.ndarray]]:
    """(label rows, pooled features of each view `names`) of the first `limit` examples (all
    when None) of a dataset folder."""
    from lwmspectro.dataset import open_dataset

    dataset = open_dataset(folder)
    missing = [name for name in names if name not in dataset.views]
    if missing:
        raise ValueError(
            f"{folder} stores no view {', '.join(map(repr, missing))}; it stores {', '.join(dataset.views)}"
        )
    features: dict[str, list[np.ndarray]] = {name: [] for name in names}
    count = len(dataset) if limit is None else min(limit, len(dataset))
    starts = range(0, count, STORED_BATCH)
    for start in tqdm(starts, desc=str(folder), unit="batch", disable=not progress, dynamic_ncols=True):
        rows = range(start, min(start + STORED_BATCH, count))
        for name in names:
            features[name].extend(pooled_features(x) for x in dataset.view(name, rows))
    return dataset.labels[:count], {name: np.stack(values) for name, values in features.items()}


def probe_datasets(
    fit: Path,
    scored: Path,
    columns: Sequence[Sequence[str]],
    targets: Sequence[str] = ("protocol",),
    seed: int = 0,
    progress: bool = True,
    fit_limit: int | None = None,
    workers: int = 1,
) -> str:
    """Linear probes of views already stored in two labelled datasets (`lwmspectro generate`):
    fitted on `fit`, scored on `scored`, one column per list of view names (their pooled
    features side by side), for the tasks of `targets` (TASKS' targets), on the first
    `fit_limit` examples of `fit` (all when None), the columns on `workers` processes. A markdown report:
    accuracy per column, by SNR, and for the protocol the share of each class read right.
    Nothing is generated, so a view is compared on a corpus as large as one was made."""
    known = {task.target: task for task in TASKS}
    unknown = [target for target in targets if target not in known]
    if unknown:
        raise ValueError(f"unknown probe targets {unknown}; valid: {', '.join(known)}")
    names = list(dict.fromkeys(name for column in columns for name in column))
    fit_rows, fit_features = _stored_features(fit, names, progress, fit_limit)
    scored_rows, scored_features = _stored_features(scored, names, progress)
    lines = [f"Linear probes fitted on `{fit}` ({len(fit_rows)} examples), scored on `{scored}` (seed {seed}).", ""]
    for target in targets:
        task = known[target]
        fit_keep = [i for i, row in enumerate(fit_rows) if task.keep(row)]
        scored_keep = [i for i, row in enumerate(scored_rows) if task.keep(row)]
        fit_y = [task.label(fit_rows[i]) for i in fit_keep]
        truth = np.asarray([task.label(scored_rows[i]) for i in scored_keep])
        snr = np.array(
            [scored_rows[i]["snr_db"] if scored_rows[i]["snr_db"] is not None else np.nan for i in scored_keep]
        )
        classes = sorted(set(truth.tolist()), key=str)
        snrs = sorted(float(s) for s in set(snr[np.isfinite(snr)].tolist()))
        lines += [
            f"## {task.title}",
            "",
            f"{len(fit_keep)} examples fit the probe, {len(scored_keep)} score it.",
            "",
            "| views | accuracy | "
            + " | ".join(f"{c}" for c in classes)
            + " | "
            + " | ".join(f"{s:g} dB" for s in snrs)
            + " |",
            "|---" * (2 + len(classes) + len(snrs)) + "|",
        ]
        predictions = column_predictions(
            (
                (
                    np.concatenate([fit_features[name][fit_keep] for name in column], axis=1),
                    fit_y,
                    np.concatenate([scored_features[name][scored_keep] for name in column], axis=1),
                )
                for column in columns
            ),
            seed,
            workers,
        )
        for column, predicted in zip(columns, predictions):
            right = np.zeros(len(truth), bool) if predicted is None else predicted == truth
            cells = [_percent(float(right.mean()) if len(right) else None)]
            cells += [_percent(float(right[truth == c].mean())) for c in classes]
            cells += [_percent(float(right[snr == s].mean())) for s in snrs]
            lines.append(f"| {' + '.join(column)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)

"""What the LWM-Spectro blocks share: tag keys, PMT conversions of readouts, bundle loading, errors,
and the base of the blocks fed by the readout port."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pmt
from gnuradio import gr

from lwmspectro import readout as readout_schema
from lwmspectro import views as view_registry
from lwmspectro.bundle import Bundle, BundleError, default_bundle_dir
from lwmspectro.runtime import Runtime

TAG_WINDOW_START = "window_start"
"""Source sample offset where a spectrogram's analysis window starts (uint64)."""
TAG_RX_TIME = "rx_time"
"""UHD's time tag: (uint64 seconds, double fractional seconds) of the tagged sample."""
TAG_RX_FREQ = "rx_freq"
"""Centre frequency in Hz (double) from the tagged sample on."""
TAG_RX_RATE = "rx_rate"
"""Sample rate in Hz (double) from the tagged sample on (UHD's and the LWM SigMF Source's)."""
TAG_INVALID = "lwm_invalid"
"""Why a window cannot be judged (symbol, one of readout.INVALID_REASONS)."""
TAG_POWER = "lwm_power_db"
"""A judged window's power in dB of full scale (double, lwmspectro.framer's power_db): the
classifier's tracker starts a new track when it jumps."""
TAG_CLOCK = "lwm_clock"
"""time.monotonic() when the window's last sample reached the spectrogram block (double);
the classifier measures a readout's latency from it."""
TAG_TRUTH = "lwm_truth"
"""Ground-truth labels of a synthetic observation (PMT dict), at its first sample."""
TAG_SKIPPED = "lwm_skipped"
"""Windows a spectrogram keeping up with a live stream skipped just before the tagged one
(uint64); the classifier counts them as seen and dropped."""
TAG_ROUTE = "lwm_route"
"""The router's class probabilities of a window whose views were routed (f64vector, the
bundle's router classes in order): the classifier takes them rather than route it again."""
TAG_ESTIMATES = "lwm_estimates"
"""The blind estimates the views of a window made (PMT dict: view name -> dict of estimates,
e.g. symbol_starts and cfo_subcarriers of a symbol-aligned view)."""

READOUT_PORT = "readout"
DROPS_PORT = "drops"
"""A source's loss counters (PMT dict with samples_dropped), from the LWM ZMQ Source to the receiver."""


class ConfigError(ValueError):
    """A block parameter that cannot work; the message names the block, the value and the fix."""


def is_number(value: Any) -> bool:
    """Whether `value` is a finite real number (a boolean or text typed into a GRC field is not)."""
    numeric = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    return numeric and bool(np.isfinite(value))


def whole_number(value: Any, least: int, block_label: str, what: str) -> int:
    """`value` as an int of at least `least`, or a ConfigError naming the block, the setting and
    the value (text, a fraction or a boolean typed into a GRC field included)."""
    if not is_number(value) or value != int(value):
        raise ConfigError(f"{block_label}: {what} {value!r} is not a whole number")
    if int(value) < least:
        raise ConfigError(f"{block_label}: {what} {value!r}; give at least {least}")
    return int(value)


def finite_number(value: Any, block_label: str, what: str, hint: str, *, positive: bool = False) -> float:
    """`value` as a float of at least 0 (above 0 when `positive`), or a ConfigError naming the
    block, the setting and the value and ending with `hint`, what to give (text, NaN, infinity or
    a boolean typed into a GRC field included)."""
    if not is_number(value) or value < 0 or (positive and value == 0):
        raise ConfigError(f"{block_label}: {what} {value!r}; {hint}")
    return float(value)


def zmq_endpoint(address: Any, block_label: str, example: str, *, any_port: bool = False) -> str:
    """`address` as a ZeroMQ endpoint, or a ConfigError naming the block and suggesting `example`:
    a non-empty string whose TCP port, if any, is 1-65535 (or `*` where `any_port`, for a bind)."""
    if not isinstance(address, str) or not address:
        raise ConfigError(f"{block_label}: address {address!r} is not an endpoint; give one such as {example}")
    port = address.rpartition(":")[2]
    wildcard = any_port and port == "*"
    if address.startswith("tcp://") and not wildcard and (not port.isdigit() or not 0 < int(port) <= 65535):
        raise ConfigError(f"{block_label}: {address!r} has no port from 1 to 65535; give one such as {example}")
    return address


def to_pmt(value):
    """pmt.to_pmt for plain Python values, after turning numpy scalars and arrays into them."""
    if isinstance(value, dict):
        return pmt.to_pmt({str(k): _plain(v) for k, v in value.items()})
    return pmt.to_pmt(_plain(value))


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def readout_to_pmt(readout: dict):
    """A readout dict as a PMT dict holding every field of readout.FIELDS (None as PMT_NIL)."""
    return to_pmt({key: readout.get(key) for key in readout_schema.FIELDS})


def readout_from_pmt(message) -> dict:
    """The readout dict carried by a PMT message, fields in readout.FIELDS order (as the CLI
    prints them); ValueError when it is not one."""
    if not pmt.is_dict(message):
        raise ValueError(f"expected a readout PMT dict, got {pmt.write_string(message)[:80]}")
    value = pmt.to_python(message)
    missing = [key for key in readout_schema.FIELDS if key not in value]
    if missing:
        raise ValueError(f"readout message lacks fields {missing}")
    return {key: value[key] for key in readout_schema.FIELDS}


def rx_time_to_seconds(value) -> float:
    """Seconds from an rx_time tag value (uint64 seconds, double fraction)."""
    return float(pmt.to_uint64(pmt.tuple_ref(value, 0))) + pmt.to_double(pmt.tuple_ref(value, 1))


def rx_time_pmt(whole_seconds: int, fraction: float):
    """An rx_time tag value; the fraction is folded into [0, 1)."""
    carry = math.floor(fraction)
    return pmt.make_tuple(pmt.from_uint64(int(whole_seconds + carry)), pmt.from_double(fraction - carry))


def _estimate_to_pmt(value):
    """An estimate as PMT: integer arrays (sample offsets) as s32 vectors, other arrays as f64
    vectors, the uniform vectors pmt.to_python turns back into numpy arrays."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iu":
            return pmt.init_s32vector(value.size, value.ravel().tolist())
        return pmt.init_f64vector(value.size, value.astype(np.float64).ravel().tolist())
    return to_pmt(value)


def estimates_to_pmt(estimates: Mapping[str, Mapping[str, Any]]):
    """A window's estimates as a PMT dict of dicts (view name -> estimate name -> value)."""
    outer = pmt.make_dict()
    for view, values in estimates.items():
        inner = pmt.make_dict()
        for key, value in values.items():
            inner = pmt.dict_add(inner, pmt.intern(key), _estimate_to_pmt(value))
        outer = pmt.dict_add(outer, pmt.intern(view), inner)
    return outer


def describe_views(names: Sequence[str], shapes: Sequence[tuple[int, int]]) -> str:
    """The layout of a vector of views: "wideband 128 x 128 + cp_profile 4 x 64"."""
    return " + ".join(f"{name} {T} x {K}" for name, (T, K) in zip(names, shapes))


BlockViews = str | Sequence[Any]
"""What a block's `views` parameter takes: '' for the bundle's views, names (a comma-separated
string or a list) of the bundle's views or of lwmspectro.views.VIEWS, or view parameters."""


def resolve_views(chosen: BlockViews, bundle: Bundle, block_label: str) -> tuple[Any, ...]:
    """The views a block computes or reads: the bundle's ('' or empty), else those named, each
    name the bundle's view of that name or else the registered one."""
    if isinstance(chosen, str):
        chosen = [name.strip() for name in chosen.split(",") if name.strip()]
    if not chosen:
        return bundle.views
    known = dict(zip(bundle.view_names, bundle.views))
    resolved = []
    for entry in chosen:
        if not isinstance(entry, str):
            view_registry.view_shape(entry)  # a TypeError for what is not a view's parameters
            resolved.append(entry)
        elif entry in known or entry in view_registry.VIEWS:
            resolved.append(known.get(entry, view_registry.VIEWS.get(entry)))
        else:
            raise ConfigError(
                f"{block_label}: unknown view {entry!r}; give names of the bundle's views "
                f"({', '.join(bundle.view_names)}) or of registered views ({', '.join(view_registry.VIEWS)}), "
                "or leave the views empty for the bundle's"
            )
    for i, params in enumerate(resolved):
        if params in resolved[:i]:
            raise ConfigError(f"{block_label}: view {view_registry.view_name(params)!r} is listed twice")
    return tuple(resolved)


BlockBundle = Bundle | str | os.PathLike
"""What a block's `bundle` parameter takes: a loaded Bundle, a bundle folder (or its card.json,
which is what a GRC file dialog picks), or '' for the shipped model."""


def resolve_bundle(bundle: str | os.PathLike, block_label: str) -> Path:
    """The bundle folder a block uses: `bundle` (the folder or its card.json), or the shipped
    one when it is empty."""
    if bundle:
        path = Path(bundle)
        return path.parent if path.name == "card.json" else path
    try:
        return default_bundle_dir()
    except BundleError as err:
        raise ConfigError(f"{block_label}: no bundle given and {err}") from err


@contextlib.contextmanager
def _bundle_errors_as_config(where: object, block_label: str) -> Iterator[None]:
    try:
        yield
    except BundleError as err:
        raise ConfigError(
            f"{block_label}: bundle {str(where)!r} cannot be used: {err}. Fix: set the "
            "bundle parameter to a model bundle folder (card.json beside its ONNX files), "
            "or leave it empty for the shipped model"
        ) from err


def load_bundle(bundle: BlockBundle, block_label: str) -> Bundle:
    """The Bundle a block uses, read once ('' = the shipped one); a bundle that cannot be used
    is a ConfigError naming the fix."""
    if isinstance(bundle, Bundle):
        return bundle
    folder = resolve_bundle(bundle, block_label)
    with _bundle_errors_as_config(folder, block_label):
        return Bundle.load(folder)


def load_runtime(bundle: Runtime | BlockBundle, block_label: str) -> Runtime:
    """The Runtime a block uses: `bundle` itself when it is already a loaded Runtime (or
    anything with its interface), else one on that bundle; graphs that cannot be used are a
    ConfigError naming the fix."""
    if not isinstance(bundle, (Bundle, str, os.PathLike)):
        return bundle
    loaded = load_bundle(bundle, block_label)
    with _bundle_errors_as_config(loaded.path, block_label):
        return Runtime(loaded)


class ReadoutSink(gr.basic_block):
    """A block with only the `readout` message input. Subclasses define
    handle_readout(readout, message): each readout message reaches it as a readout dict, with
    the PMT dict it came in for keys beside the readout fields (the classifier's `truth`).
    Anything else is logged and dropped, so that one stray message does not stop the flowgraph."""

    def __init__(self, name: str):
        gr.basic_block.__init__(self, name=name, in_sig=None, out_sig=None)
        self.message_port_register_in(pmt.intern(READOUT_PORT))
        self.set_msg_handler(pmt.intern(READOUT_PORT), self._receive)

    def _receive(self, message) -> None:
        try:
            readout = readout_from_pmt(message)
        except ValueError as err:
            self.logger.warn(f"ignored a message that is not a readout: {err}")
            return
        self.handle_readout(readout, message)

"""G as a set of named views (paper Eq. 10 with C > 1): each view is a frozen parameter
dataclass plus one pure function of the source-rate I/Q, so that a manifest or a model card
names the views it uses as data, ``{"name": ..., "params": {...}}``, and training and the
live blocks compute them with the same code.

* ``wideband``: today's G (`lwmspectro.spectrogram`), unchanged; its parameters are
  `SpectrogramParams`, the dict a shipped card holds under ``spectrogram``.

Every view reads the I/Q at any source rate, resamples it to its own analysis rate and
estimates whatever it needs (symbol timing, CFO) blindly from the samples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from .config_base import ConfigBase
from .resample import rational_ratio
from .spectrogram import SpectrogramParams, spectrogram


class _ViewKind(NamedTuple):
    params_type: type[ConfigBase]
    compute: Callable[[Any, np.ndarray, float], np.ndarray]
    """One observation: (params, 1-D source-rate I/Q of at least min_source_samples, rate) -> (T, K)."""
    shape: Callable[[Any], tuple[int, int]]
    analysis_samples: Callable[[Any], int]
    """Samples the view reads at its analysis rate."""
    analysis_rate_hz: Callable[[Any], float]


def _wideband(params: SpectrogramParams, iq: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    return spectrogram(iq, params, sample_rate_hz)


_KINDS: dict[str, _ViewKind] = {
    "wideband": _ViewKind(
        SpectrogramParams,
        _wideband,
        lambda p: p.shape,
        lambda p: p.window_samples,
        lambda p: p.sample_rate_hz,
    ),
}

VIEWS: dict[str, Any] = {
    "wideband": SpectrogramParams(),
}
"""Every registered view by name, with its default parameters."""


def _kind_of(params: Any) -> tuple[str, _ViewKind]:
    for name, kind in _KINDS.items():
        if type(params) is kind.params_type:
            return name, kind
    raise TypeError(f"{type(params).__name__} is not the parameters of a view; views: {', '.join(_KINDS)}")


def view_name(params: Any) -> str:
    """The name of the kind of view `params` describe (``wideband``, ...)."""
    return _kind_of(params)[0]


def view_to_dict(params: Any) -> dict[str, Any]:
    """``{"name": kind, "params": {...}}``: how a manifest or card records a view."""
    name, _kind = _kind_of(params)
    return {"name": name, "params": params.to_dict()}


def view_from_dict(values: Mapping[str, Any], where: str = "view") -> Any:
    """The view parameters `values` (as written by view_to_dict) describe; a ValueError naming
    `where` and the field when they do not."""
    if not isinstance(values, Mapping) or set(values) != {"name", "params"}:
        raise ValueError(f"{where}: a view is an object with exactly the keys 'name' and 'params'")
    kind = _KINDS.get(values["name"])
    if kind is None:
        raise ValueError(f"{where}.name: unknown view {values['name']!r}; valid: {', '.join(_KINDS)}")
    if not isinstance(values["params"], Mapping):
        raise ValueError(f"{where}.params: {values['params']!r} is not an object")
    return kind.params_type.from_dict(values["params"], f"{where}.params")


def view_shape(params: Any) -> tuple[int, int]:
    """(T, K) of the array compute_view gives for one observation."""
    return _kind_of(params)[1].shape(params)


def min_source_samples(params: Any, sample_rate_hz: float) -> int:
    """Source-rate samples the view needs: those that resample to the samples it reads."""
    kind = _kind_of(params)[1]
    up, down = rational_ratio(sample_rate_hz, kind.analysis_rate_hz(params))
    return -(-kind.analysis_samples(params) * down // up)


def compute_view(params: Any, iq: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """The view of the observation `iq` (..., N) at `sample_rate_hz`: (..., T, K) float32.

    The whole of `iq` is resampled, the view reads its first samples at the analysis rate:
    pass the observation (min_source_samples or a little more), not a long stream."""
    name, kind = _kind_of(params)
    iq = np.asarray(iq)
    if iq.ndim == 0:
        raise ValueError(f"view {name!r}: I/Q must be an array of samples, got a scalar")
    needed = min_source_samples(params, sample_rate_hz)
    if iq.shape[-1] < needed:
        raise ValueError(f"view {name!r} needs {needed} samples at {sample_rate_hz / 1e6:g} MS/s, got {iq.shape[-1]}")
    if not np.isfinite(iq).all():
        raise ValueError(f"view {name!r}: the I/Q holds NaN or Inf samples")
    rows = iq.reshape(-1, iq.shape[-1])
    out = np.zeros((len(rows), *kind.shape(params)), np.float32)
    for i, row in enumerate(rows):
        out[i] = kind.compute(params, row, sample_rate_hz)
    return out.reshape(*iq.shape[:-1], *out.shape[1:])

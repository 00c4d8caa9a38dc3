"""Spectrogram G (paper Eq. 7-10): the one definition used by training and the live blocks.

How a waveform becomes the model's input:

* The I/Q is brought to the analysis rate ``sample_rate_hz`` (30.72 MS/s by default,
  which holds 20 MHz WiFi, LTE and NR channels), centred on the signal: the carrier
  of interest sits at DC.
* T frames of N_w samples start every R samples (R may exceed N_w: the frames sample a
  long observation sparsely, so that an observation spans several fading periods at
  pedestrian speeds while the STFT still resolves a 240 kHz grid).
* Each frame is windowed, transformed (Eq. 7), its power taken (Eq. 9), DC centred
  (fftshift), and the N_w bins are reduced to K by averaging groups of adjacent bins.
* The power is log-scaled (10 log10 with a floor) and normalised per window to zero
  mean and unit variance, which makes G invariant to receiver gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.signal

from .config_base import ConfigBase
from .resample import rational_ratio, resample_to


@dataclass(frozen=True)
class SpectrogramParams(ConfigBase):
    """Parameters of G, written into every dataset manifest and every model card."""

    keys_name: ClassVar[str] = "spectrogram parameters"

    sample_rate_hz: float = 30.72e6
    n_fft: int = 128
    hop: int = 3840
    n_frames: int = 128
    n_bins: int = 128
    window: str = "hann"
    log_floor_db: float = -200.0
    normalisation: str = "per_window_zscore"

    def __post_init__(self):
        if self.n_fft % self.n_bins:
            raise ValueError(f"n_fft ({self.n_fft}) must be a multiple of n_bins ({self.n_bins})")
        if min(self.n_fft, self.hop, self.n_frames, self.n_bins) < 1:
            raise ValueError("n_fft, hop, n_frames and n_bins must be positive")
        if self.normalisation not in ("per_window_zscore", "none"):
            raise ValueError(f"unknown normalisation {self.normalisation!r}; valid: per_window_zscore, none")

    @property
    def window_samples(self) -> int:
        """Samples one observation spans at the analysis rate: (T - 1) R + N_w (Eq. 8)."""
        return (self.n_frames - 1) * self.hop + self.n_fft

    def source_window_samples(self, sample_rate_hz: float) -> int:
        """Source-rate samples one observation spans once resampled to the analysis rate."""
        up, down = rational_ratio(sample_rate_hz, self.sample_rate_hz)
        return -(-self.window_samples * down // up)

    @property
    def window_seconds(self) -> float:
        return self.window_samples / self.sample_rate_hz

    @property
    def frame_starts(self) -> np.ndarray:
        """Offsets of the T frames inside an observation."""
        return np.arange(self.n_frames) * self.hop

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_frames, self.n_bins)


DEFAULT_PARAMS = SpectrogramParams()


def frames_from_iq(iq: np.ndarray, params: SpectrogramParams = DEFAULT_PARAMS, start: int = 0) -> np.ndarray:
    """The T frames of N_w samples of the observation starting at `start`: (..., T, N_w)."""
    iq = np.asarray(iq)
    end = start + params.window_samples
    if iq.shape[-1] < end:
        raise ValueError(
            f"need {params.window_samples} samples from offset {start} at "
            f"{params.sample_rate_hz / 1e6:g} MS/s for one spectrogram, got {iq.shape[-1] - start}"
        )
    index = start + params.frame_starts[:, None] + np.arange(params.n_fft)[None, :]
    return iq[..., index]


def spectrogram_from_frames(frames: np.ndarray, params: SpectrogramParams = DEFAULT_PARAMS) -> np.ndarray:
    """G applied to frames already cut from the analysis-rate I/Q: (..., T, N_w) -> (..., T, K) float32.

    The frames are cut by hand rather than by scipy.signal.stft because the hop R may be
    larger than N_w (sparse frames), which scipy's STFT does not allow, and because the
    generator produces only the frame samples, never the whole observation.
    """
    frames = np.asarray(frames)
    if frames.shape[-2:] != (params.n_frames, params.n_fft):
        raise ValueError(f"frames must end in shape {(params.n_frames, params.n_fft)}, got {frames.shape}")
    window = scipy.signal.get_window(params.window, params.n_fft, fftbins=True).astype(np.float32)
    spectrum = np.fft.fftshift(np.fft.fft(frames.astype(np.complex64) * window, axis=-1), axes=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    group = params.n_fft // params.n_bins
    if group > 1:
        power = power.reshape(*power.shape[:-1], params.n_bins, group).mean(axis=-1)
    floor = np.float32(10.0 ** (params.log_floor_db / 10.0))
    log_power = 10.0 * np.log10(np.maximum(power, floor))
    if params.normalisation == "per_window_zscore":
        mean = log_power.mean(axis=(-2, -1), keepdims=True)
        std = log_power.std(axis=(-2, -1), keepdims=True)
        log_power = (log_power - mean) / np.maximum(std, np.float32(1e-6))
    return log_power.astype(np.float32)


def spectrogram(
    iq: np.ndarray,
    params: SpectrogramParams = DEFAULT_PARAMS,
    sample_rate_hz: float | None = None,
    start: int = 0,
) -> np.ndarray:
    """G of one observation of `iq` (..., N): resampled to the analysis rate when
    `sample_rate_hz` differs from it, then framed from `start` (an analysis-rate offset)."""
    if sample_rate_hz is not None and sample_rate_hz != params.sample_rate_hz:
        iq = resample_to(iq, sample_rate_hz, params.sample_rate_hz)
    return spectrogram_from_frames(frames_from_iq(iq, params, start), params)


def spectrograms(iq: np.ndarray, params: SpectrogramParams = DEFAULT_PARAMS, stride: int | None = None) -> np.ndarray:
    """G of every whole observation in a 1-D analysis-rate stream, observations `stride` apart
    (default: back to back): (n_windows, T, K)."""
    stride = stride or params.window_samples
    n = 0 if len(iq) < params.window_samples else (len(iq) - params.window_samples) // stride + 1
    if n == 0:
        return np.zeros((0, *params.shape), np.float32)
    starts = np.arange(n) * stride
    index = starts[:, None, None] + params.frame_starts[None, :, None] + np.arange(params.n_fft)[None, None, :]
    return spectrogram_from_frames(np.asarray(iq)[index], params)

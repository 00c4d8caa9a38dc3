"""Input validity checks: windows the model cannot judge are reported, never classified.

The checks run on the raw I/Q of each observation before G, at the source rate (so that
an ADC's integer rails are still visible). `check_observation` is the rule the framer
applies: a non-finite sample anywhere in the observation's span makes it `nan_or_inf`
(the capture is broken there, and the resampler's filter would spread it); the other
faults are judged on the source samples under the frames G reads, which is what the model
sees and costs a few vectorised passes over 3 % of the span.
"""

from __future__ import annotations

import numpy as np

DC_RESIDUAL_FRACTION = 1e-4
"""A window whose power away from 0 Hz is below this fraction of its total power
(40 dB under the DC component) carries nothing but a constant."""

POWER_RANGE = (1e-22, 1e12)
"""Mean power (|x|^2, full scale 1) a window must have for the views to be computed: beyond,
amplitudes below 1e-11 or above 1e6, their float32 arithmetic (fourth powers of 2048-point FFT
bins) under- or overflows, and they read noise or NaN. A WiFi capture read the same from
1.4e-23 to 1.3e14 and failed at 1.4e-25 and 1.4e15; a CW's bins overflow from about 4e12. No
SDR delivers such samples; a simulation written in other units may, and is told to scale them."""

CLIPPED_FRACTION = 0.01
"""A window with at least this fraction of samples sitting exactly on the extreme value of
I or Q is clipped: an unclipped signal reaches its extreme in a handful of samples."""


def clipped_fraction(iq: np.ndarray) -> float:
    """Fraction of samples whose I or Q equals that component's maximum or minimum.

    Exact equality is deliberate: a clipper (or an ADC rail: int8 -128/+127, int16
    -32768/+32767 after scaling) writes the very same value again and again, while a
    constant-envelope signal (CW, FM) that merely comes close to its peak does not.
    Both rails of each component count, so asymmetric integer rails are caught too.
    """
    at_rail = np.zeros(iq.shape, bool)
    for component in (iq.real, iq.imag):
        at_rail |= (component == component.max()) | (component == component.min())
    return float(at_rail.mean())


def all_finite(iq: np.ndarray) -> bool:
    """Whether every sample is finite, in one BLAS pass when they are: the sum of squares of
    the components is finite unless one of them is NaN or Inf (or the sum overflows, which the
    exact element-wise test then settles)."""
    values = np.ascontiguousarray(iq)
    if values.dtype.kind == "c":
        values = values.view(values.real.dtype)
    if values.dtype.kind != "f":
        return True
    flat = values.ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.dot(flat, flat)):
            return True
    return bool(np.isfinite(values).all())


def check_observation(span: np.ndarray, read: np.ndarray) -> str | None:
    """The reason an observation cannot be judged, or None: "nan_or_inf" when any sample of
    `span` (all its source samples) is not finite, else `check_iq` of `read` (the source
    samples under the frames G reads)."""
    if not all_finite(span):
        return "nan_or_inf"
    return check_iq(read)


def check_iq(iq: np.ndarray) -> str | None:
    """The reason a window of complex samples cannot be judged, or None when it can.

    Reasons (readout.INVALID_REASONS): "nan_or_inf", "all_zero", "out_of_range", "dc_only", "clipped".
    """
    iq = np.asarray(iq)
    if iq.size == 0:
        return "too_short"
    if not np.iscomplexobj(iq):
        iq = iq.astype(np.complex64)
    if not np.isfinite(iq).all():
        return "nan_or_inf"
    power = iq.real.astype(np.float64) ** 2 + iq.imag.astype(np.float64) ** 2
    total = power.mean()
    if total == 0.0:
        return "all_zero"
    if not POWER_RANGE[0] <= total <= POWER_RANGE[1]:
        return "out_of_range"
    dc_power = abs(iq.mean(dtype=np.complex128)) ** 2
    if total - dc_power <= DC_RESIDUAL_FRACTION * total:
        return "dc_only"
    if clipped_fraction(iq) >= CLIPPED_FRACTION:
        return "clipped"
    return None

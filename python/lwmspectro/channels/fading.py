"""Temporally correlated Rayleigh and Rician fading with the Jakes/Clarke Doppler spectrum.

The processes follow the sum-of-sinusoids model of Xiao, Zheng & Beaulieu, "Novel
sum-of-sinusoids simulation models for Rayleigh and Rician fading channels", IEEE Trans.
Wireless Commun. 5(12), 2006, Eq. 6 and 18:

    X(t) = M^-1/2 sum_n exp(j (2 pi fD t cos(a_n) + phi_n)),   a_n = (2 pi n + theta_n) / M

with theta_n and phi_n independent and uniform on [-pi, pi). Each of the M arrival angles
is drawn inside its own 2 pi / M sector, so the ensemble autocorrelation is J0(2 pi fD tau)
for any M and the Doppler spectrum is confined to [-fD, fD]. A line-of-sight process adds
a specular component with its own Doppler shift fD cos(theta_0):

    Y(t) = (X(t) + sqrt(K) exp(j (2 pi fD t cos(theta_0) + phi_0))) / sqrt(1 + K).

Both have unit mean power. The process is a closed-form function of time, so it can be
evaluated at any set of instants (the frames a spectrogram reads) without generating the
samples in between; fD = 0 gives a constant random coefficient (a static channel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_SINUSOIDS = 20
"""Sinusoids per process: enough for a near-Gaussian marginal, cheap to evaluate."""

DEFAULT_LOS_AOA_RAD = np.pi / 4
"""Angle of arrival of a line-of-sight component relative to the direction of motion."""


@dataclass(frozen=True, eq=False)
class FadingProcess:
    """P independent unit-power fading processes with frozen random parameters."""

    doppler_hz: float
    cos_angles: np.ndarray  # (P, M): cos of each sinusoid's arrival angle
    phases: np.ndarray  # (P, M)
    k_factors: np.ndarray  # (P,) linear Rician K, 0 for Rayleigh
    los_cos_angle: float
    los_phases: np.ndarray  # (P,)

    def __call__(self, times_s) -> np.ndarray:
        """Complex coefficients at `times_s` (any shape S): shape (*S, P), complex64."""
        t = np.asarray(times_s, np.float64)[..., None]
        diffuse_angle = _wrapped_angle(self.doppler_hz * t[..., None] * self.cos_angles, self.phases)
        diffuse = (np.cos(diffuse_angle).sum(-1) + 1j * np.sin(diffuse_angle).sum(-1)) / np.sqrt(self.phases.shape[1])
        specular_angle = _wrapped_angle(self.doppler_hz * self.los_cos_angle * t, self.los_phases)
        specular = np.cos(specular_angle) + 1j * np.sin(specular_angle)
        k = self.k_factors
        return ((diffuse + np.sqrt(k) * specular) / np.sqrt(1.0 + k)).astype(np.complex64)


def _wrapped_angle(cycles: np.ndarray, phase_rad: np.ndarray) -> np.ndarray:
    """2 pi cycles + phase, wrapped to [-pi, pi] in float64 and then cast to float32:
    float32 cos/sin are an order of magnitude faster, and wrapping first keeps the angle
    at float32 precision (~3e-7 rad) however long the process runs."""
    cycles = cycles + phase_rad / (2.0 * np.pi)
    cycles -= np.rint(cycles)
    return (2.0 * np.pi * cycles).astype(np.float32)


def require_generator(rng) -> None:
    """Refuse anything but a numpy Generator, so that every draw is reproducible from a seed."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")


def jakes_fading(
    n_processes: int,
    doppler_hz: float,
    rng: np.random.Generator,
    k_factor_db=None,
    n_sinusoids: int = DEFAULT_SINUSOIDS,
    los_aoa_rad: float = DEFAULT_LOS_AOA_RAD,
) -> FadingProcess:
    """Draw `n_processes` independent fading processes at maximum Doppler `doppler_hz`.

    `k_factor_db` is None (all Rayleigh), one value for all processes, or one value per
    process, -inf marking a Rayleigh process. Call the result with times in seconds.
    """
    require_generator(rng)
    if int(n_processes) < 1:
        raise ValueError(f"n_processes must be at least 1, got {n_processes}")
    if int(n_sinusoids) < 1:
        raise ValueError(f"n_sinusoids must be at least 1, got {n_sinusoids}")
    if not np.isfinite(doppler_hz) or doppler_hz < 0:
        raise ValueError(f"doppler_hz must be finite and non-negative, got {doppler_hz}")
    n_processes, n_sinusoids = int(n_processes), int(n_sinusoids)
    if k_factor_db is None:
        k_factors = np.zeros(n_processes)
    else:
        k_db = np.broadcast_to(np.asarray(k_factor_db, np.float64), (n_processes,))
        if np.any(np.isnan(k_db) | np.isposinf(k_db)):
            raise ValueError(f"k_factor_db must be finite or -inf (Rayleigh), got {k_factor_db}")
        k_factors = 10.0 ** (k_db / 10.0)
    theta = rng.uniform(-np.pi, np.pi, (n_processes, n_sinusoids))
    angles = (2.0 * np.pi * np.arange(1, n_sinusoids + 1) + theta) / n_sinusoids
    return FadingProcess(
        doppler_hz=float(doppler_hz),
        cos_angles=np.cos(angles),
        phases=rng.uniform(-np.pi, np.pi, (n_processes, n_sinusoids)),
        k_factors=k_factors,
        los_cos_angle=float(np.cos(los_aoa_rad)),
        los_phases=rng.uniform(-np.pi, np.pi, n_processes),
    )

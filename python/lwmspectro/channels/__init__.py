"""Propagation channels and receiver impairments for the synthetic I/Q generator (numpy/scipy).

What a transmitted stream x goes through, in order:

1. A fading tapped-delay-line channel (paper Eq. 5-6, TR 38.901 7.7.2). Its profile is
   site-specific, from the ray-traced paths of one user (`TapProfile.from_paths`), or a
   standard TDL-A..E table (`tdl_profile`). Each path fades independently with the
   Jakes/Clarke Doppler spectrum (`jakes_fading`, sum of sinusoids after Xiao, Zheng &
   Beaulieu 2006), Rician for a line-of-sight path, at fD = v fc / c (`doppler_hz` of a
   speed `draw_speed` draws for a mobility class: the class is a range of fD). `TDLChannel.apply` filters a whole
   stream (taps held over blocks of min(256, fs / (50 fD)) samples);
   `TDLChannel.apply_frames` computes the output only at the frames a spectrogram reads
   (taps held within each frame), which is how datasets are made fast.
2. AWGN at the labelled SNR, defined inside the occupied bandwidth after the channel
   (`add_awgn`; `measure_snr_db` measures it back).
3. Optionally, the residual carrier and sampling frequency offsets left after
   compensation, and SDR receiver impairments (`impairments`).

    from lwmspectro.channels import (TapProfile, TDLChannel, add_awgn, doppler_hz,
                                     draw_speed, impairments, tdl_profile)
    profile = TapProfile.from_paths(delays_s, powers_lin, los=True)   # or tdl_profile("TDL-C", 100e-9)
    fd = doppler_hz(draw_speed("pedestrian", rng, carrier_hz), carrier_hz)
    ch = TDLChannel(profile, sample_rate_hz=30.72e6, doppler_hz=fd, rng=rng)
    offsets = impairments.draw_frequency_offsets(rng, carrier_hz)
    frames = ch.apply_frames(x, starts, 128, sampling_offset_ppm=offsets["sfo_ppm"])
    frames, noise_var = add_awgn(frames, snr_db, occupied_bw_hz, 30.72e6, None, rng, active=active)
    index = impairments.frame_sample_index(starts, 128)
    frames, cfo_labels = impairments.carrier_frequency_offset(frames, offsets["cfo_hz"], 30.72e6, index)
    frames, rx_labels = impairments.apply_random(frames, index, 30.72e6, rng)
"""

from . import impairments
from .fading import FadingProcess, jakes_fading
from .mobility import doppler_hz, draw_speed
from .noise import (
    add_awgn,
    band_normalised,
    coloured_noise,
    indexed_noise,
    mean_power,
    measure_snr_db,
    noise_colour,
    noise_key,
    noise_variance,
)
from .tdl import TDL_PROFILES, TapProfile, TDLChannel, fractional_delay_weights, tdl_profile

__all__ = [
    "TDL_PROFILES",
    "FadingProcess",
    "TDLChannel",
    "TapProfile",
    "add_awgn",
    "band_normalised",
    "coloured_noise",
    "doppler_hz",
    "draw_speed",
    "fractional_delay_weights",
    "impairments",
    "indexed_noise",
    "jakes_fading",
    "mean_power",
    "measure_snr_db",
    "noise_colour",
    "noise_key",
    "noise_variance",
    "tdl_profile",
]

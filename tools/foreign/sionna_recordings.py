"""Labelled SigMF recordings made by another toolkit (Sionna), to check the model on signals and
capture chains this project's generator never made.

- NR: Sionna's 5G NR PUSCH transmitter (TS 38.211/212: LDPC-coded transport blocks, scrambling,
  DMRS of type 1 or 2 with 0-3 additional positions and 1-3 CDM groups without data, MCS tables 1
  and 2) gives each slot's
  resource grid at 15 or 30 kHz; the grid is placed on a carrier of random width, slots are left
  empty at random (traffic), and each symbol is turned into time samples at 30.72 MS/s with the
  standard's cyclic prefixes (the longer one on the first symbol of each half-subframe).
- An 802.11-like OFDM modem: Sionna's resource grid (64-point FFT, 52 used subcarriers, pilots on
  +-7 and +-21, DC null) and OFDM modulator (16-sample prefix) at 20 MS/s, back to back, with no
  preamble and no gaps.
- Noise alone and a CW tone at 20, 23.04, 25 and 30.72 MS/s.

Each signal goes through Sionna's TR 38.901 TDL channel (profile A-E, delay spread 30-300 ns,
speed drawn for the mobility class), a carrier offset of up to 2 ppm and, for half of them, an
offset from DC; noise is added for the occupied-band SNR. Truth goes under the `lwm:` namespace
(protocol, modulation, snr_db, mobility, occupied_bw_hz, channel, speed_kmh, doppler_hz), so
`lwmspectro score` reads it.

Runs in a venv of its own, with numpy 2 (`make foreign`: `/usr/bin/python3 -m venv .venv-sionna`,
`.venv-sionna/bin/pip install -r tools/foreign/requirements.txt`, then
`.venv-sionna/bin/python tools/foreign/sionna_recordings.py --out data/foreign-sionna`). Sionna
2.2 brings a newer Sionna RT than the one the scenarios are traced with (.venv-rt).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import sigmf
import sionna
import torch
from sigmf import SigMFFile
from sionna.phy.channel import cir_to_ofdm_channel, subcarrier_frequencies
from sionna.phy.channel.tr38901 import TDL
from sionna.phy.mapping import Mapper
from sionna.phy.nr import PUSCHConfig, PUSCHTransmitter
from sionna.phy.ofdm import OFDMModulator, PilotPattern, ResourceGrid, ResourceGridMapper

NR_RATE = 30.72e6
WIFI_RATE = 20e6
NOISE_RATES = (20e6, 23.04e6, 25e6, 30.72e6)
BITS_TO_MODULATION = {2: "QPSK", 4: "16QAM", 6: "64QAM", 8: "256QAM"}
# MCS indices of each modulation: table 1 (up to 64QAM) and table 2 (256QAM), TS 38.214 5.1.3.1,
# from code rate 0.37 on: Sionna's LDPC encoder takes no rate under 1/3 on base graph 1.
MCS_CHOICES = {
    "QPSK": (1, range(5, 10)),
    "16QAM": (1, range(11, 17)),
    "64QAM": (1, range(17, 28)),
    "256QAM": (2, range(20, 28)),
}
SPEEDS_MPS = {"static": (0.0, 0.0), "pedestrian": (0.3, 2.0), "vehicular": (8.0, 33.0)}


def doppler_hz(speed_mps: float, carrier_hz: float) -> float:
    return speed_mps * carrier_hz / 299_792_458.0


def tdl_response(rng, n_symbols: int, symbol_s: float, n_fft: int, spacing_hz: float, carrier_hz: float, mobility: str):
    """(n_symbols, n_fft) frequency response, DC-centred order, of a TDL channel sampled once a
    symbol, and its labels (profile, speed, maximum Doppler)."""
    low, high = SPEEDS_MPS[mobility]
    speed = float(rng.uniform(low, high))
    profile = str(rng.choice(list("ABCDE")))
    model = TDL(
        profile,
        delay_spread=float(rng.uniform(30e-9, 300e-9)),
        carrier_frequency=carrier_hz,
        min_speed=speed,
        max_speed=speed,
    )
    a, tau = model(1, n_symbols, 1 / symbol_s)
    frequencies = subcarrier_frequencies(n_fft, spacing_hz)
    response = cir_to_ofdm_channel(frequencies, a, tau, normalize=True)
    channel = {"channel": f"TDL-{profile}", "speed_kmh": 3.6 * speed, "doppler_hz": doppler_hz(speed, carrier_hz)}
    return response.reshape(n_symbols, n_fft).numpy(), channel


def nr_grid(rng, spacing_khz: int, modulation: str, n_slots: int):
    """(symbols, subcarriers) of `n_slots` slots of a PUSCH carrier, its PRB count and its DMRS setup."""
    max_prbs = 106 if spacing_khz == 15 else 51
    n_carrier = int(rng.integers(max_prbs // 4, max_prbs + 1))
    n_bwp = int(rng.integers(max(1, n_carrier // 2), n_carrier + 1))
    table, indices = MCS_CHOICES[modulation]
    config = PUSCHConfig()
    config.carrier.subcarrier_spacing = spacing_khz
    config.carrier.n_size_grid = n_carrier
    config.carrier.n_cell_id = int(rng.integers(0, 1008))
    config.n_size_bwp = n_bwp
    config.n_start_bwp = int(rng.integers(0, n_carrier - n_bwp + 1))
    config.tb.mcs_table = table
    config.tb.mcs_index = int(rng.choice(indices))
    config.dmrs.config_type = int(rng.integers(1, 3))
    config.dmrs.additional_position = int(rng.integers(0, 4))
    # CDM groups without data (TS 38.214 5.1.6.2): the other groups' REs of DMRS symbols empty, the DMRS boosted.
    config.dmrs.num_cdm_groups_without_data = int(rng.integers(1, config.dmrs.config_type + 2))
    # TS 38.211 7.4.1.1.2: a third additional position only with the DMRS in symbol 2.
    config.dmrs.type_a_position = 2 if config.dmrs.additional_position == 3 else int(rng.integers(2, 4))
    config.num_layers = 1
    config.num_antenna_ports = 1
    load = float(rng.choice([1.0, rng.uniform(0.3, 1.0)]))
    transmitters: dict[int, PUSCHTransmitter] = {}
    slots = []
    for slot in range(n_slots):
        if rng.random() > load:
            slots.append(np.zeros((14, n_carrier * 12), np.complex64))
            continue
        # The DMRS sequence changes with the slot number, so each slot of a frame has its transmitter.
        number = slot % config.carrier.num_slots_per_frame
        if number not in transmitters:
            config.carrier.slot_number = number
            transmitters[number] = PUSCHTransmitter(config, output_domain="freq")
        grid = transmitters[number](1)[0][0, 0, 0].numpy()
        placed = np.zeros((14, n_carrier * 12), np.complex64)
        placed[:, config.n_start_bwp * 12 : (config.n_start_bwp + n_bwp) * 12] = grid
        slots.append(placed)
    setup = {
        "prbs": n_carrier,
        "bwp_prbs": n_bwp,
        "mcs_table": table,
        "mcs_index": config.tb.mcs_index,
        "dmrs_type": config.dmrs.config_type,
        "dmrs_additional": config.dmrs.additional_position,
        "dmrs_cdm_groups_without_data": config.dmrs.num_cdm_groups_without_data,
        "load": load,
    }
    return np.concatenate(slots), n_carrier, setup


def nr_modulate(grid: np.ndarray, spacing_khz: int) -> np.ndarray:
    """Time samples at 30.72 MS/s of NR symbols (rows of `grid`, subcarriers centred on DC), with
    the longer prefix on the first symbol of each half-subframe (TS 38.211 5.3.1)."""
    n_fft = 2048 if spacing_khz == 15 else 1024
    cp_long, cp_short = (160, 144) if spacing_khz == 15 else (88, 72)
    per_half = 7 if spacing_khz == 15 else 14
    n_sc = grid.shape[1]
    bins = (np.arange(n_sc) - n_sc // 2) % n_fft
    spectrum = np.zeros((len(grid), n_fft), np.complex64)
    spectrum[:, bins] = grid
    symbols = np.fft.ifft(spectrum, axis=1) * np.sqrt(n_fft)
    out = []
    for index, symbol in enumerate(symbols):
        cp = cp_long if index % per_half == 0 else cp_short
        out.append(np.concatenate([symbol[-cp:], symbol]))
    return np.concatenate(out).astype(np.complex64)


def wifi_like(rng, modulation: str, n_symbols: int):
    """(time samples at 20 MS/s, occupied subcarriers, pilots mask) of an 802.11-like OFDM stream."""
    bits = {"BPSK": 1, "QPSK": 2, "16QAM": 4, "64QAM": 6}[modulation]
    mask = np.zeros((1, 1, n_symbols, 52), bool)
    mask[..., [5, 19, 32, 46]] = True
    pilots = np.tile(np.array([1, 1, 1, -1], np.complex64), n_symbols)[None, None, :]
    pilots *= np.repeat(rng.choice([-1, 1], n_symbols), 4).astype(np.complex64)
    grid = ResourceGrid(
        num_ofdm_symbols=n_symbols,
        fft_size=64,
        subcarrier_spacing=312.5e3,
        cyclic_prefix_length=16,
        num_guard_carriers=(6, 5),
        dc_null=True,
        pilot_pattern=PilotPattern(torch.tensor(mask), torch.tensor(pilots)),
    )
    n_data = int(grid.num_data_symbols)
    mapper = Mapper("pam" if bits == 1 else "qam", bits)
    data = mapper(torch.tensor(rng.integers(0, 2, (1, 1, 1, n_data * bits)), dtype=torch.float32))
    return ResourceGridMapper(grid)(data)[0, 0, 0].numpy()


def add_noise(rng, signal: np.ndarray, snr_db: float, occupied_hz: float, rate: float) -> np.ndarray:
    power = float(np.mean(np.abs(signal[np.abs(signal) > 0]) ** 2))
    noise_density = power / (10 ** (snr_db / 10) * occupied_hz)
    noise = (rng.standard_normal(len(signal)) + 1j * rng.standard_normal(len(signal))) * np.sqrt(
        noise_density * rate / 2
    )
    return (signal + noise).astype(np.complex64)


def shifted(signal: np.ndarray, offset_hz: float, rate: float) -> np.ndarray:
    return (signal * np.exp(2j * np.pi * offset_hz / rate * np.arange(len(signal)))).astype(np.complex64)


def write(out: Path, name: str, iq: np.ndarray, rate: float, truth: dict, setup: dict) -> None:
    data = out / f"{name}.sigmf-data"
    np.asarray(iq, np.complex64).tofile(data)
    info = {
        "core:datatype": "cf32_le",
        "core:sample_rate": rate,
        "core:version": sigmf.__specification__,
        "core:recorder": f"sionna {sionna.__version__}",
        "core:description": json.dumps(setup),
        "core:extensions": [{"name": "lwm", "version": "1.0.0", "optional": True}],
        **{f"lwm:{key}": value for key, value in truth.items()},
    }
    meta = SigMFFile(data_file=data, global_info=info)
    meta.add_capture(0, metadata={"core:frequency": float(setup.get("carrier_hz", 0.0))})
    meta.tofile(out / f"{name}.sigmf-meta", overwrite=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=0.3)
    parser.add_argument("--nr", type=int, default=24, help="NR recordings")
    parser.add_argument("--wifi", type=int, default=12, help="802.11-like recordings")
    parser.add_argument("--noise", type=int, default=8, help="noise-alone recordings (and as many CW)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    sionna.phy.config.seed = args.seed
    mobilities = ["static", "pedestrian", "vehicular"]
    for index in range(args.nr):
        spacing = [15, 30][index % 2]
        modulation = list(MCS_CHOICES)[(index // 2) % 4]
        mobility = mobilities[(index // 8) % 3]
        snr_db = float(rng.choice([0, 5, 10, 15, 20, 25, 30]))
        carrier_hz = float(rng.uniform(2.5e9, 4.0e9))
        slot_s = 1e-3 * 15 / spacing
        n_slots = int(np.ceil(args.seconds / slot_s))
        grid, n_prbs, setup = nr_grid(rng, spacing, modulation, n_slots)
        symbol_s = slot_s / 14
        response, channel = tdl_response(rng, len(grid), symbol_s, grid.shape[1], spacing * 1e3, carrier_hz, mobility)
        iq = nr_modulate(grid * response, spacing)
        offset = float(rng.choice([0.0, rng.uniform(-1, 1) * (NR_RATE / 2 - n_prbs * 6 * spacing * 1e3) * 0.8]))
        iq = shifted(iq, offset + rng.uniform(-2e-6, 2e-6) * carrier_hz, NR_RATE)
        iq = add_noise(rng, iq, snr_db, setup["bwp_prbs"] * 12 * spacing * 1e3, NR_RATE)
        truth = {"protocol": "nr", "modulation": modulation, "snr_db": snr_db, "mobility": mobility, **channel}
        truth["occupied_bw_hz"] = setup["bwp_prbs"] * 12 * spacing * 1e3
        write(
            out,
            f"nr-{index:02d}",
            iq,
            NR_RATE,
            truth,
            {**setup, "scs_khz": spacing, "offset_hz": offset, "carrier_hz": carrier_hz},
        )
    for index in range(args.wifi):
        modulation = ["BPSK", "QPSK", "16QAM", "64QAM"][index % 4]
        mobility = ["static", "pedestrian"][(index // 4) % 2]
        snr_db = float(rng.choice([5, 10, 15, 20, 25, 30]))
        carrier_hz = float(rng.choice([2.412e9, 5.18e9, 5.5e9]))
        n_symbols = int(args.seconds / 4e-6)
        grid = wifi_like(rng, modulation, n_symbols)
        response, channel = tdl_response(rng, n_symbols, 4e-6, 64, 312.5e3, carrier_hz, mobility)
        iq = OFDMModulator(16)(torch.tensor(grid * response)).numpy().astype(np.complex64)
        iq = shifted(iq, rng.uniform(-2e-6, 2e-6) * carrier_hz, WIFI_RATE)
        iq = add_noise(rng, iq, snr_db, 52 * 312.5e3, WIFI_RATE)
        truth = {"protocol": "wifi", "modulation": modulation, "snr_db": snr_db, "mobility": mobility, **channel}
        truth["occupied_bw_hz"] = 52 * 312.5e3
        write(out, f"ofdm64-{index:02d}", iq, WIFI_RATE, truth, {"carrier_hz": carrier_hz})
    for index in range(args.noise):
        rate = NOISE_RATES[index % len(NOISE_RATES)]
        n = int(args.seconds * rate)
        noise = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) * float(rng.uniform(0.01, 1))).astype(
            np.complex64
        )
        write(out, f"noise-{index:02d}", noise, rate, {"protocol": "none"}, {"rate": rate})
        tone = shifted(np.full(n, float(rng.uniform(0.1, 1)), np.complex64), rng.uniform(-0.4, 0.4) * rate, rate)
        write(
            out,
            f"cw-{index:02d}",
            add_noise(rng, tone, float(rng.choice([10, 20, 30])), 15e3, rate),
            rate,
            {"protocol": "other"},
            {"rate": rate},
        )


if __name__ == "__main__":
    main()

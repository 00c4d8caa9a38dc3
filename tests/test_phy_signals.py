"""Reference and sync signals at their resource elements: demodulate the generated waveform like
a receiver would (timing from the labelled start) and compare; decode WiFi SIGNAL and DATA."""

import numpy as np
import pytest

from lwmspectro.phy import bcc, generate, lte, nr, wifi
from lwmspectro.phy.common import constellation

# --- LTE ----------------------------------------------------------------------------------------


def lte_grid(wf):
    """Demodulated resource grid of each whole subframe: (subframes, 14, N_sc) and their numbers."""
    n_fft, (cp0, cp) = wf.meta["n_fft"], wf.meta["cp"]
    n_sc = 12 * wf.meta["n_rb"]
    sf_len = 2 * (cp0 + n_fft + 6 * (cp + n_fft))
    start = wf.meta["start_sample"]
    offset = (-start) % sf_len
    first_number = -(-start // sf_len)
    k = np.arange(n_sc)
    bins = np.mod(np.where(k < n_sc // 2, k - n_sc // 2, k - n_sc // 2 + 1), n_fft)
    grids, numbers = [], []
    pos = offset
    while pos + sf_len <= len(wf.iq):
        symbols = []
        p = pos
        for l in range(14):
            p += cp0 if l % 7 == 0 else cp
            symbols.append(np.fft.fft(wf.iq[p : p + n_fft])[bins])
            p += n_fft
        grids.append(symbols)
        numbers.append((first_number + len(numbers)) % 10)
        pos += sf_len
    return np.array(grids), np.array(numbers)


def test_lte_crs_pss_sss_and_pdsch_at_their_resource_elements():
    wf = generate(
        "lte",
        bandwidth_hz=3e6,
        modulation="64QAM",
        code_rate="3/4",
        duration_s=0.012,
        rng=np.random.default_rng(7),
        cell_id=305,
        cfi=2,
        load=1.0,
    )
    grid, numbers = lte_grid(wf)
    n_rb, n_sc = 15, 180
    cell_id = 305
    n_id1, n_id2 = divmod(cell_id, 3)
    gain = None
    for g, number in zip(grid, numbers):
        for l in (0, 4, 7, 11):
            k = 6 * np.arange(2 * n_rb) + ((0 if l % 7 == 0 else 3) + cell_id % 6) % 6
            expected = lte.crs(cell_id, 2 * number + l // 7, l % 7, n_rb)
            ratio = g[l, k] / expected
            gain = np.mean(np.abs(ratio)) if gain is None else gain
            assert np.allclose(ratio, gain, rtol=1e-3, atol=1e-3 * gain)
    assert 0 in numbers and 5 in numbers
    centre = n_sc // 2 - 31 + np.arange(62)
    for g, number in zip(grid, numbers):
        if number in (0, 5):
            received_pss = g[6, centre] / gain
            # The receiver's way: the cell's N_ID2 is the PSS root that correlates best.
            assert np.argmax([abs(np.vdot(lte.pss(i), received_pss)) for i in range(3)]) == n_id2
            assert np.allclose(received_pss, lte.pss(n_id2), atol=1e-3)
            assert np.allclose(g[5, centre] / gain, lte.sss(n_id1, n_id2, number), atol=1e-3)
            assert np.allclose(g[5:7, n_sc // 2 - 36 : n_sc // 2 - 31], 0, atol=1e-3 * gain)  # guard REs
    other_sss = [lte.sss(n_id1, n_id2, 0)[i] != lte.sss(n_id1, n_id2, 5)[i] for i in range(62)]
    assert any(other_sss)  # subframes 0 and 5 are told apart by the SSS
    # PDSCH REs (symbol 2 onwards, off CRS, outside the centre 72 in subframes 0 and 5) are 64QAM points.
    points = constellation("64QAM", "3gpp")
    g = grid[np.flatnonzero(~np.isin(numbers, (0, 5)))[0]] / gain
    data = g[[2, 3, 5, 6, 9, 10, 12, 13]].reshape(-1)
    assert np.max(np.min(np.abs(data[:, None] - points[None, :]), axis=1)) < 1e-3
    assert np.abs(g[1]).min() > 0.5  # the second control symbol (CFI 2) is filled with QPSK


def lte_crs_res(cell_id, n_rb, ports):
    """{(symbol of the subframe, port): subcarriers} of the CRS, written out from 36.211 6.10.1.2:
    ports 0 and 1 on the two combs of symbols 0 and 4 of each slot (v = 0 / 3 and 3 / 0), ports 2
    and 3 on those of symbol 1 (v = 3 (n_s mod 2) and 3 + 3 (n_s mod 2))."""
    v = {(0, 0): 0, (4, 0): 3, (7, 0): 0, (11, 0): 3, (0, 1): 3, (4, 1): 0, (7, 1): 3, (11, 1): 0}
    v |= {(1, 2): 0, (8, 2): 3, (1, 3): 3, (8, 3): 0}
    m = np.arange(2 * n_rb)
    return {(l, port): 6 * m + (shift + cell_id % 6) % 6 for (l, port), shift in v.items() if port < ports}


@pytest.mark.parametrize("ports, cfi", [(2, 1), (4, 1), (4, 2)])
def test_lte_crs_of_every_port_at_its_comb_and_pdsch_rate_matched_around_them(ports, cfi):
    cell_id, n_rb, n_sc = 100, 15, 180
    wf = generate(
        "lte",
        bandwidth_hz=3e6,
        modulation="16QAM",
        code_rate="1/2",
        duration_s=0.012,
        rng=np.random.default_rng(5),
        cell_id=cell_id,
        cfi=cfi,
        load=1.0,
        crs_ports=ports,
    )
    assert wf.meta["crs_ports"] == ports
    grid, numbers = lte_grid(wf)
    res = lte_crs_res(cell_id, n_rb, ports)
    gain = np.mean(np.abs(grid[0, 0, res[0, 0]]))
    grid = grid / gain
    crs = np.zeros((14, n_sc), bool)
    for (l, port), k in res.items():
        crs[l, k] = True
        for g, number in zip(grid, numbers):
            expected = lte.crs(cell_id, 2 * number + l // 7, l % 7, n_rb)
            assert np.allclose(g[l, k], expected, atol=1e-3), (l, port)
    assert crs[0].mean() == crs[4].mean() == 1 / 3, "ports 0 and 1 fill both combs of symbols 0 and 4"
    assert crs[1].mean() == crs[8].mean() == (1 / 3 if ports == 4 else 0.0)
    # Full load: every RE after the control region that holds no CRS carries PDSCH (16QAM), none that holds one.
    points = constellation("16QAM", "3gpp")
    for g, number in zip(grid, numbers):
        assert np.abs(g[:cfi][~crs[:cfi]]).min() > 0.5, "the control region fills the REs the CRS leave"
        if number not in (0, 5):
            pdsch = np.min(np.abs(g[:, :, None] - points[None, None, :]), axis=2) < 1e-3
            assert not (pdsch & crs).any()
            assert np.array_equal(pdsch[cfi:], ~crs[cfi:])
    n_re = (14 - cfi) * n_sc - 2 * n_rb * sum(l >= cfi for l, _ in res)
    assert wf.meta["tbs_bits"][1] == lte.transport_block_size(round(n_re * 4 / 2))


def test_lte_with_one_port_leaves_port_1s_control_res_empty_and_fills_its_others_with_pdsch():
    cell_id, n_rb = 7, 15
    wf = generate(
        "lte",
        bandwidth_hz=3e6,
        modulation="64QAM",
        code_rate="3/4",
        duration_s=0.012,
        rng=np.random.default_rng(2),
        cell_id=cell_id,
        cfi=2,
        load=1.0,
        crs_ports=1,
    )
    grid, numbers = lte_grid(wf)
    port_0, port_1 = lte_crs_res(cell_id, n_rb, 1), lte_crs_res(cell_id, n_rb, 2)
    gain = np.mean(np.abs(grid[0, 0, port_0[0, 0]]))
    points = constellation("64QAM", "3gpp")
    for g, number in zip(grid / gain, numbers):
        # Resource-element groups of the first symbol keep out of the REs of ports 0 and 1 (36.211 6.2.4).
        assert np.allclose(g[0, port_1[0, 1]], 0, atol=1e-3)
        control = np.delete(g[0], np.r_[port_0[0, 0], port_1[0, 1]])
        assert np.abs(control).min() > 0.5 and np.abs(g[1]).min() > 0.5
        if number not in (0, 5):
            for l in (4, 7, 11):
                data = g[l, port_1[l, 1]]
                assert np.max(np.min(np.abs(data[:, None] - points[None, :]), axis=1)) < 1e-3


# --- NR -----------------------------------------------------------------------------------------


def nr_grid(wf):
    """Demodulated grid of each whole slot: (slots, 14, N_sc) and the slot numbers in the frame pair."""
    n_fft, (cp0, cp) = wf.meta["n_fft"], wf.meta["cp"]
    mu = wf.meta["mu"]
    n_sc = 12 * wf.meta["n_rb"]
    group = 7 * 2**mu
    slot_len = (cp0 + n_fft + (group - 1) * (cp + n_fft)) * 14 // group
    start = wf.meta["start_sample"]
    offset = (-start) % slot_len
    first = -(-start // slot_len)
    bins = np.mod(np.arange(n_sc) - n_sc // 2, n_fft)
    grids, slots = [], []
    pos = offset
    while pos + slot_len <= len(wf.iq):
        p, symbols = pos, []
        for l in range(14):
            p += cp0 if l % group == 0 else cp
            symbols.append(np.fft.fft(wf.iq[p : p + n_fft])[bins])
            p += n_fft
        grids.append(symbols)
        slots.append(first + len(slots))
        pos += slot_len
    return np.array(grids), np.array(slots)


@pytest.mark.parametrize("mu,first_symbols", [(0, (2, 8, 16, 22)), (1, (4, 8, 16, 20))])
def test_nr_ssb_and_pdsch_dmrs_at_their_resource_elements(mu, first_symbols):
    cell_id = 517
    wf = generate(
        "nr",
        bandwidth_hz=20e6,
        mu=mu,
        modulation="16QAM",
        code_rate="1/2",
        duration_s=0.008,
        rng=np.random.default_rng(9),
        cell_id=cell_id,
        ssb_period_ms=5,
        ssb_positions_in_burst="1111",
        dmrs_type_a_position=2,
        dmrs_additional_position=2,
        dmrs_config_type=1,
        load=1.0,
    )
    grid, slots = nr_grid(wf)
    slots_per_frame = 10 * 2**mu
    n_rb = wf.meta["n_rb"]
    assert wf.meta["dmrs_symbols"] == [2, 7, 11]
    k0 = 12 * wf.meta["ssb_rb_offset"]
    ssb_slots = set()
    gain = None
    n_id1, n_id2 = divmod(cell_id, 3)
    for g, slot in zip(grid, slots):
        in_frame = slot % slots_per_frame
        half, in_half = divmod(in_frame, slots_per_frame // 2)
        for index, first in enumerate(first_symbols):
            if first // 14 != in_half:
                continue
            ssb_slots.add(int(in_frame))
            l0 = first % 14
            block = g[l0 : l0 + 4, k0 : k0 + 240]
            pss = block[0, 56:183]
            gain = np.mean(np.abs(pss)) if gain is None else gain
            assert np.allclose(pss / gain, nr.pss(n_id2), atol=1e-3)
            assert np.allclose(block[2, 56:183] / gain, nr.sss(n_id1, n_id2), atol=1e-3)
            dmrs = np.concatenate(
                [
                    block[1, cell_id % 4 :: 4],
                    block[2, cell_id % 4 : 48 : 4],
                    block[2, 192 + cell_id % 4 :: 4],
                    block[3, cell_id % 4 :: 4],
                ]
            )
            assert np.allclose(dmrs / gain, nr.pbch_dmrs(cell_id, index, int(half)), atol=1e-3)
            assert np.allclose(block[0, :56], 0, atol=1e-3 * gain)
    assert len(ssb_slots) >= 2
    for g, slot in zip(grid, slots):
        for l in (2, 7, 11):
            expected = nr.pdsch_dmrs(cell_id, int(slot % slots_per_frame), l, n_rb)
            received = g[l, 0::2] / gain
            clear = np.ones(len(expected), bool)
            if int(slot % slots_per_frame) in ssb_slots:
                clear[k0 // 2 : (k0 + 240) // 2] = False
            assert np.allclose(received[clear], expected[clear], atol=1e-3)
    # PDSCH: the odd subcarriers of DMRS symbols and the other symbols carry 16QAM points.
    points = constellation("16QAM", "3gpp")
    data = (
        np.concatenate(
            [grid[:, 3, :k0], grid[:, 3, k0 + 240 :], grid[:, 7, 1:k0:2], grid[:, 7, k0 + 241 :: 2]], axis=1
        ).reshape(-1)
        / gain
    )
    data = data[np.abs(data) > 1e-3]
    assert len(data) > 1000 and np.max(np.min(np.abs(data[:, None] - points[None, :]), axis=1)) < 1e-3


def test_nr_pss_known_values():
    # 38.211 7.4.2.2 with N_ID2 = 0: x(0..6) = 0 1 1 0 1 1 1 -> d = 1 - 2x.
    assert nr.pss(0)[:7].real.tolist() == [1, -1, -1, 1, -1, -1, -1]
    assert len({tuple(nr.sss(n1, 1).real) for n1 in range(336)}) == 336


# --- WiFi ---------------------------------------------------------------------------------------


def wifi_symbols(wf, start, count):
    """FFT of `count` 80-sample symbols from `start` (prefix skipped), subcarriers -32..31 indexable."""
    rows = wf.iq[start : start + 80 * count].reshape(count, 80)[:, 16:]
    return np.fft.fft(rows, axis=1)


def deinterleave(bits, n_cbps, n_bpsc, n_col):
    j = wifi.interleaver(n_cbps, n_bpsc, n_col)
    return bits.reshape(-1, n_cbps)[:, j].reshape(-1)


def hard_bits(values, modulation):
    points = constellation(modulation, "ieee")
    m = int(np.log2(len(points)))
    index = np.argmin(np.abs(values.reshape(-1)[:, None] - points[None, :]), axis=1)
    return ((index[:, None] >> np.arange(m - 1, -1, -1)) & 1).astype(np.uint8).reshape(-1)


def test_wifi_legacy_packet_decodes_and_pilots_follow_the_polarity_sequence():
    wf = generate(
        "wifi",
        modulation="16QAM",
        code_rate="3/4",
        duration_s=0.004,
        rng=np.random.default_rng(12),
        psdu_bytes=(200, 200),
    )
    start = np.flatnonzero(np.diff(wf.active.astype(np.int8)) == 1)[0] + 1
    length = 200
    data_sc, pilot_sc = wifi.LEGACY_DATA_SC, np.array([-21, -7, 7, 21])
    signal = wifi_symbols(wf, start + 320, 1)[0]
    gain = np.mean(np.abs(signal[pilot_sc]))
    sig_bits = bcc.viterbi_decode(1.0 - 2.0 * deinterleave(hard_bits(signal[data_sc] / gain, "BPSK"), 48, 1, 16))
    assert sig_bits[:4].tolist() == [1, 0, 1, 1]  # 36 Mbit/s
    assert int("".join(map(str, sig_bits[5:17][::-1])), 2) == length
    assert sig_bits[:18].sum() % 2 == 0 and not sig_bits[18:].any()
    n_sym = -(-(16 + 8 * length + 6) // 144)
    data = wifi_symbols(wf, start + 400, n_sym)
    polarity = wifi.PILOT_POLARITY[1 : 1 + n_sym]
    assert np.allclose(data[:, pilot_sc] / gain, polarity[:, None] * np.array([1, 1, 1, -1]), atol=1e-3)
    coded = deinterleave(hard_bits(data[:, data_sc] / gain, "16QAM"), 192, 4, 16)
    scrambled = bcc.viterbi_decode(1.0 - 2.0 * coded, "3/4", terminated=False)
    seed = int("".join(map(str, scrambled[:7])), 2)  # SERVICE starts with 7 zeros: the scrambler state shows
    seed = _state_after(seed)
    plain = scrambled ^ wifi.scrambler_sequence(seed, len(scrambled))
    assert not plain[:16].any()  # SERVICE
    assert not scrambled[16 + 8 * length : 22 + 8 * length].any()  # tail, zeroed after scrambling


def _state_after(first_seven: int) -> int:
    """The initial state whose first seven outputs are these bits (search the 127 states)."""
    for state in range(1, 128):
        if int("".join(map(str, wifi.scrambler_sequence(state, 7))), 2) == first_seven:
            return state
    raise AssertionError("no scrambler state produces these bits")


def test_wifi_vht_sig_a_carries_mcs_8_and_pilots_rotate():
    wf = generate(
        "wifi",
        modulation="256QAM",
        code_rate="3/4",
        duration_s=0.004,
        rng=np.random.default_rng(13),
        psdu_bytes=(200, 400),
    )
    start = np.flatnonzero(np.diff(wf.active.astype(np.int8)) == 1)[0] + 1
    pilot_sc = np.array([-21, -7, 7, 21])
    sig_a = wifi_symbols(wf, start + 400, 2)
    gain = np.mean(np.abs(sig_a[0, pilot_sc]))
    assert np.allclose(sig_a[1].real, 0, atol=1e-3 * gain)  # second SIG-A symbol is QBPSK
    first = hard_bits(sig_a[0, wifi.LEGACY_DATA_SC] / gain, "BPSK")
    second = hard_bits(sig_a[1, wifi.LEGACY_DATA_SC] / (1j * gain), "BPSK")
    bits = bcc.viterbi_decode(
        1.0 - 2.0 * np.concatenate([deinterleave(first, 48, 1, 16), deinterleave(second, 48, 1, 16)])
    )
    a1, a2 = bits[:24], bits[24:]
    assert int("".join(map(str, a2[4:8][::-1])), 2) == 8  # VHT-MCS
    assert np.array_equal(a2[10:18], wifi.crc8(np.concatenate([a1, a2[:10]])))
    data = wifi_symbols(wf, start + 800, 8)  # after L-SIG, SIG-A x2, VHT-STF, VHT-LTF, SIG-B
    n = np.arange(8)
    expected = wifi.PILOT_POLARITY[n + 4][:, None] * np.array([1, 1, 1, -1])[(n[:, None] + np.arange(4)) % 4]
    data_gain = np.mean(np.abs(data[:, pilot_sc]))
    assert np.allclose(data[:, pilot_sc] / data_gain, expected, atol=1e-3)
    points = constellation("256QAM", "ieee")
    values = data[:, wifi.VHT_DATA_SC].reshape(-1) / data_gain
    assert np.max(np.min(np.abs(values[:, None] - points[None, :]), axis=1)) < 1e-3

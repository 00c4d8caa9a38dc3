"""What the standards leave free is drawn, and the labels stay true: LTE / NR cell load (PDSCH
on a share of the REs, empty subframes and slots that keep their reference and sync signals),
NR DMRS and SS/PBCH configurations, WiFi packet lengths and gaps; all recorded in a compact,
JSON-serialisable meta and the same for the same seed."""

import json

import numpy as np
import pytest
import scipy.signal

from lwmspectro import labels
from lwmspectro.phy import generate, lte, nr, wifi
from lwmspectro.phy.common import constellation


def demodulate(wf, bins, unit_len, symbol_cps):
    """FFT of every symbol of each whole subframe / slot of the window: (units, 14, N_sc), and the
    index of each unit counted from the frame structure's origin (timing from the labelled start)."""
    n_fft, start = wf.meta["n_fft"], wf.meta["start_sample"]
    first = -(-start // unit_len)
    grids = []
    pos = first * unit_len - start
    while pos + unit_len <= len(wf.iq):
        p, symbols = pos, []
        for cp in symbol_cps:
            p += cp
            symbols.append(np.fft.fft(wf.iq[p : p + n_fft])[bins])
            p += n_fft
        grids.append(symbols)
        pos += unit_len
    return np.array(grids), first + np.arange(len(grids))


def lte_subframes(wf):
    n_fft, (cp0, cp) = wf.meta["n_fft"], wf.meta["cp"]
    n_sc = 12 * wf.meta["n_rb"]
    k = np.arange(n_sc)
    bins = np.mod(np.where(k < n_sc // 2, k - n_sc // 2, k - n_sc // 2 + 1), n_fft)
    cps = [cp0 if l % 7 == 0 else cp for l in range(14)]
    return demodulate(wf, bins, sum(cps) + 14 * n_fft, cps)


def nr_slots(wf):
    n_fft, (cp0, cp), mu = wf.meta["n_fft"], wf.meta["cp"], wf.meta["mu"]
    n_sc = 12 * wf.meta["n_rb"]
    cps = [cp0 if l % (7 * 2**mu) == 0 else cp for l in range(14)]
    return demodulate(wf, np.mod(np.arange(n_sc) - n_sc // 2, n_fft), sum(cps) + 14 * n_fft, cps)


def on_constellation(values, modulation, tolerance=1e-3):
    points = constellation(modulation, "3gpp")
    return np.min(np.abs(values.reshape(-1)[:, None] - points[None, :]), axis=1) < tolerance


def longest_run(flags):
    run = best = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


# --- NR -----------------------------------------------------------------------------------------


def nr_dmrs_gain(grid, slots, wf):
    """The receiver's gain from the PDSCH DMRS of the first slot that has PDSCH."""
    l0, comb = wf.meta["dmrs_symbols"][0], nr.dmrs_subcarriers(wf.meta["dmrs_config_type"], wf.meta["n_rb"])
    for g, slot in zip(grid, slots):
        expected = nr.pdsch_dmrs(wf.meta["cell_id"], int(slot % (10 * 2 ** wf.meta["mu"])), l0, wf.meta["n_rb"])
        ratio = g[l0, comb] / expected[: len(comb)]
        if np.abs(ratio).max() > 0:
            return np.median(np.abs(ratio[np.abs(ratio) > 0.5 * np.abs(ratio).max()]))
    raise AssertionError("no slot carries PDSCH")


def test_nr_at_load_0_2_has_pdsch_on_a_fifth_of_its_res_all_of_the_labelled_modulation():
    wf = generate(
        "nr",
        bandwidth_hz=20e6,
        mu=1,
        modulation="16QAM",
        code_rate="1/2",
        duration_s=0.04,
        rng=np.random.default_rng(5),
        load=0.2,
        dmrs_type_a_position=2,
        dmrs_config_type=1,
        dmrs_cdm_groups_without_data=1,
        pdcch=True,
    )
    assert wf.meta["load"] == 0.2 and wf.meta["served_load"] == pytest.approx(0.2, abs=0.02)
    grid, slots = nr_slots(wf)
    grid = grid / nr_dmrs_gain(grid, slots, wf)
    start = wf.meta["pdsch_start_symbol"]
    data_region = np.zeros(grid.shape, bool)
    data_region[:, start:] = True
    data_region[:, wf.meta["dmrs_symbols"], 0::2] = False  # DMRS comb (type 1, CDM group 0)
    k0 = 12 * wf.meta["ssb_rb_offset"]
    data_region[..., k0 : k0 + 240] = False  # where an SS/PBCH block may sit
    carried = data_region & (np.abs(grid) > 1e-3)
    assert on_constellation(grid[carried], "16QAM").all()
    pdsch = on_constellation(grid, "16QAM").reshape(grid.shape)  # no other signal uses these points
    assert pdsch[:, start:].mean() == pytest.approx(0.2, abs=0.04)
    assert pdsch.mean() == pytest.approx(wf.meta["pdsch_re_fraction"], abs=0.02)
    busy = pdsch.any(axis=(1, 2))
    assert 0 < busy.mean() < 1  # some slots are empty ...
    assert np.abs(grid[~busy, : wf.meta["coreset_symbols"]]).max() > 0.5  # ... and their CORESET may still send PDCCH


def test_nr_full_load_fills_every_rb_of_every_slot():
    wf = generate(
        "nr",
        bandwidth_hz=10e6,
        mu=0,
        modulation="64QAM",
        code_rate="3/4",
        duration_s=0.01,
        rng=np.random.default_rng(2),
        load=1.0,
    )
    assert wf.meta["served_load"] == 1.0 and wf.meta["busy_fraction"] == 1.0
    assert wf.meta["pdsch_rb_per_busy_unit"] == [52, 52]


def nr_busy_slots(grid, slots, wf):
    """Slots with PDSCH, told by their DMRS: RBs whose first DMRS symbol is the slot's DMRS
    sequence times one common gain."""
    n_rb, l0 = wf.meta["n_rb"], wf.meta["dmrs_symbols"][0]
    comb = nr.dmrs_subcarriers(wf.meta["dmrs_config_type"], n_rb)
    floor = 1e-3 * np.abs(grid).max()
    busy = []
    for g, slot in zip(grid, slots):
        expected = nr.pdsch_dmrs(wf.meta["cell_id"], int(slot % (10 * 2 ** wf.meta["mu"])), l0, n_rb)
        ratio = (g[l0, comb] / expected[: len(comb)]).reshape(n_rb, -1)
        constant = np.abs(ratio - ratio[:, :1]).max(axis=1) < floor
        busy.append(bool((constant & (np.abs(ratio[:, 0]) > floor)).any()))
    return np.array(busy)


@pytest.mark.parametrize("seed", range(4))
def test_light_load_keeps_some_pdsch_in_every_5_ms(seed):
    wf = generate(
        "nr",
        bandwidth_hz=20e6,
        mu=1,
        modulation="QPSK",
        code_rate="1/2",
        duration_s=0.03,
        rng=np.random.default_rng(seed),
        load=0.05,
    )
    grid, slots = nr_slots(wf)
    assert longest_run(~nr_busy_slots(grid, slots, wf)) <= 8  # slots of 0.5 ms: at most 4 ms without PDSCH


def pss_peak(wf):
    """How far the waveform's best match to the time-domain PSS symbol of its cell stands out of
    the matches at other lags (peak over the 99.9th percentile): a receiver's PSS search."""
    n_fft, n_sc = wf.meta["n_fft"], 12 * wf.meta["n_rb"]
    spectrum = np.zeros(n_fft, complex)
    k = 12 * wf.meta["ssb_rb_offset"] + 56 + np.arange(127)
    spectrum[np.mod(k - n_sc // 2, n_fft)] = nr.pss(wf.meta["cell_id"] % 3)
    template = np.fft.ifft(spectrum)
    match = np.abs(scipy.signal.fftconvolve(wf.iq, np.conj(template[::-1]), mode="valid"))
    return float(match.max() / np.percentile(match, 99.9))


def nr_window(seed, **options):
    return generate(
        "nr",
        bandwidth_hz=20e6,
        mu=1,
        modulation="QPSK",
        code_rate="1/2",
        duration_s=0.016,
        rng=np.random.default_rng(seed),
        ssb_period_ms=20,
        **options,
    )


def test_a_16_ms_window_sometimes_has_no_ssb_and_then_no_pss_peak():
    windows = [nr_window(seed) for seed in range(40)]
    without = [wf for wf in windows if wf.meta["ssb_blocks_in_window"] == 0]
    with_ssb = [wf for wf in windows if wf.meta["ssb_blocks_in_window"] > 0]
    assert without and with_ssb
    assert max(pss_peak(wf) for wf in without[:2]) < 2
    assert min(pss_peak(wf) for wf in with_ssb[:2]) > 3


def test_ssb_period_offset_and_burst_positions_are_drawn():
    metas = [nr_window(seed).meta for seed in range(40)]
    assert {m["ssb_offset_half_frames"] for m in metas} == {0, 1, 2, 3}
    assert len({m["ssb_positions_in_burst"] for m in metas}) > 5
    periods = {generate("nr", duration_s=0.001, rng=np.random.default_rng(s)).meta["ssb_period_ms"] for s in range(30)}
    assert periods == set(nr.SSB_PERIODS_MS)


@pytest.mark.parametrize(
    "type_a,additional,symbols",
    [(2, 0, (2,)), (2, 1, (2, 11)), (2, 2, (2, 7, 11)), (2, 3, (2, 5, 8, 11)), (3, 0, (3,)), (3, 2, (3, 7, 11))],
)
def test_dmrs_positions_follow_table_7_4_1_1_2_3(type_a, additional, symbols):
    assert nr.dmrs_symbols(type_a, additional) == symbols


def test_dmrs_pos3_needs_type_a_position_2():
    with pytest.raises(ValueError, match="valid choices: 0, 1, 2"):
        nr.dmrs_symbols(3, 3)


def test_dmrs_type_2_sits_on_the_allocated_rbs_only():
    cell_id = 77
    wf = generate(
        "nr",
        bandwidth_hz=10e6,
        mu=0,
        modulation="64QAM",
        code_rate="2/3",
        duration_s=0.012,
        rng=np.random.default_rng(3),
        cell_id=cell_id,
        load=0.3,
        dmrs_type_a_position=3,
        dmrs_additional_position=1,
        dmrs_config_type=2,
    )
    assert wf.meta["dmrs_symbols"] == [3, 11] and wf.meta["pdsch_start_symbol"] <= 3
    n_rb = wf.meta["n_rb"]
    comb = nr.dmrs_subcarriers(2, n_rb)
    assert comb[:6].tolist() == [0, 1, 6, 7, 12, 13]
    grid, slots = nr_slots(wf)
    grid = grid / nr_dmrs_gain(grid, slots, wf)
    ssb_rbs = wf.meta["ssb_rb_offset"] + np.arange(20)
    for g, slot in zip(grid, slots):
        allocated = (np.abs(g[12]).reshape(n_rb, 12) > 1e-3).any(axis=1)  # symbol 12: PDSCH only
        for l in (3, 11):
            received = g[l, comb]
            expected = nr.pdsch_dmrs(cell_id, int(slot % 10), l, n_rb)[: len(comb)]
            sent = (np.abs(received) > 0.5).reshape(n_rb, 4).all(axis=1)
            outside_ssb = ~np.isin(np.arange(n_rb), ssb_rbs)
            assert np.array_equal(sent[outside_ssb], allocated[outside_ssb])
            on_rbs = np.repeat(sent & outside_ssb, 4)
            assert np.allclose(received[on_rbs], expected[on_rbs], atol=1e-3)


@pytest.mark.parametrize("config_type,n_cdm", [(1, 2), (2, 2), (2, 3)])
def test_nr_dmrs_cdm_groups_without_data_stay_empty_and_the_dmrs_is_boosted(config_type, n_cdm):
    wf = generate(
        "nr",
        bandwidth_hz=10e6,
        mu=1,
        modulation="16QAM",
        code_rate="1/2",
        duration_s=0.004,
        rng=np.random.default_rng(8),
        load=1.0,
        dmrs_type_a_position=2,
        dmrs_additional_position=1,
        dmrs_config_type=config_type,
        dmrs_cdm_groups_without_data=n_cdm,
    )
    assert wf.meta["dmrs_cdm_groups_without_data"] == n_cdm
    n_rb = wf.meta["n_rb"]
    grid, _ = nr_slots(wf)
    ssb = 12 * wf.meta["ssb_rb_offset"] + np.arange(240)
    away = ~np.isin(np.arange(12 * n_rb), ssb)
    pdsch = grid[:, 12][:, away]  # symbol 12: PDSCH alone
    for l in (2, 11):
        dmrs = grid[:, l, nr.dmrs_subcarriers(config_type, n_rb)]
        # beta_DMRS of 38.214 Table 4.1-1: the DMRS's power n_cdm times the PDSCH's per RE.
        ratio = np.mean(np.abs(dmrs) ** 2) / np.mean(np.abs(pdsch) ** 2)
        assert ratio == pytest.approx(n_cdm, rel=0.05)
        for group in range(1, n_cdm):
            others = nr.dmrs_subcarriers(config_type, n_rb, group)
            assert np.abs(grid[:, l, others[away[others]]]).max() < 1e-3


def test_nr_without_pdcch_leaves_the_symbols_before_its_pdsch_empty_and_may_start_on_symbol_0():
    starts = set()
    for seed in range(12):
        wf = generate(
            "nr",
            bandwidth_hz=10e6,
            mu=0,
            modulation="QPSK",
            code_rate="1/2",
            duration_s=0.003,
            rng=np.random.default_rng(seed),
            load=1.0,
            pdcch=False,
            ssb_period_ms=20,
        )
        start = wf.meta["pdsch_start_symbol"]
        starts.add(start)
        assert wf.meta["pdcch"] is False and wf.meta["coreset_symbols"] == 0
        grid, _ = nr_slots(wf)
        away = ~np.isin(np.arange(12 * wf.meta["n_rb"]), 12 * wf.meta["ssb_rb_offset"] + np.arange(240))
        if start:
            assert np.abs(grid[:, :start][..., away]).max() < 1e-3
        assert (np.abs(grid[:, start][..., away]) > 0.1).mean() > 0.4
    assert 0 in starts and len(starts) > 1


# --- LTE ----------------------------------------------------------------------------------------


def test_lte_light_load_has_empty_subframes_with_crs_and_pdsch_of_the_labelled_modulation():
    cell_id = 101
    wf = generate(
        "lte",
        bandwidth_hz=5e6,
        modulation="64QAM",
        code_rate="3/4",
        duration_s=0.03,
        rng=np.random.default_rng(4),
        cell_id=cell_id,
        cfi=2,
        load=0.1,
    )
    grid, numbers = lte_subframes(wf)
    numbers %= 10
    n_rb = wf.meta["n_rb"]
    gain = np.abs(grid[0, 0, lte.crs_subcarriers(cell_id, 0, n_rb)]).mean()
    grid = grid / gain
    data_region = np.zeros(grid.shape[1:], bool)
    data_region[2:] = True
    data_region &= ~lte.crs_mask(cell_id, n_rb, range(wf.meta["crs_ports"]))
    busy = []
    for g, number in zip(grid, numbers):
        for l in (0, 4, 7, 11):  # CRS in every subframe, loaded or not
            expected = lte.crs(cell_id, 2 * number + l // 7, l % 7, n_rb)
            assert np.allclose(g[l, lte.crs_subcarriers(cell_id, l % 7, n_rb)], expected, atol=1e-3)
        region = data_region.copy()
        if number in (0, 5):
            region[5:11, 12 * n_rb // 2 - 36 : 12 * n_rb // 2 + 36] = False
        carried = region & (np.abs(g) > 1e-3)
        assert on_constellation(g[carried], "64QAM").all()
        busy.append(carried.any())
    busy = np.array(busy)
    assert 0 < busy.mean() < 1 and longest_run(~busy) <= 4
    assert wf.meta["served_load"] == pytest.approx(0.1, abs=0.02)


def test_lte_allocations_are_contiguous_or_scattered_and_cover_few_to_all_rbs():
    metas = [
        generate(
            "lte",
            bandwidth_hz=10e6,
            modulation="QPSK",
            code_rate="1/2",
            duration_s=0.01,
            rng=np.random.default_rng(seed),
        ).meta
        for seed in range(30)
    ]
    loads = np.array([m["load"] for m in metas])
    assert 0.1 < np.mean(loads == 1.0) < 0.6  # full load is common ...
    assert loads.min() < 0.3  # ... and so is light traffic
    assert min(m["pdsch_rb_per_busy_unit"][0] for m in metas) <= 5
    assert max(m["pdsch_rb_per_busy_unit"][1] for m in metas) == 50
    assert all(m["tbs_bits"][0] <= m["tbs_bits"][1] for m in metas)


def test_lte_cells_draw_1_2_or_4_crs_ports_and_label_them():
    def lte_meta(seed, **options):
        return generate(
            "lte",
            bandwidth_hz=1.4e6,
            modulation="QPSK",
            code_rate="1/2",
            duration_s=0.001,
            rng=np.random.default_rng(seed),
            **options,
        ).meta

    drawn = [lte_meta(seed)["crs_ports"] for seed in range(60)]
    assert sorted(set(drawn)) == [1, 2, 4]
    assert min(drawn.count(ports) for ports in (1, 2, 4)) >= 10  # uniform: 20 each on average
    assert lte_meta(0, crs_ports=4)["crs_ports"] == 4
    with pytest.raises(ValueError, match="number of CRS ports 3; valid choices: 1, 2, 4"):
        lte_meta(0, crs_ports=3)


def test_lte_transport_block_table_agrees_with_the_search():
    from lwmspectro.phy import turbo

    for target in (20, 57, 700, 6100, 6200, 20_000, 75_000):
        assert lte.transport_block_size(target) == turbo.transport_block_size(target)


# --- WiFi ---------------------------------------------------------------------------------------


def packet_gaps_us(wf):
    edges = np.diff(wf.active.astype(np.int8))
    offs, ons = np.flatnonzero(edges == -1) + 1, np.flatnonzero(edges == 1) + 1
    ons = ons[ons > offs[0]] if len(offs) else ons[:0]
    return (ons - offs[: len(ons)]) / wifi.SAMPLE_RATE_HZ * 1e6


def test_wifi_gaps_are_sifs_or_difs_plus_slots_and_span_back_to_back_to_sparse():
    all_gaps, duty = [], []
    for seed in range(24):
        wf = generate("wifi", modulation="QPSK", code_rate="1/2", duration_s=0.016, rng=np.random.default_rng(seed))
        gaps = packet_gaps_us(wf)
        slots = (gaps - 34) / 9
        assert np.all(np.isclose(gaps, 16) | ((slots > -1e-6) & np.isclose(slots, np.round(slots))))
        if len(gaps):
            low, high = wf.meta["gap_us"]
            assert low - 1e-6 <= gaps.min() and gaps.max() <= high + 1e-6
        all_gaps.extend(gaps)
        duty.append(wf.active.mean())
    all_gaps = np.array(all_gaps)
    assert np.isclose(all_gaps, 16).any() and all_gaps.max() > 1000 and all_gaps.max() <= 6000
    assert min(duty) < 0.3 and max(duty) > 0.8


def test_every_wifi_window_holds_a_packet_the_spectrogram_sees():
    for seed in range(40):
        wf = generate("wifi", modulation="64QAM", code_rate="3/4", duration_s=0.016, rng=np.random.default_rng(seed))
        edges = np.diff(np.r_[0, wf.active.astype(np.int8), 0])
        runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        assert runs.max() >= 0.2e-3 * wifi.SAMPLE_RATE_HZ


def test_wifi_packet_lengths_reach_from_an_ack_to_the_longest_psdu():
    metas = [
        generate("wifi", modulation="BPSK", code_rate="1/2", duration_s=0.016, rng=np.random.default_rng(s)).meta
        for s in range(24)
    ]
    assert min(m["psdu_bytes"][0] for m in metas) < 60
    assert max(m["psdu_bytes"][1] for m in metas) == wifi.LEGACY_MAX_PSDU_BYTES
    vht = generate(
        "wifi",
        modulation="256QAM",
        code_rate="3/4",
        duration_s=0.016,
        rng=np.random.default_rng(1),
        psdu_bytes=(50_000, 53_037),
    )
    assert vht.meta["psdu_bytes"][0] >= 50_000 and vht.meta["psdu_bytes"][1] <= 53_037  # 5.4 ms PPDUs


def test_wifi_psdu_range_beyond_the_standard_names_the_limit():
    with pytest.raises(ValueError, match="<= 4095"):
        generate(
            "wifi",
            modulation="QPSK",
            code_rate="1/2",
            duration_s=0.001,
            rng=np.random.default_rng(0),
            psdu_bytes=(100, 5000),
        )


# --- all ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "protocol,kind", [(p, None) for p in labels.PROTOCOLS] + [("other", k) for k in labels.OTHER_KINDS]
)
def test_draws_are_the_same_for_a_seed_and_meta_is_compact_json(protocol, kind):
    options = {"kind": kind} if kind else {}
    a = generate(protocol, duration_s=0.016, rng=np.random.default_rng(31), **options)
    b = generate(protocol, duration_s=0.016, rng=np.random.default_rng(31), **options)
    assert a.iq.tobytes() == b.iq.tobytes() and a.active.tobytes() == b.active.tobytes()
    assert json.dumps(a.meta) == json.dumps(b.meta)
    assert len(json.dumps(a.meta)) < 1500

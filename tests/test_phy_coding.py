"""Bit-level building blocks of the PHY chains: BCC + Viterbi, turbo, CRC, scramblers, Gold
sequences and constellations, each against the standard's definition written out plainly."""

import numpy as np
import pytest

from lwmspectro import labels
from lwmspectro.phy import bcc, turbo, wifi
from lwmspectro.phy.common import constellation, gold_sequence, modulate


def test_bcc_impulse_response_is_the_two_generators():
    coded = bcc.encode(np.r_[1, np.zeros(6, np.uint8)].astype(np.uint8), "1/2").reshape(-1, 2)
    assert coded[:, 0].tolist() == [1, 0, 1, 1, 0, 1, 1]  # 133 octal
    assert coded[:, 1].tolist() == [1, 1, 1, 1, 0, 0, 1]  # 171 octal


@pytest.mark.parametrize("rate", ["1/2", "2/3", "3/4"])
def test_bcc_viterbi_round_trip_corrects_errors(rate):
    rng = np.random.default_rng(5)
    bits = np.r_[rng.integers(0, 2, 282), np.zeros(6)].astype(np.uint8)  # 288: whole periods, zero tail
    coded = bcc.encode(bits, rate)
    assert len(coded) == len(bits) * 2 * {"1/2": 1, "2/3": 3 / 4, "3/4": 2 / 3}[rate]
    soft = 1.0 - 2.0 * coded
    soft[[20, 150, 300]] *= -1  # three well separated channel errors
    assert np.array_equal(bcc.viterbi_decode(soft, rate), bits)


def test_bcc_blocks_restart_from_zero_state():
    rng = np.random.default_rng(6)
    blocks = [rng.integers(0, 2, n).astype(np.uint8) for n in (36, 72, 108)]
    joined = bcc.encode_blocks(blocks, "3/4")
    assert np.array_equal(joined, np.concatenate([bcc.encode(b, "3/4") for b in blocks]))


def test_wifi_scrambler_matches_the_standard_sequence():
    # IEEE 802.11 17.3.5.5: the all-ones state generates this 127-bit sequence.
    expected = (
        "00001110"
        "11110010"
        "11001001"
        "00000010"
        "00100110"
        "00101110"
        "10110110"
        "00001100"
        "11010100"
        "11100111"
        "10110100"
        "00101010"
        "11111010"
        "01010001"
        "10111000"
        "1111111"
    )
    assert "".join(map(str, wifi.scrambler_sequence(0x7F, 127))) == expected


def test_wifi_interleaver_is_a_permutation_with_adjacent_bits_apart():
    for n_bpsc, n_col, n_sd in ((1, 16, 48), (6, 16, 48), (8, 13, 52)):
        n_cbps = n_sd * n_bpsc
        j = wifi.interleaver(n_cbps, n_bpsc, n_col)
        assert sorted(j) == list(range(n_cbps))
        subcarrier = j // n_bpsc
        assert np.all(subcarrier[1:] != subcarrier[:-1])  # neighbours never share a subcarrier


def _gold_reference(c_init, n):
    x1 = [1] + [0] * 30
    x2 = [(c_init >> i) & 1 for i in range(31)]
    for i in range(n + 1600):
        x1.append((x1[i + 3] + x1[i]) % 2)
        x2.append((x2[i + 3] + x2[i + 2] + x2[i + 1] + x2[i]) % 2)
    return np.array([(x1[i + 1600] + x2[i + 1600]) % 2 for i in range(n)], np.uint8)


@pytest.mark.parametrize("c_init", [0, 1, 0x12345, 2**31 - 1])
def test_gold_sequence_matches_the_lfsr_definition(c_init):
    assert np.array_equal(gold_sequence(c_init, 500), _gold_reference(c_init, 500))


def test_gold_sequence_rows_for_an_array_of_inits():
    rows = gold_sequence(np.array([3, 77]), 64)
    assert np.array_equal(rows[1], _gold_reference(77, 64))


def _rsc_reference(u):
    s1 = s2 = s3 = 0
    z = []
    for bit in u:
        w = bit ^ s2 ^ s3
        z.append(w ^ s1 ^ s3)
        s1, s2, s3 = w, s1, s2
    tail_x, tail_z = [], []
    for _ in range(3):
        tail_x.append(s2 ^ s3)
        tail_z.append(s1 ^ s3)
        s1, s2, s3 = 0, s1, s2
    return z, tail_x, tail_z


@pytest.mark.parametrize("k", [40, 512, 6144])
def test_turbo_encoder_matches_shift_register(k):
    u = np.random.default_rng(k).integers(0, 2, (1, k)).astype(np.uint8)
    d = turbo.turbo_encode(u)[0]
    z1, x1t, z1t = _rsc_reference(u[0])
    z2, x2t, z2t = _rsc_reference(u[0][turbo.qpp_interleaver(k)])
    assert np.array_equal(d[0, :k], u[0]) and d[1, :k].tolist() == z1 and d[2, :k].tolist() == z2
    assert d[0, k:].tolist() == [x1t[0], z1t[1], x2t[0], z2t[1]]
    assert d[1, k:].tolist() == [z1t[0], x1t[2], z2t[0], x2t[2]]
    assert d[2, k:].tolist() == [x1t[1], z1t[2], x2t[1], z2t[2]]


def test_every_qpp_table_entry_is_a_permutation():
    assert len(turbo.BLOCK_SIZES) == len(turbo.QPP_F1) == len(turbo.QPP_F2) == 188
    for k in turbo.BLOCK_SIZES:
        assert len(np.unique(turbo.qpp_interleaver(int(k)))) == k


def test_crc24_leaves_zero_remainder_and_knows_its_polynomial():
    rng = np.random.default_rng(2)
    for poly in (turbo.CRC24A, turbo.CRC24B):
        msg = rng.integers(0, 2, (3, 1001)).astype(np.uint8)
        with_crc = np.concatenate([msg, turbo.crc24(msg, poly)], axis=1)
        assert not turbo.crc24(with_crc, poly).any()
        one = turbo.crc24(np.array([[1]], np.uint8), poly)[0]  # D^24 mod g = g without D^24
        assert int("".join(map(str, one)), 2) == poly


def test_rate_matching_at_one_third_sends_every_coded_bit_once():
    k = 1024
    order = turbo.circular_buffer(k)
    assert sorted(order) == list(range(3 * (k + 4)))
    # k0 = 2 R = 66 -> column P[2] = 8: row 0 holds a <NULL> (28 dummies), row 1 holds y[40] = d0[12].
    assert order[0] == 12


def test_dlsch_segments_and_matches_requested_length():
    tbs = turbo.transport_block_size(20000)
    c, k, filler = turbo.segmentation(tbs)
    assert filler == 0 and c == 4 and abs(c * k - 20000) < 300
    out = turbo.dlsch_encode(np.random.default_rng(0).integers(0, 2, (2, tbs)).astype(np.uint8), 27000, 6)
    assert out.shape == (2, 27000) and 0.45 < out.mean() < 0.55


@pytest.mark.parametrize("standard", ["3gpp", "ieee"])
@pytest.mark.parametrize("modulation", labels.MODULATIONS)
def test_constellations_have_unit_energy_and_gray_labels(modulation, standard):
    points = constellation(modulation, standard)
    assert len(points) == 2 ** labels.BITS_PER_SYMBOL[modulation]
    assert np.mean(np.abs(points) ** 2) == pytest.approx(1.0, abs=1e-6)
    if len(points) > 2:
        distance = np.abs(points[:, None] - points[None, :])
        nearest = distance[distance > 1e-6].min()
        for a, b in zip(*np.nonzero(np.isclose(distance, nearest, atol=1e-5))):
            assert bin(a ^ b).count("1") == 1


def test_constellation_known_points():
    s10, s42 = np.sqrt(10), np.sqrt(42)
    lte16 = constellation("16QAM", "3gpp")
    assert lte16[0b0000] == pytest.approx((1 + 1j) / s10) and lte16[0b0010] == pytest.approx((3 + 1j) / s10)
    assert lte16[0b1011] == pytest.approx((-3 + 3j) / s10)
    lte64 = constellation("64QAM", "3gpp")
    assert lte64[0b000000] == pytest.approx((3 + 3j) / s42) and lte64[0b101111] == pytest.approx((-7 + 7j) / s42)
    wifi16 = constellation("16QAM", "ieee")
    assert wifi16[0b0000] == pytest.approx((-3 - 3j) / s10) and wifi16[0b1011] == pytest.approx((3 + 1j) / s10)
    assert modulate(np.array([0, 1, 1, 0], np.uint8), "QPSK", "3gpp") == pytest.approx(
        np.array([1 - 1j, -1 + 1j]) / np.sqrt(2)
    )

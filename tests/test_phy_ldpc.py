"""NR DL-SCH channel coding (phy/ldpc.py) against TS 38.212 / 38.214: parity checks of the lifted
base graphs, CRC check values, segmentation, rate matching read back from the codewords, whole
chains against digests of another implementation's output, and the NR waveform's PDSCH read
back from its resource grid."""

import binascii
import hashlib
from fractions import Fraction

import numpy as np
import pytest
from test_phy_signals import nr_grid

from lwmspectro import labels
from lwmspectro.phy import generate, ldpc, nr, turbo
from lwmspectro.phy.common import constellation, gold_sequence, modulate
from lwmspectro.phy.turbo import CRC24A, CRC24B


def pattern_bits(length):
    """Deterministic test bits that do not depend on a random generator's stream."""
    i = np.arange(length)
    return ((i * 7 + (i * i) // 3 + 1) % 5 < 2).astype(np.uint8)


def syndrome(graph, lifting, codewords):
    return (ldpc.parity_check_matrix(graph, lifting) @ codewords.T.astype(np.int64)) % 2


# --- base graphs and LDPC encoding ---------------------------------------------------------------


def test_base_graphs_have_the_sizes_and_entries_of_the_standard():
    bg1, bg2 = ldpc.base_matrix(1, 0), ldpc.base_matrix(2, 0)
    assert bg1.shape == (46, 68) and bg2.shape == (42, 52)
    assert (bg1 >= 0).sum() == 316 and (bg2 >= 0).sum() == 197
    # First entries of Tables 5.3.2-2 and 5.3.2-3, for iLS = 0 and 1.
    assert (ldpc.base_matrix(1, 0)[0, 0], ldpc.base_matrix(1, 1)[0, 0]) == (250, 307)
    assert (ldpc.base_matrix(2, 0)[0, 0], ldpc.base_matrix(2, 1)[0, 0]) == (9, 174)
    # Extension parity columns are a diagonal of identities.
    for base, columns in ((bg1, 22), (bg2, 10)):
        extension = base[4:, columns + 4 :]
        assert np.array_equal(extension >= 0, np.eye(len(extension), dtype=bool))
        assert (extension[extension >= 0] == 0).all()


def test_lifting_sizes_are_table_5_3_2_1():
    sizes = ldpc.lifting_sizes()
    assert len(sizes) == 51 and max(sizes) == 384
    assert [z for z, i_ls in sizes.items() if i_ls == 0] == [2, 4, 8, 16, 32, 64, 128, 256]
    assert [z for z, i_ls in sizes.items() if i_ls == 7] == [15, 30, 60, 120, 240]


@pytest.mark.parametrize("graph", [1, 2])
@pytest.mark.parametrize("lifting", [2, 3, 5, 7, 9, 11, 13, 15, 36, 104, 208, 240, 384])
def test_codewords_satisfy_every_parity_check(graph, lifting):
    rng = np.random.default_rng(lifting)
    k = ldpc.INFO_COLUMNS[graph] * lifting
    blocks = rng.integers(0, 2, (70, k)).astype(np.uint8)  # 70: more than one 64-bit word of blocks
    codewords = ldpc.ldpc_encode(blocks, graph, lifting)
    assert codewords.shape == (70, (ldpc.INFO_COLUMNS[graph] + ldpc.CHECK_ROWS[graph]) * lifting)
    assert np.array_equal(codewords[:, :k], blocks)  # systematic
    assert not syndrome(graph, lifting, codewords).any()


def test_fewer_check_rows_give_a_prefix_of_the_codeword():
    blocks = np.random.default_rng(1).integers(0, 2, (5, 22 * 64)).astype(np.uint8)
    full = ldpc.ldpc_encode(blocks, 1, 64)
    assert np.array_equal(ldpc.ldpc_encode(blocks, 1, 64, checks=9), full[:, : (22 + 9) * 64])


def test_encoding_is_linear_and_rejects_a_wrong_block_length():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 2, (2, 3, 10 * 24)).astype(np.uint8)
    assert np.array_equal(ldpc.ldpc_encode(a ^ b, 2, 24), ldpc.ldpc_encode(a, 2, 24) ^ ldpc.ldpc_encode(b, 2, 24))
    with pytest.raises(ValueError, match="encodes 240 bits"):
        ldpc.ldpc_encode(a[:, :-1], 2, 24)


# --- CRC --------------------------------------------------------------------------------------------


def test_crcs_give_the_catalogued_check_values():
    # CRC-24/LTE-A, CRC-24/LTE-B and CRC-16/XMODEM of the ASCII string "123456789".
    message = np.frombuffer(b"123456789", np.uint8)[None]
    assert ldpc.crc24_bytes(message, CRC24A)[0] == 0xCDE703
    assert ldpc.crc24_bytes(message, CRC24B)[0] == 0x23EF52
    bits = np.unpackbits(message)
    assert ldpc.transport_crcs([bits])[0].tolist() == [int(b) for b in f"{0x31C3:016b}"]


@pytest.mark.parametrize("length", [24, 100, 3824, 3832, 20000, 100000])
def test_transport_block_round_trips_through_its_crc(length):
    block = np.random.default_rng(length).integers(0, 2, length).astype(np.uint8)
    (crc,) = ldpc.transport_crcs([block])
    assert len(crc) == (24 if length > 3824 else 16)
    received = np.packbits(np.r_[np.zeros(-(length + len(crc)) % 8, np.uint8), block, crc])
    if length > 3824:
        assert ldpc.crc24_bytes(received[None], CRC24A)[0] == 0  # a codeword leaves no remainder
    else:
        assert binascii.crc_hqx(received.tobytes(), 0) == 0
    corrupted = block.copy()
    corrupted[length // 2] ^= 1
    assert not np.array_equal(ldpc.transport_crcs([corrupted])[0], crc)


def test_long_crcs_match_the_lte_implementation():
    bits = np.random.default_rng(3).integers(0, 2, (3, 50001)).astype(np.uint8)
    for poly in (CRC24A, CRC24B):
        packed = np.packbits(np.concatenate([np.zeros((3, 7), np.uint8), bits], axis=1), axis=1)
        expected = turbo.crc24(bits, poly) @ (1 << np.arange(23, -1, -1))
        assert np.array_equal(ldpc.crc24_bytes(packed, poly), expected)


# --- sizes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_prb,re_per_prb,rate,qm,tbs",
    [
        # N_info = 200 <= 3824: n = 3, N'_info = 200, the smallest table size >= 200 is 208.
        (1, 100, "1/3", 6, 208),
        # N_info = 13464: n = 8, (13440 / 256 = 52.5) rounds up to 53, C = 2, TBS = 16 ceil(13592 / 16) - 24.
        (51, 132, "1/2", 4, 13576),
        # N'_RE is capped at 156: N_info = 5720, n = 7, 44.5 -> 45, one code block: 5784 - 24.
        (11, 160, "5/6", 4, 5760),
        # Low rate: C = ceil((N'_info + 24) / 3816) blocks.
        (106, 138, "1/4", 2, 7304),
    ],
)
def test_transport_block_size_follows_38_214(n_prb, re_per_prb, rate, qm, tbs):
    assert ldpc.transport_block_size(n_prb, re_per_prb, Fraction(rate), qm) == tbs


def test_transport_block_size_needs_resource_elements():
    with pytest.raises(ValueError, match="resource elements"):
        ldpc.transport_block_size(0, 138, Fraction(1, 2), 2)


@pytest.mark.parametrize(
    "tbs,rate,graph",
    [(292, "5/6", 2), (293, "5/6", 1), (3824, "2/3", 2), (3824, "3/4", 1), (3840, "1/3", 1), (20000, "1/5", 2)],
)
def test_base_graph_selection_of_7_2_2(tbs, rate, graph):
    assert ldpc.base_graph(tbs, Fraction(rate)) == graph


@pytest.mark.parametrize(
    "b,graph,blocks,block_bits,lifting",
    [
        (8480, 1, 2, 4264, 208),  # TBS 8456 + CRC24A
        (25632, 1, 4, 6432, 320),
        (8448, 1, 1, 8448, 384),  # the largest single block
        (1048, 2, 1, 1048, 112),  # K_b = 10
        (200, 2, 1, 200, 26),  # K_b = 8: 8 Z_c >= 200, and 25 is no lifting size
        (40, 2, 1, 40, 7),  # K_b = 6
    ],
)
def test_segmentation_of_5_2_2(b, graph, blocks, block_bits, lifting):
    seg = ldpc.segment(b, graph)
    assert (seg.blocks, seg.block_bits, seg.lifting) == (blocks, block_bits, lifting)
    assert seg.fillers == ldpc.INFO_COLUMNS[graph] * lifting - block_bits >= 0


def test_segmentation_refuses_unequal_blocks():
    with pytest.raises(ValueError, match="equal code blocks"):
        ldpc.segment(8449 + 8424, 1)


def test_code_block_lengths_share_the_symbols():
    assert ldpc.code_block_lengths(3, 6 * 100, 6) == [198, 198, 204]
    assert sum(ldpc.code_block_lengths(7, 8 * 1001, 8)) == 8 * 1001


# --- the chain ------------------------------------------------------------------------------------------


def deinterleave(bits, qm):
    """e from f of 5.4.2.2: f(i + j Q_m) = e(i E / Q_m + j)."""
    return bits.reshape(-1, qm).T.ravel()


@pytest.mark.parametrize(
    "tbs,rate,qm,g",
    [
        (8456, "2/3", 4, 12000),  # BG1, two code blocks with CRC24B, fillers
        (1032, "1/3", 2, 6000),  # BG2, CRC16, the circular buffer wraps (E > N - F)
        (25608, "3/4", 6, 6 * 5667),  # E differs between the code blocks
    ],
)
def test_rate_matching_reads_the_circular_buffer_from_k0_0(tbs, rate, qm, g):
    block = np.random.default_rng(tbs).integers(0, 2, tbs).astype(np.uint8)
    out = ldpc.dlsch_encode([block], [g], qm, Fraction(rate))
    assert out.shape == (g,) and out.dtype == np.uint8
    # The receiver's side: segment the TB + CRC and encode each code block again.
    with_crc = np.r_[block, ldpc.transport_crcs([block])[0]]
    seg = ldpc.segment(len(with_crc), ldpc.base_graph(tbs, Fraction(rate)))
    payload = with_crc.reshape(seg.blocks, -1)
    if seg.blocks > 1:
        crcs = ldpc.crc24_bytes(np.packbits(payload, axis=1), CRC24B)
        payload = np.c_[payload, (crcs[:, None] >> np.arange(23, -1, -1)) & 1]
    blocks = np.zeros((seg.blocks, seg.info_bits), np.uint8)
    blocks[:, : seg.block_bits] = payload
    codewords = ldpc.ldpc_encode(blocks, seg.base_graph, seg.lifting)
    lengths = ldpc.code_block_lengths(seg.blocks, g, qm)
    for codeword, length, e in zip(codewords, lengths, np.split(out, np.cumsum(lengths)[:-1])):
        assert len(e) == length
        d = codeword[2 * seg.lifting :]  # the first 2 Z_c systematic bits are never sent
        buffer = np.r_[d[: seg.block_bits - 2 * seg.lifting], d[seg.info_bits - 2 * seg.lifting :]]  # no fillers
        assert len(d) == seg.codeword_bits
        assert np.array_equal(deinterleave(e, qm), np.resize(buffer, length))  # k0 = 0, wrapping round


# Digests (SHA-256 of the packed bits, first 16 hex digits) of dlsch_encode's output for
# pattern_bits(TBS). The same bits come out of py3gpp 0.6.0 (nrCRCEncode, nrCodeBlockSegmentLDPC,
# nrLDPCEncode, nrRateMatchLDPC with rv 0), a separate implementation of 38.212.
KNOWN_ANSWERS = [
    (8456, "2/3", 4, 12000, "6970e0bd9d86a11d"),
    (1032, "2/3", 4, 2000, "12a2530ce1d5f220"),
    (1032, "1/3", 2, 6000, "4a138c45c5f9b35a"),
    (25608, "3/4", 6, 34002, "e6be08e99ba98075"),
    (2088, "1/2", 8, 4800, "db4ca3fff5be9e85"),
]


@pytest.mark.parametrize("tbs,rate,qm,g,digest", KNOWN_ANSWERS)
def test_chain_matches_known_answers(tbs, rate, qm, g, digest):
    out = ldpc.dlsch_encode([pattern_bits(tbs)], [g], qm, Fraction(rate))
    assert hashlib.sha256(np.packbits(out).tobytes()).hexdigest()[:16] == digest


def test_blocks_of_several_sizes_code_as_each_alone():
    rate = Fraction(3, 4)
    sizes, coded = [8456, 1032, 8456, 25608, 3368], [12000, 1600, 11200, 36000, 4800]
    blocks = [np.random.default_rng(i).integers(0, 2, size).astype(np.uint8) for i, size in enumerate(sizes)]
    together = ldpc.dlsch_encode(blocks, coded, 4, rate)
    alone = np.concatenate([ldpc.dlsch_encode([b], [g], 4, rate) for b, g in zip(blocks, coded)])
    assert np.array_equal(together, alone)
    assert len(ldpc.dlsch_encode([], [], 4, rate)) == 0


def test_a_block_without_coded_bits_sends_nothing_and_g_must_fill_symbols():
    blocks = [pattern_bits(1032), pattern_bits(1032)]
    assert np.array_equal(
        ldpc.dlsch_encode(blocks, [0, 2000], 4, Fraction(1, 2)),
        ldpc.dlsch_encode(blocks[1:], [2000], 4, Fraction(1, 2)),
    )
    with pytest.raises(ValueError, match="multiple of 4"):
        ldpc.dlsch_encode(blocks, [2002, 2000], 4, Fraction(1, 2))


# --- the NR waveform ---------------------------------------------------------------------------------


def hard_bits(values, modulation):
    """Label bits (MSB first) of the nearest 3GPP constellation point of each value."""
    points = constellation(modulation, "3gpp")
    m = int(np.log2(len(points)))
    index = np.argmin(np.abs(values[:, None] - points[None, :]), axis=1)
    return ((index[:, None] >> np.arange(m - 1, -1, -1)) & 1).astype(np.uint8).ravel()


@pytest.mark.parametrize("mu,modulation,code_rate,n_cdm", [(0, "16QAM", "1/2", 1), (1, "64QAM", "3/4", 2)])
def test_nr_pdsch_carries_the_scrambled_ldpc_codewords(monkeypatch, mu, modulation, code_rate, n_cdm):
    calls = []

    def recording(transport_blocks, coded_bits, bits_per_symbol, rate):
        out = ldpc_encode_chain(transport_blocks, coded_bits, bits_per_symbol, rate)
        calls.append(([np.array(b) for b in transport_blocks], [int(g) for g in coded_bits], out.copy()))
        return out  # nr.py scrambles it in place

    ldpc_encode_chain = ldpc.dlsch_encode
    monkeypatch.setattr(ldpc, "dlsch_encode", recording)
    wf = generate(
        "nr",
        bandwidth_hz=10e6,
        mu=mu,
        modulation=modulation,
        code_rate=code_rate,
        duration_s=0.004,
        rng=np.random.default_rng(12),
        load=1.0,
        ssb_period_ms=20,
        dmrs_cdm_groups_without_data=n_cdm,
    )
    assert wf.coding == "ldpc" and wf.code_rate == code_rate
    ((transport_blocks, coded_bits, codewords),) = calls
    meta = wf.meta
    n_rb, qm = meta["n_rb"], labels.BITS_PER_SYMBOL[modulation]
    rate = Fraction(code_rate)
    # Every slot is fully allocated: one transport block of the 38.214 size each.
    re_per_prb = 12 * (14 - meta["pdsch_start_symbol"]) - len(meta["dmrs_symbols"]) * n_cdm * (
        6 if meta["dmrs_config_type"] == 1 else 4
    )
    assert {len(b) for b in transport_blocks} == {ldpc.transport_block_size(n_rb, re_per_prb, rate, qm)}

    # The receiver's view: PDSCH REs of the whole slots without an SS/PBCH block, k first, then l.
    grid, slots = nr_grid(wf)
    mask = np.zeros((14, 12 * n_rb), bool)
    mask[meta["pdsch_start_symbol"] :] = True
    for l in meta["dmrs_symbols"]:
        for group in range(n_cdm):
            mask[l, nr.dmrs_subcarriers(meta["dmrs_config_type"], n_rb, group)] = False
    group = 7 * 2**mu
    cp0, cp = meta["cp"]
    slot_len = (cp0 + meta["n_fft"] + (group - 1) * (cp + meta["n_fft"])) * 14 // group
    first_slot = meta["start_sample"] // slot_len
    ends = np.cumsum(coded_bits)
    checked = 0
    for g, slot in zip(grid, slots):
        tb = slot - first_slot
        if coded_bits[tb] != mask.sum() * qm:
            continue  # an SS/PBCH block takes some of this slot's REs
        received = g[mask]
        sent = codewords[ends[tb] - coded_bits[tb] : ends[tb]]
        scrambling = gold_sequence(meta["rnti"] * 2**15 + meta["cell_id"], len(sent))
        gain = np.vdot(modulate(sent ^ scrambling, modulation, "3gpp"), received).real / len(received)
        air = hard_bits(received / gain, modulation) ^ scrambling
        assert np.array_equal(air, sent)
        # The codeword is systematic: code block 0 sends its share of TB + CRC from bit 2 Z_c on first.
        block = transport_blocks[tb]
        with_crc = np.r_[block, ldpc.transport_crcs([block])[0]]
        seg = ldpc.segment(len(with_crc), ldpc.base_graph(len(block), rate))
        share = with_crc[: len(with_crc) // seg.blocks]
        first_block = deinterleave(air[: ldpc.code_block_lengths(seg.blocks, len(sent), qm)[0]], qm)
        assert np.array_equal(first_block[: len(share) - 2 * seg.lifting], share[2 * seg.lifting :])
        checked += 1
    assert checked >= 2

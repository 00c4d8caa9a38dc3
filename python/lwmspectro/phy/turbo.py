"""LTE turbo coding for the DL-SCH (3GPP TS 36.212 5.1.1-5.1.4.1): CRC24A/CRC24B, code-block
segmentation, the rate-1/3 PCCC with the QPP interleaver and trellis termination, and the
sub-block interleaver / circular-buffer rate matching (rv 0, full circular buffer).

Hand-written because no maintained Python package encodes LTE turbo with the QPP table;
everything runs on (code blocks x bits) arrays.
"""

from __future__ import annotations

import functools

import numpy as np

MAX_BLOCK = 6144
CRC24A = 0x864CFB  # D^24 + D^23 + D^18 + D^17 + D^14 + D^11 + D^10 + D^7 + D^6 + D^5 + D^4 + D^3 + D + 1
CRC24B = 0x800063  # D^24 + D^23 + D^6 + D^5 + D + 1

BLOCK_SIZES = np.concatenate(
    [np.arange(40, 513, 8), np.arange(528, 1025, 16), np.arange(1056, 2049, 32), np.arange(2112, 6145, 64)]
)
"""K of Table 5.1.3-3, in the order of QPP_F1 / QPP_F2."""

# Table 5.1.3-3: QPP interleaver parameters f1, f2 for each K above.
QPP_F1 = (
    3,
    7,
    19,
    7,
    7,
    11,
    5,
    11,
    7,
    41,
    103,
    15,
    9,
    17,
    9,
    21,
    101,
    21,
    57,
    23,
    13,
    27,
    11,
    27,
    85,
    29,
    33,
    15,
    17,
    33,
    103,
    19,
    19,
    37,
    19,
    21,
    21,
    115,
    193,
    21,
    133,
    81,
    45,
    23,
    243,
    151,
    155,
    25,
    51,
    47,
    91,
    29,
    29,
    247,
    29,
    89,
    91,
    157,
    55,
    31,
    17,
    35,
    227,
    65,
    19,
    37,
    41,
    39,
    185,
    43,
    21,
    155,
    79,
    139,
    23,
    217,
    25,
    17,
    127,
    25,
    239,
    17,
    137,
    215,
    29,
    15,
    147,
    29,
    59,
    65,
    55,
    31,
    17,
    171,
    67,
    35,
    19,
    39,
    19,
    199,
    21,
    211,
    21,
    43,
    149,
    45,
    49,
    71,
    13,
    17,
    25,
    183,
    55,
    127,
    27,
    29,
    29,
    57,
    45,
    31,
    59,
    185,
    113,
    31,
    17,
    171,
    209,
    253,
    367,
    265,
    181,
    39,
    27,
    127,
    143,
    43,
    29,
    45,
    157,
    47,
    13,
    111,
    443,
    51,
    51,
    451,
    257,
    57,
    313,
    271,
    179,
    331,
    363,
    375,
    127,
    31,
    33,
    43,
    33,
    477,
    35,
    233,
    357,
    337,
    37,
    71,
    71,
    37,
    39,
    127,
    39,
    39,
    31,
    113,
    41,
    251,
    43,
    21,
    43,
    45,
    45,
    161,
    89,
    323,
    47,
    23,
    47,
    263,
)
QPP_F2 = (
    10,
    12,
    42,
    16,
    18,
    20,
    22,
    24,
    26,
    84,
    90,
    32,
    34,
    108,
    38,
    120,
    84,
    44,
    46,
    48,
    50,
    52,
    36,
    56,
    58,
    60,
    62,
    32,
    198,
    68,
    210,
    36,
    74,
    76,
    78,
    120,
    82,
    84,
    86,
    44,
    90,
    46,
    94,
    48,
    98,
    40,
    102,
    52,
    106,
    72,
    110,
    168,
    114,
    58,
    118,
    180,
    122,
    62,
    84,
    64,
    66,
    68,
    420,
    96,
    74,
    76,
    234,
    80,
    82,
    252,
    86,
    44,
    120,
    92,
    94,
    48,
    98,
    80,
    102,
    52,
    106,
    48,
    110,
    112,
    114,
    58,
    118,
    60,
    122,
    124,
    84,
    64,
    66,
    204,
    140,
    72,
    74,
    76,
    78,
    240,
    82,
    252,
    86,
    88,
    60,
    92,
    846,
    48,
    28,
    80,
    102,
    104,
    954,
    96,
    110,
    112,
    114,
    116,
    354,
    120,
    610,
    124,
    420,
    64,
    66,
    136,
    420,
    216,
    444,
    456,
    468,
    80,
    164,
    504,
    172,
    88,
    300,
    92,
    188,
    96,
    28,
    240,
    204,
    104,
    212,
    192,
    220,
    336,
    228,
    232,
    236,
    120,
    244,
    248,
    168,
    64,
    130,
    264,
    134,
    408,
    138,
    280,
    142,
    480,
    146,
    444,
    120,
    152,
    462,
    234,
    158,
    80,
    96,
    902,
    166,
    336,
    170,
    86,
    174,
    176,
    178,
    120,
    182,
    184,
    186,
    94,
    190,
    480,
)

_SUBBLOCK_PERMUTATION = np.array(
    [
        0,
        16,
        8,
        24,
        4,
        20,
        12,
        28,
        2,
        18,
        10,
        26,
        6,
        22,
        14,
        30,
        1,
        17,
        9,
        25,
        5,
        21,
        13,
        29,
        3,
        19,
        11,
        27,
        7,
        23,
        15,
        31,
    ]
)


def qpp_interleaver(k: int) -> np.ndarray:
    """Pi(i) = (f1 i + f2 i^2) mod K: the second constituent encoder reads c[Pi(i)]."""
    where = np.flatnonzero(k == BLOCK_SIZES)
    if not where.size:
        raise ValueError(f"turbo block size {k} is not in Table 5.1.3-3 (40..6144)")
    f1, f2 = QPP_F1[where[0]], QPP_F2[where[0]]
    i = np.arange(k, dtype=np.int64)
    return (f1 * i + f2 * i * i) % k


def _poly_bits(value: int) -> list[int]:
    return [(value >> (23 - t)) & 1 for t in range(24)]


def _times_d(value: int, poly: int) -> int:
    """value * D mod g for a remainder of degree < 24."""
    return ((value << 1) ^ (poly if value & 0x800000 else 0)) & 0xFFFFFF


def _gf2_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a.astype(np.float32) @ b.astype(np.float32)).astype(np.int64) & 1).astype(np.uint8)


def _crc_rows(poly: int, length: int) -> np.ndarray:
    """Row i: the 24 CRC bits (p0 first) that message bit i contributes, D^(24+length-1-i) mod g.

    Remainders r_j = D^(24+j) mod g are filled by doubling: r_(j+n) = r_j M_n over GF(2), where
    M_n multiplies by D^n, and M_2n = M_n M_n.
    """
    rows = np.array([_poly_bits(poly & 0xFFFFFF)], np.uint8)  # D^24 mod g
    step = np.array([_poly_bits(_times_d(1 << (23 - t), poly)) for t in range(24)], np.uint8)
    while len(rows) < length:
        rows = np.concatenate([rows, _gf2_matmul(rows, step)])
        step = _gf2_matmul(step, step)
    return rows[:length][::-1]


_CRC_TABLES: dict[int, np.ndarray] = {}


def _crc_byte_tables(poly: int, length: int) -> np.ndarray:
    """(length / 8, 256) uint32: the CRC contribution of each value of each message byte.

    A byte's contribution depends only on its distance from the message end, so the
    table of a shorter message is the tail of a longer one's: one table per polynomial,
    grown by doubling, serves every transport block size."""
    table = _CRC_TABLES.get(poly)
    if table is None or 8 * len(table) < length:
        size = max(8192, 1 << (int(length) - 1).bit_length())
        table = _CRC_TABLES[poly] = _build_crc_byte_tables(poly, size)
    return table[len(table) - length // 8 :]


def _build_crc_byte_tables(poly: int, length: int) -> np.ndarray:
    rows = _crc_rows(poly, length)
    packed = (rows.astype(np.uint32) << np.arange(23, -1, -1, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
    per_byte = packed.reshape(-1, 8)  # column b: message bit 8p + b, the byte's bit of weight 2^(7-b)
    values = np.arange(256)
    tables = np.zeros((len(per_byte), 256), np.uint32)
    for bit in range(8):
        has = ((values >> (7 - bit)) & 1).astype(bool)
        tables[:, has] ^= per_byte[:, bit : bit + 1]
    return tables


def crc24(bits: np.ndarray, poly: int) -> np.ndarray:
    """CRC parity bits (rows x 24, p0 first) of each row of `bits` (zero preset, not inverted).

    The CRC is linear in the message: an XOR of per-byte table entries, all rows at once.
    """
    bits = np.atleast_2d(bits)
    n, length = bits.shape
    lead = (-length) % 8  # leading zeros leave the CRC unchanged
    if lead:
        bits = np.concatenate([np.zeros((n, lead), np.uint8), bits], axis=1)
    packed = np.packbits(bits, axis=1)
    tables = _crc_byte_tables(poly, bits.shape[1])
    crc = np.bitwise_xor.reduce(tables[np.arange(tables.shape[0]), packed], axis=1)
    return ((crc[:, None] >> np.arange(23, -1, -1, dtype=np.uint32)) & 1).astype(np.uint8)


def segmentation(tbs: int) -> tuple[int, int, int]:
    """(C, K+, filler) of 5.1.2 for a transport block of `tbs` bits; here only K+ blocks are used."""
    b = tbs + 24
    c = 1 if b <= MAX_BLOCK else -(-b // (MAX_BLOCK - 24))
    b_prime = b if c == 1 else b + 24 * c
    k_plus = int(BLOCK_SIZES[np.searchsorted(BLOCK_SIZES, -(-b_prime // c))])
    return c, k_plus, c * k_plus - b_prime


@functools.lru_cache(maxsize=256)
def transport_block_size(target_bits: int) -> int:
    """A TB size near `target_bits` (TB + CRCs) whose segmentation has equal blocks and no filler."""
    best = None
    c0 = max(1, int(np.ceil(target_bits / MAX_BLOCK)))
    for c in (c0, c0 + 1):
        for k in BLOCK_SIZES:
            tbs = c * int(k) - 24 - (24 * c if c > 1 else 0)
            if tbs < 16 or segmentation(tbs) != (c, int(k), 0):
                continue
            if best is None or abs(c * k - target_bits) < abs(best[0] - target_bits):
                best = (c * int(k), tbs)
    if best is None:
        raise ValueError(f"no LTE transport block fits {target_bits:.0f} bits")
    return best[1]


def _shift(x: np.ndarray, s: int) -> np.ndarray:
    out = np.zeros_like(x)
    out[:, s:] = x[:, :-s]
    return out


def _rsc(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parity of the 8-state RSC (feedback 1 + D^2 + D^3, forward 1 + D + D^3) and its final register.

    The register input w = u / (1 + D^2 + D^3) over GF(2); that impulse response is periodic
    with period 7 (1011100...), so w is an XOR of four shifted per-residue prefix XORs of u:
    no loop over bits.
    """
    n, k = u.shape
    padded = np.zeros((n, -(-k // 7) * 7), np.uint8)
    padded[:, :k] = u
    prefix = np.bitwise_xor.accumulate(padded.reshape(n, -1, 7), axis=1).reshape(n, -1)[:, :k]
    w = prefix ^ _shift(prefix, 2) ^ _shift(prefix, 3) ^ _shift(prefix, 4)
    z = w ^ _shift(w, 1) ^ _shift(w, 3)
    return z, w[:, -1:-4:-1]  # (w[K-1], w[K-2], w[K-3])


def _terminate(register: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Three tail steps with the switch on feedback: systematic x and parity z, each (n, 3)."""
    s1, s2, s3 = register[:, 0].copy(), register[:, 1].copy(), register[:, 2].copy()
    xs, zs = [], []
    for _ in range(3):
        xs.append(s2 ^ s3)
        zs.append(s1 ^ s3)
        s1, s2, s3 = np.zeros_like(s1), s1, s2
    return np.stack(xs, axis=1), np.stack(zs, axis=1)


def turbo_encode(blocks: np.ndarray) -> np.ndarray:
    """(n, K) bits -> (n, 3, K + 4) streams d(0), d(1), d(2) with the tail bits of 5.1.3.2.2."""
    n, k = blocks.shape
    z1, reg1 = _rsc(blocks)
    z2, reg2 = _rsc(blocks[:, qpp_interleaver(k)])
    x1t, z1t = _terminate(reg1)
    x2t, z2t = _terminate(reg2)
    d = np.empty((n, 3, k + 4), np.uint8)
    d[:, 0, :k], d[:, 1, :k], d[:, 2, :k] = blocks, z1, z2
    d[:, 0, k:] = np.stack([x1t[:, 0], z1t[:, 1], x2t[:, 0], z2t[:, 1]], axis=1)
    d[:, 1, k:] = np.stack([z1t[:, 0], x1t[:, 2], z2t[:, 0], x2t[:, 2]], axis=1)
    d[:, 2, k:] = np.stack([x1t[:, 1], z1t[:, 2], x2t[:, 1], z2t[:, 2]], axis=1)
    return d


@functools.lru_cache(maxsize=32)
def circular_buffer(k: int) -> np.ndarray:
    """Indices into the flattened (3, K+4) streams in transmission order from k0 (rv 0), <NULL> removed."""
    d = k + 4
    rows = -(-d // 32)
    n_dummy = 32 * rows - d
    r, j = np.meshgrid(np.arange(rows), np.arange(32), indexing="ij")
    y_01 = (r * 32 + _SUBBLOCK_PERMUTATION[j]).T.reshape(-1)  # read column by column
    kk = np.arange(32 * rows)
    y_2 = (_SUBBLOCK_PERMUTATION[kk // rows] + 32 * (kk % rows) + 1) % (32 * rows)

    def to_stream(y, stream):
        return np.where(y >= n_dummy, stream * d + y - n_dummy, -1)

    v0, v1, v2 = to_stream(y_01, 0), to_stream(y_01, 1), to_stream(y_2, 2)
    w = np.concatenate([v0, np.stack([v1, v2], axis=1).reshape(-1)])
    k0 = 2 * rows  # R_subblock (2 ceil(N_cb / (8 R_subblock)) rv + 2) with rv = 0
    ordered = np.roll(w, -k0)
    return ordered[ordered >= 0]


def dlsch_encode(transport_blocks: np.ndarray, n_coded: int, bits_per_symbol: int) -> np.ndarray:
    """Transport blocks (n, TBS) -> (n, n_coded) rate-matched codewords (CRC, segmentation, turbo, RM)."""
    n, tbs = transport_blocks.shape
    c, k, filler = segmentation(tbs)
    if filler:
        raise ValueError(f"TBS {tbs} needs filler bits; use transport_block_size()")
    with_crc = np.empty((n, tbs + 24), np.uint8)
    with_crc[:, :tbs] = transport_blocks
    with_crc[:, tbs:] = crc24(transport_blocks, CRC24A)
    if c > 1:
        blocks = with_crc.reshape(n * c, k - 24)
        blocks = np.concatenate([blocks, crc24(blocks, CRC24B)], axis=1)
    else:
        blocks = with_crc
    d = turbo_encode(blocks)
    symbols = n_coded // bits_per_symbol
    gamma = symbols % c
    lengths = [bits_per_symbol * (symbols // c if r < c - gamma else -(-symbols // c)) for r in range(c)]
    flat = d.reshape(n, c, -1)
    order = circular_buffer(k)
    out = []
    for first, stop in ((0, c - gamma), (c - gamma, c)):  # two groups of equal E
        if stop > first:
            e = lengths[first]
            out.append(flat[:, first:stop][..., order[np.arange(e) % len(order)]].reshape(n, -1))
    return np.concatenate(out, axis=1)

"""5G NR LDPC channel coding of the DL-SCH (3GPP TS 38.212 5.1-5.5, 7.2) and the transport block
size of 38.214 5.1.3.2: transport block CRC (24A, or 16 for small blocks), base graph selection,
code block segmentation with CRC24B and filler bits, LDPC encoding with the lifted base graph,
rate matching (circular buffer, rv 0, no limited buffer: I_LBRM = 0) with bit interleaving, and
code block concatenation.

Hand-written in numpy because the packages that implement it do not fit: py3gpp is AGPL-3 (its
network-use terms would bind this GPL-3 project) and Sionna needs a deep-learning framework and
numpy 2. The encoder works bit-sliced: a row of the work array holds one codeword bit of every
code block, 8 blocks a byte, so each circulant of the parity-check matrix costs one XOR of a few
machine words for all of them; CRCs, segmentation and rate matching handle all transport blocks
of a waveform at once.
"""

from __future__ import annotations

import binascii
import functools
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.sparse

from .turbo import CRC24A, CRC24B

INFO_COLUMNS = {1: 22, 2: 10}
"""Systematic columns of each base graph (K_b of the graph; BG2 uses fewer for small blocks)."""
CHECK_ROWS = {1: 46, 2: 42}
MAX_BLOCK = {1: 8448, 2: 3840}  # K_cb of 5.2.2
CRC_CHUNK_BYTES = 64  # a long CRC is computed in pieces of this many bytes (crc24_bytes)
CORE_ROWS = 4  # the double-diagonal core: the first 4 rows and parity columns of either graph
SET_BASES = (2, 3, 5, 7, 9, 11, 13, 15)
"""Table 5.3.2-1: set iLS holds the lifting sizes a 2^j <= 384 for its a."""

# Table 5.1.3.2-1 of 38.214: transport block sizes for N_info <= 3824.
SMALL_TBS = np.fromstring(
    """24 32 40 48 56 64 72 80 88 96 104 112 120 128 136 144 152 160 168 176 184 192 208 224 240 256
    272 288 304 320 336 352 368 384 408 432 456 480 504 528 552 576 608 640 672 704 736 768 808 848
    888 928 984 1032 1064 1128 1160 1192 1224 1256 1288 1320 1352 1416 1480 1544 1608 1672 1736
    1800 1864 1928 2024 2088 2152 2216 2280 2408 2472 2536 2600 2664 2728 2792 2856 2976 3104 3240
    3368 3496 3624 3752 3824""",
    dtype=int,
    sep=" ",
)


# --- sizes: 38.214 5.1.3.2, 38.212 5.2.2 and 7.2.2 -------------------------------------------------


@functools.lru_cache(maxsize=1024)
def transport_block_size(
    n_prb: int, re_per_prb: int, code_rate: float | Fraction, bits_per_symbol: int, layers: int = 1
) -> int:
    """TBS of 38.214 5.1.3.2 for `n_prb` PRBs with `re_per_prb` PDSCH REs each (N'_RE: the
    scheduled symbols' REs less DMRS and overhead; SS/PBCH REs are not subtracted).

    Exact integer arithmetic on N_info x den(R), so that no rounding moves a size across a step."""
    if n_prb < 1 or re_per_prb < 1:
        raise ValueError(f"a transport block needs resource elements, got {n_prb} PRBs x {re_per_prb} REs")
    rate = Fraction(code_rate)
    den = rate.denominator
    scaled = min(156, re_per_prb) * n_prb * bits_per_symbol * layers * rate.numerator  # N_info den
    if scaled <= 3824 * den:
        n = max(3, (scaled // den).bit_length() - 1 - 6)  # floor(log2(N_info)) - 6
        quantised = max(24, 2**n * (scaled // (den * 2**n)))
        return int(SMALL_TBS[np.searchsorted(SMALL_TBS, quantised)])
    above = scaled - 24 * den  # (N_info - 24) den
    n = (above // den).bit_length() - 1 - 5
    quantised = max(3840, 2**n * ((2 * above + den * 2**n) // (2 * den * 2**n)))  # round, halves up
    if 4 * rate.numerator <= den:  # R <= 1/4
        blocks = -(-(quantised + 24) // 3816)
    elif quantised > 8424:
        blocks = -(-(quantised + 24) // 8424)
    else:
        blocks = 1
    return 8 * blocks * -(-(quantised + 24) // (8 * blocks)) - 24


@functools.lru_cache(maxsize=1024)
def base_graph(tbs: int, code_rate: float | Fraction) -> int:
    """LDPC base graph of 7.2.2: BG2 for small blocks and low rates, where it codes better."""
    rate = Fraction(code_rate)
    if tbs <= 292 or (tbs <= 3824 and rate <= Fraction(67, 100)) or rate <= Fraction(1, 4):
        return 2
    return 1


@functools.cache
def lifting_sizes() -> dict[int, int]:
    """Every lifting size Z of Table 5.3.2-1 with its set index iLS."""
    return {a * 2**j: i_ls for i_ls, a in enumerate(SET_BASES) for j in range(8) if a * 2**j <= 384}


@dataclass(frozen=True)
class Segmentation:
    """Code block segmentation of one transport block (5.2.2) and the code it is encoded with."""

    base_graph: int
    blocks: int  # C
    block_bits: int  # K': payload and CB CRC per code block; K' .. K - 1 are filler bits
    lifting: int  # Z_c

    @property
    def info_bits(self) -> int:
        """K: LDPC input bits per code block, fillers included."""
        return INFO_COLUMNS[self.base_graph] * self.lifting

    @property
    def codeword_bits(self) -> int:
        """N: encoded bits per code block once the first 2 Z_c systematic bits are dropped."""
        return (INFO_COLUMNS[self.base_graph] + CHECK_ROWS[self.base_graph] - 2) * self.lifting

    @property
    def fillers(self) -> int:
        """F = K - K'."""
        return self.info_bits - self.block_bits


@functools.lru_cache(maxsize=1024)
def segment(b: int, graph: int) -> Segmentation:
    """Segmentation of B = TBS + TB CRC bits for base graph `graph` (5.2.2)."""
    max_block = MAX_BLOCK[graph]
    blocks = 1 if b <= max_block else -(-b // (max_block - 24))
    if b % blocks:
        raise ValueError(f"{b} bits do not split into {blocks} equal code blocks (not a 38.214 TBS)")
    block_bits = b // blocks + (24 if blocks > 1 else 0)
    if graph == 1:
        columns = 22
    else:
        columns = 10 if b > 640 else 9 if b > 560 else 8 if b > 192 else 6
    lifting = min(z for z in lifting_sizes() if columns * z >= block_bits)
    return Segmentation(graph, blocks, block_bits, lifting)


def code_block_lengths(blocks: int, coded_bits: int, bits_per_symbol: int) -> list[int]:
    """E_r of 5.4.2.1 (one layer): the symbols of G shared out, the later blocks taking the remainder."""
    symbols = coded_bits // bits_per_symbol
    shorter = blocks - symbols % blocks
    return [bits_per_symbol * (symbols // blocks if r < shorter else -(-symbols // blocks)) for r in range(blocks)]


# --- CRC: 38.212 5.1 ----------------------------------------------------------------------------------


def _remainders(poly: int, count: int, first: int) -> list[int]:
    """first, first D, first D^2, ... mod g (24-bit remainders), `count` of them."""
    values = [first]
    for _ in range(count - 1):
        r = values[-1]
        values.append(((r << 1) ^ (poly if r & 0x800000 else 0)) & 0xFFFFFF)
    return values


def _byte_table(images: np.ndarray) -> np.ndarray:
    """(..., 256) uint32 from (..., 8) images of a byte's bits (MSB first): the image of each byte value."""
    table = np.zeros(images.shape[:-1] + (256,), np.uint32)
    values = np.arange(256)
    for bit in range(8):
        table[..., (values >> (7 - bit)) & 1 == 1] ^= images[..., bit : bit + 1]
    return table


@functools.cache
def _chunk_table(poly: int) -> np.ndarray:
    """CRC of each value v of byte p of a CRC_CHUNK_BYTES-byte message, at index 256 p + v."""
    per_bit = _remainders(poly, 8 * CRC_CHUNK_BYTES, poly)[::-1]  # message bit i -> D^(24 + last - i) mod g
    return _byte_table(np.array(per_bit, np.uint32).reshape(CRC_CHUNK_BYTES, 8)).ravel()


_MOVES: dict[int, np.ndarray] = {}


def _moves(poly: int, chunks: int) -> np.ndarray:
    """(chunks, 3, 256): [k, q, v] is byte q = v of a remainder (MSB first) times D^(8 CRC_CHUNK_BYTES
    (chunks - 1 - k)) mod g. Fewer chunks take the tail: one table per polynomial, grown by doubling."""
    moves = _MOVES.get(poly)
    if moves is None or len(moves) < chunks:
        count = max(256, 2 * chunks)
        step = np.array([_remainders(poly, 8 * CRC_CHUNK_BYTES + 1, 1 << (23 - t))[-1] for t in range(24)], np.uint32)
        images = [1 << np.arange(23, -1, -1, dtype=np.uint32)]  # D^(23 - t) itself
        powers = np.arange(24, dtype=np.uint32)
        for _ in range(count - 1):
            spread = (images[-1][:, None] >> (23 - powers)) & 1  # [t, u]: coefficient of D^(23 - u)
            images.append(np.bitwise_xor.reduce(np.where(spread == 1, step, 0), axis=1).astype(np.uint32))
        moves = _MOVES[poly] = _byte_table(np.array(images[::-1]).reshape(count, 3, 8))
    return moves[len(moves) - chunks :]


def crc24_bytes(packed: np.ndarray, poly: int) -> np.ndarray:
    """24-bit CRC (zero preset, as an integer with p0 the MSB) of each row of message bytes.

    Byte tables for a whole transport block would fill megabytes and miss the cache on every
    look-up, so the CRC is the XOR of those of CRC_CHUNK_BYTES-byte chunks, each moved to its
    place by D^(8 CRC_CHUNK_BYTES j) mod g with three more look-ups.
    """
    n, length = packed.shape
    chunks = -(-length // CRC_CHUNK_BYTES)
    padded = np.zeros((n, chunks * CRC_CHUNK_BYTES), np.uint8)  # leading zeros leave a CRC unchanged
    padded[:, padded.shape[1] - length :] = packed
    # Flat indices byte position * 256 + value: np.take with them is ~3x faster than table[p, value].
    index = padded.reshape(n, chunks, CRC_CHUNK_BYTES) + np.arange(0, 256 * CRC_CHUNK_BYTES, 256, dtype=np.uint16)
    partial = np.bitwise_xor.reduce(np.take(_chunk_table(poly), index), axis=2)
    if chunks == 1:
        return partial[:, 0]
    parts = partial[..., None] >> np.array([16, 8, 0], np.uint32) & 0xFF
    moved = _moves(poly, chunks)[np.arange(chunks)[:, None], np.arange(3), parts]
    return np.bitwise_xor.reduce(moved.reshape(n, -1), axis=1)


def _pack_aligned(bits: np.ndarray) -> np.ndarray:
    """Rows of bits -> bytes, zeros in front when a row is not whole bytes (a CRC ignores them)."""
    lead = -bits.shape[1] % 8
    if lead:
        bits = np.concatenate([np.zeros((len(bits), lead), np.uint8), bits], axis=1)
    return np.packbits(bits, axis=1)


def _crc_bits(values: np.ndarray | list[int], length: int) -> np.ndarray:
    """CRC integers (p0 the MSB) -> rows of `length` parity bits."""
    return ((np.asarray(values, np.uint32)[:, None] >> np.arange(length - 1, -1, -1, dtype=np.uint32)) & 1).astype(
        np.uint8
    )


def _right_aligned(parts: Sequence[np.ndarray]) -> np.ndarray:
    """(rows, bytes) arrays of different widths stacked, zeros in front, which leave CRCs unchanged."""
    aligned = np.zeros((sum(len(part) for part in parts), max(part.shape[1] for part in parts)), np.uint8)
    row = 0
    for part in parts:
        aligned[row : row + len(part), aligned.shape[1] - part.shape[1] :] = part
        row += len(part)
    return aligned


def transport_crcs(transport_blocks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """TB CRC parity bits (p0 first) of each block (7.2.1): CRC24A above 3824 bits, all in one
    crc24_bytes call; CRC16 up to it, which is CRC-CCITT with a zero preset (binascii.crc_hqx)."""
    packed = [_pack_aligned(block[None]) for block in transport_blocks]
    long = [part for block, part in zip(transport_blocks, packed) if len(block) > 3824]
    long_crcs: Iterator[np.ndarray] = iter(_crc_bits(crc24_bytes(_right_aligned(long), CRC24A), 24) if long else [])
    return [
        next(long_crcs) if len(block) > 3824 else _crc_bits([binascii.crc_hqx(part.tobytes(), 0)], 16)[0]
        for block, part in zip(transport_blocks, packed)
    ]


# --- LDPC encoding: 38.212 5.3.2 --------------------------------------------------------------------


@functools.cache
def base_matrix(graph: int, i_ls: int) -> np.ndarray:
    """(rows, columns) shift coefficients V_ij of the base graph for set iLS; -1 marks a zero block."""
    table = np.fromstring(BASE_GRAPH_1 if graph == 1 else BASE_GRAPH_2, dtype=int, sep=" ").reshape(-1, 10)
    base = np.full((CHECK_ROWS[graph], INFO_COLUMNS[graph] + CHECK_ROWS[graph]), -1)
    base[table[:, 0], table[:, 1]] = table[:, 2 + i_ls]
    return base


def parity_check_matrix(graph: int, lifting: int) -> scipy.sparse.csr_matrix:
    """H: each base entry V_ij >= 0 lifted to the Z_c x Z_c identity cyclically shifted right by V_ij mod Z_c."""
    base = base_matrix(graph, lifting_sizes()[lifting])
    rows, cols = np.nonzero(base >= 0)
    shifts = base[rows, cols] % lifting
    k = np.arange(lifting)
    return scipy.sparse.csr_matrix(
        (
            np.ones(len(rows) * lifting, np.uint8),
            (
                (rows[:, None] * lifting + k).ravel(),
                (cols[:, None] * lifting + (k + shifts[:, None]) % lifting).ravel(),
            ),
        ),
        shape=(base.shape[0] * lifting, base.shape[1] * lifting),
    )


@dataclass(frozen=True)
class _Step:
    """New work rows, each the XOR of the work rows index[starts[r]:starts[r + 1]]."""

    index: np.ndarray
    starts: np.ndarray

    def rows(self, count: int) -> _Step:
        """The first `count` rows only."""
        return _Step(self.index[: self.starts[count]], self.starts[: count + 1])

    def xor(self, words: np.ndarray) -> np.ndarray:
        """The new rows from work rows `words` (np.take is ~3x faster than fancy indexing here)."""
        return np.bitwise_xor.reduceat(np.take(words, self.index, axis=0), self.starts[:-1], axis=0)


def _csr_step(matrix: scipy.sparse.csr_matrix, offset: int) -> _Step:
    return _Step(matrix.indices.astype(np.intp) + offset, matrix.indptr.astype(np.intp))


def _core_parity_terms(graph: int, lifting: int) -> list[list[set[int]]]:
    """Core parity column k as sum_j sum_(s in terms[k][j]) P_s lambda_j, lambda_j = row j's systematic part.

    P_s is the identity shifted by s (P_a P_b = P_(a+b)). Adding the four core rows cancels the
    double diagonal and leaves P_b p_0 (the first parity column's entries V, b, V: two cancel);
    rows 0-2 then give p_1, p_2, p_3 one after the other.
    """
    base = base_matrix(graph, lifting_sizes()[lifting])
    first = INFO_COLUMNS[graph]
    shifts = [int(v) % lifting for v in base[:CORE_ROWS, first] if v >= 0]
    (odd,) = {s for s in shifts if shifts.count(s) % 2}
    terms = [[{-odd % lifting} for _ in range(CORE_ROWS)]]
    for i in range(CORE_ROWS - 1):
        row: list[set[int]] = [set() for _ in range(CORE_ROWS)]
        row[i] = {0}
        for k, v in enumerate(base[i, first : first + i + 1]):
            if v >= 0:
                for j in range(CORE_ROWS):
                    row[j] ^= {(t + int(v)) % lifting for t in terms[k][j]}
        terms.append(row)
    return terms


@dataclass(frozen=True)
class _EncoderPlan:
    """The three XOR steps of encoding. Work rows: lambda (4 Z_c), then the codeword c_0, c_1, ...

    lambda: the core rows' systematic sums; core: the 4 Z_c double-diagonal parity bits from
    lambda; extension: each further check row gives its own parity bit from c_0 .. the core parity.
    """

    lambdas: _Step
    core: _Step
    extension: _Step


@functools.lru_cache(maxsize=128)  # every (graph, Z_c): 2 x 51, about 16 MB
def _encoder_plan(graph: int, lifting: int) -> _EncoderPlan:
    h = parity_check_matrix(graph, lifting)
    scratch = CORE_ROWS * lifting
    info = INFO_COLUMNS[graph] * lifting
    k = np.arange(lifting)
    index, counts = [], []
    for terms in _core_parity_terms(graph, lifting):
        pairs = [(j, s) for j, shifts in enumerate(terms) for s in sorted(shifts)]
        index.append(np.array([j * lifting + (k + s) % lifting for j, s in pairs]).T.ravel())
        counts.append(np.full(lifting, len(pairs)))
    return _EncoderPlan(
        lambdas=_csr_step(h[:scratch, :info], scratch),
        core=_Step(np.concatenate(index).astype(np.intp), np.r_[0, np.cumsum(np.concatenate(counts))].astype(np.intp)),
        extension=_csr_step(h[scratch:, : info + scratch], scratch),
    )


def _slots(groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Code block rows in the order _encode_sliced packs them: each group from a byte of its own on,
    -1 (the zero row) filling the rest of its last byte."""
    slots = np.full(sum(-(-len(rows) // 8) * 8 for rows in groups), -1, np.intp)
    start = 0
    for rows in groups:
        slots[start : start + len(rows)] = rows
        start += -(-len(rows) // 8) * 8
    return slots


def _encode_sliced(blocks: np.ndarray, slots: np.ndarray, graph: int, lifting: int, checks: int) -> np.ndarray:
    """Code blocks blocks[slots] (K' <= K bits each, then fillers: 0; the last row of `blocks` all 0)
    -> (codeword bits, bytes) bit-sliced codewords: row p holds c_p of every code block, that of
    slots[8 w + b] in bit 7 - b of byte w (packbits order); rows are whole 64-bit words."""
    plan = _encoder_plan(graph, lifting)
    k = INFO_COLUMNS[graph] * lifting
    scratch = CORE_ROWS * lifting
    by_byte = slots.reshape(-1, 8)
    used = min(k, blocks.shape[1])  # a wider `blocks` holds only zeros past K' <= K
    packed = np.zeros((len(by_byte), used), np.uint8)
    for bit in range(8):
        part = np.take(blocks, by_byte[:, bit], axis=0)[:, :used]
        np.left_shift(part, 7 - bit, out=part)
        packed |= part
    work = np.empty((scratch + (INFO_COLUMNS[graph] + checks) * lifting, -(-len(packed) // 8) * 8), np.uint8)
    work[scratch : scratch + k] = 0
    work[scratch : scratch + used, : len(packed)] = packed.T  # transposing only the bytes in use
    words = work.view(np.uint64)
    core = scratch + k
    words[:scratch] = plan.lambdas.xor(words)
    words[core : core + scratch] = plan.core.xor(words)
    extension = plan.extension.rows((checks - CORE_ROWS) * lifting)
    if len(extension.starts) > 1:
        words[core + scratch :] = extension.xor(words)
    return work[scratch:]


def _unslice(sliced: np.ndarray, n: int) -> np.ndarray:
    """Bit-sliced rows (as _encode_sliced makes them) -> (n, rows) bits, one code block per row.

    Shifting whole byte rows is ~3x faster than np.unpackbits along the first axis plus a transpose.
    """
    columns = np.ascontiguousarray(sliced[:, : -(-n // 8)].T)
    bits = np.empty((n, len(sliced)), np.uint8)
    for bit in range(min(8, n)):
        rows = bits[bit::8]
        np.right_shift(columns[: len(rows)], 7 - bit, out=rows)
        rows &= 1
    return bits


def ldpc_encode(blocks: np.ndarray, graph: int, lifting: int, checks: int | None = None) -> np.ndarray:
    """(n, K) code blocks (fillers as 0) -> (n, (K_b + checks) Z_c) codewords c of 5.3.2, systematic first.

    `checks` limits the parity to the bits of the first check rows (at least the 4 core rows),
    enough for rate matching that reads no further; by default every row of the graph.
    """
    if blocks.shape[1] != INFO_COLUMNS[graph] * lifting:
        raise ValueError(
            f"BG{graph} with Z_c = {lifting} encodes {INFO_COLUMNS[graph] * lifting} bits, got {blocks.shape[1]}"
        )
    checks = CHECK_ROWS[graph] if checks is None else max(CORE_ROWS, min(checks, CHECK_ROWS[graph]))
    with_zero_row = np.concatenate([blocks, np.zeros((1, blocks.shape[1]), np.uint8)])
    return _unslice(_encode_sliced(with_zero_row, _slots([range(len(blocks))]), graph, lifting, checks), len(blocks))


# --- rate matching and the DL-SCH chain: 38.212 5.4.2, 5.5, 7.2 ----------------------------------------


def _rate_match_sliced(sliced: np.ndarray, seg: Segmentation, length: int, bits_per_symbol: int) -> np.ndarray:
    """The E = `length` transmitted bits of bit-sliced codewords, in order, still bit-sliced.

    Bit selection reads the circular buffer d = c_(2 Z_c) .. c_(N + 2 Z_c - 1) (N_cb = N) from
    k0 = 0 (rv 0), skipping the fillers and wrapping round (5.4.2.1); bit interleaving then sends
    e_(i E / Q_m + j) as bit i of symbol j (5.4.2.2). Whole rows move, 8 code blocks a byte.
    """
    buffer = np.concatenate([sliced[2 * seg.lifting : seg.block_bits], sliced[seg.info_bits :]])
    if length > len(buffer):
        buffer = np.tile(buffer, (-(-length // len(buffer)), 1))
    chosen = buffer[:length].reshape(bits_per_symbol, length // bits_per_symbol, -1).transpose(1, 0, 2)
    return chosen.reshape(length, -1)


def dlsch_encode(
    transport_blocks: Sequence[np.ndarray],
    coded_bits: Sequence[int],
    bits_per_symbol: int,
    code_rate: float | Fraction,
) -> np.ndarray:
    """Transport blocks -> their concatenated codewords of G = coded_bits[i] bits each (7.2.1-7.2.6).

    CRC, segmentation, LDPC and rate matching as 38.212 prescribes for one layer, rv 0. G must be
    a multiple of `bits_per_symbol`. The CRCs of all blocks are computed together, and code blocks
    are LDPC-encoded together whenever they share the base graph and Z_c.
    """
    if len(coded_bits) != len(transport_blocks) or any(int(g) % bits_per_symbol for g in coded_bits):
        raise ValueError(f"need one G per transport block, each a multiple of {bits_per_symbol} bits")
    rate = Fraction(code_rate)
    blocks_in = [np.asarray(block, np.uint8) for block in transport_blocks]
    if not blocks_in:
        return np.empty(0, np.uint8)
    with_crc = [np.concatenate([block, crc]) for block, crc in zip(blocks_in, transport_crcs(blocks_in))]
    segs = [segment(len(bits), base_graph(len(block), rate)) for bits, block in zip(with_crc, blocks_in)]
    first = np.cumsum([0, *(seg.blocks for seg in segs)])
    blocks = np.zeros((first[-1] + 1, max(seg.block_bits for seg in segs)), np.uint8)  # fillers, last row stay 0
    payloads = []
    for bits, seg, row in zip(with_crc, segs, first):
        shares = bits.reshape(seg.blocks, -1)
        blocks[row : row + seg.blocks, : shares.shape[1]] = shares
        if seg.blocks > 1:
            payloads.append(_pack_aligned(shares))
    if payloads:  # CRC24B on each code block of a segmented TB
        crcs = _crc_bits(crc24_bytes(_right_aligned(payloads), CRC24B), 24)
        done = 0
        for seg, row in zip(segs, first):
            if seg.blocks > 1:
                blocks[row : row + seg.blocks, seg.block_bits - 24 : seg.block_bits] = crcs[done : done + seg.blocks]
                done += seg.blocks

    # Encoding groups (base graph, Z_c), each of rate-matching groups (segmentation, E).
    groups: dict[tuple[int, int], dict[tuple[Segmentation, int], list[int]]] = {}
    for seg, g, row in zip(segs, coded_bits, first):
        for length, run in itertools.groupby(code_block_lengths(seg.blocks, int(g), bits_per_symbol)):
            count = len(list(run))
            if length:
                code = groups.setdefault((seg.base_graph, seg.lifting), {})
                code.setdefault((seg, length), []).extend(range(row, row + count))
            row += count
    coded: list[np.ndarray] = [np.empty(0, np.uint8)] * first[-1]
    for (graph, lifting), matching in groups.items():
        read = max(min(seg.codeword_bits, length + seg.fillers) for seg, length in matching)
        checks = -(-(2 * lifting + read) // lifting) - INFO_COLUMNS[graph]  # check rows rate matching reads
        sliced = _encode_sliced(blocks, _slots(list(matching.values())), graph, lifting, max(CORE_ROWS, checks))
        start = 0
        for (seg, length), members in matching.items():
            width = -(-len(members) // 8)
            chosen = _rate_match_sliced(sliced[:, start : start + width], seg, length, bits_per_symbol)
            for row, bits in zip(members, _unslice(chosen, len(members))):
                coded[row] = bits
            start += width
    return np.concatenate(coded)


# Shift coefficients V_ij of 38.212 Table 5.3.2-2 (BG1, 316 non-zero entries) and Table 5.3.2-3
# (BG2, 197): row i, column j, then V_ij for iLS = 0..7. Converted line for line by a script, not
# typed, from 5G_bg1.csv and 5G_bg2.csv of Sionna's LDPC module (sionna/phy/fec/ldpc/codes,
# Apache-2.0, (c) NVIDIA), which hold those tables; py3gpp ships the same files. A mistyped shift
# still gives a valid code (the parity checks would pass), so only a mechanical copy is trusted;
# the known-answer test in tests/test_phy_ldpc.py checks the whole chain against another encoder.
BASE_GRAPH_1 = """
 0  0 250 307  73 223 211 294   0 135
 0  1  69  19  15  16 198 118   0 227
 0  2 226  50 103  94 188 167   0 126
 0  3 159 369  49  91 186 330   0 134
 0  5 100 181 240  74 219 207   0  84
 0  6  10 216  39  10   4 165   0  83
 0  9  59 317  15   0  29 243   0  53
 0 10 229 288 162 205 144 250   0 225
 0 11 110 109 215 216 116   1   0 205
 0 12 191  17 164  21 216 339   0 128
 0 13   9 357 133 215 115 201   0  75
 0 15 195 215 298  14 233  53   0 135
 0 16  23 106 110  70 144 347   0 217
 0 18 190 242 113 141  95 304   0 220
 0 19  35 180  16 198 216 167   0  90
 0 20 239 330 189 104  73  47   0 105
 0 21  31 346  32  81 261 188   0 137
 0 22   1   1   1   1   1   1   0   1
 0 23   0   0   0   0   0   0   0   0
 1  0   2  76 303 141 179  77  22  96
 1  2 239  76 294  45 162 225  11 236
 1  3 117  73  27 151 223  96 124 136
 1  4 124 288 261  46 256 338   0 221
 1  5  71 144 161 119 160 268  10 128
 1  7 222 331 133 157  76 112   0  92
 1  8 104 331   4 133 202 302   0 172
 1  9 173 178  80  87 117  50   2  56
 1 11 220 295 129 206 109 167  16  11
 1 12 102 342 300  93  15 253  60 189
 1 14 109 217  76  79  72 334   0  95
 1 15 132  99 266   9 152 242   6  85
 1 16 142 354  72 118 158 257  30 153
 1 17 155 114  83 194 147 133   0  87
 1 19 255 331 260  31 156   9 168 163
 1 21  28 112 301 187 119 302  31 216
 1 22   0   0   0   0   0   0 105   0
 1 23   0   0   0   0   0   0   0   0
 1 24   0   0   0   0   0   0   0   0
 2  0 106 205  68 207 258 226 132 189
 2  1 111 250   7 203 167  35  37   4
 2  2 185 328  80  31 220 213  21 225
 2  4  63 332 280 176 133 302 180 151
 2  5 117 256  38 180 243 111   4 236
 2  6  93 161 227 186 202 265 149 117
 2  7 229 267 202  95 218 128  48 179
 2  8 177 160 200 153  63 237  38  92
 2  9  95  63  71 177   0 294 122  24
 2 10  39 129 106  70   3 127 195  68
 2 13 142 200 295  77  74 110 155   6
 2 14 225  88 283 214 229 286  28 101
 2 15 225  53 301  77   0 125  85  33
 2 17 245 131 184 198 216 131  47  96
 2 18 205 240 246 117 269 163 179 125
 2 19 251 205 230 223 200 210  42  67
 2 20 117  13 276  90 234   7  66 230
 2 24   0   0   0   0   0   0   0   0
 2 25   0   0   0   0   0   0   0   0
 3  0 121 276 220 201 187  97   4 128
 3  1  89  87 208  18 145  94   6  23
 3  3  84   0  30 165 166  49  33 162
 3  4  20 275 197   5 108 279 113 220
 3  6 150 199  61  45  82 139  49  43
 3  7 131 153 175 142 132 166  21 186
 3  8 243  56  79  16 197  91   6  96
 3 10 136 132 281  34  41 106 151   1
 3 11  86 305 303 155 162 246  83 216
 3 12 246 231 253 213  57 345 154  22
 3 13 219 341 164 147  36 269  87  24
 3 14 211 212  53  69 115 185   5 167
 3 16 240 304  44  96 242 249  92 200
 3 17  76 300  28  74 165 215 173  32
 3 18 244 271  77  99   0 143 120 235
 3 20 144  39 319  30 113 121   2 172
 3 21  12 357  68 158 108 121 142 219
 3 22   1   1   1   1   1   1   0   1
 3 25   0   0   0   0   0   0   0   0
 4  0 157 332 233 170 246  42  24  64
 4  1 102 181 205  10 235 256 204 211
 4 26   0   0   0   0   0   0   0   0
 5  0 205 195  83 164 261 219 185   2
 5  1 236  14 292  59 181 130 100 171
 5  3 194 115  50  86  72 251  24  47
 5 12 231 166 318  80 283 322  65 143
 5 16  28 241 201 182 254 295 207 210
 5 21 123  51 267 130  79 258 161 180
 5 22 115 157 279 153 144 283  72 180
 5 27   0   0   0   0   0   0   0   0
 6  0 183 278 289 158  80 294   6 199
 6  6  22 257  21 119 144  73  27  22
 6 10  28   1 293 113 169 330 163  23
 6 11  67 351  13  21  90  99  50 100
 6 13 244  92 232  63  59 172  48  92
 6 17  11 253 302  51 177 150  24 207
 6 18 157  18 138 136 151 284  38  52
 6 20 211 225 235 116 108 305  91  13
 6 28   0   0   0   0   0   0   0   0
 7  0 220   9  12  17 169   3 145  77
 7  1  44  62  88  76 189 103  88 146
 7  4 159 316 207 104 154 224 112 209
 7  7  31 333  50 100 184 297 153  32
 7  8 167 290  25 150 104 215 159 166
 7 14 104 114  76 158 164  39  76  18
 7 29   0   0   0   0   0   0   0   0
 8  0 112 307 295  33  54 348 172 181
 8  1   4 179 133  95   0  75   2 105
 8  3   7 165 130   4 252  22 131 141
 8 12 211  18 231 217  41 312 141 223
 8 16 102  39 296 204  98 224  96 177
 8 19 164 224 110  39  46  17  99 145
 8 21 109 368 269  58  15  59 101 199
 8 22 241  67 245  44 230 314  35 153
 8 24  90 170 154 201  54 244 116  38
 8 30   0   0   0   0   0   0   0   0
 9  0 103 366 189   9 162 156   6 169
 9  1 182 232 244  37 159  88  10  12
 9 10 109 321  36 213  93 293 145 206
 9 11  21 133 286 105 134 111  53 221
 9 13 142  57 151  89  45  92 201  17
 9 17  14 303 267 185 132 152   4 212
 9 18  61  63 135 109  76  23 164  92
 9 20 216  82 209 218 209 337 173 205
 9 31   0   0   0   0   0   0   0   0
10  1  98 101  14  82 178 175 126 116
10  2 149 339  80 165   1 253  77 151
10  4 167 274 211 174  28  27 156  70
10  7 160 111  75  19 267 231  16 230
10  8  49 383 161 194 234  49  12 115
10 14  58 354 311 103 201 267  70  84
10 32   0   0   0   0   0   0   0   0
11  0  77  48  16  52  55  25 184  45
11  1  41 102 147  11  23 322 194 115
11 12  83   8 290   2 274 200 123 134
11 16 182  47 289  35 181 351  16   1
11 21  78 188 177  32 273 166 104 152
11 22 252 334  43  84  39 338 109 165
11 23  22 115 280 201  26 192 124 107
11 33   0   0   0   0   0   0   0   0
12  0 160  77 229 142 225 123   6 186
12  1  42 186 235 175 162 217  20 215
12 10  21 174 169 136 244 142 203 124
12 11  32 232  48   3 151 110 153 180
12 13 234  50 105  28 238 176 104  98
12 18   7  74  52 182 243  76 207  80
12 34   0   0   0   0   0   0   0   0
13  0 177 313  39  81 231 311  52 220
13  3 248 177 302  56   0 251 147 185
13  7 151 266 303  72 216 265   1 154
13 20 185 115 160 217  47  94  16 178
13 23  62 370  37  78  36  81  46 150
13 35   0   0   0   0   0   0   0   0
14  0 206 142  78  14   0  22   1 124
14 12  55 248 299 175 186 322 202 144
14 15 206 137  54 211 253 277 118 182
14 16 127  89  61 191  16 156 130  95
14 17  16 347 179  51   0  66   1  72
14 21 229  12 258  43  79  78   2  76
14 36   0   0   0   0   0   0   0   0
15  0  40 241 229  90 170 176 173  39
15  1  96   2 290 120   0 348   6 138
15 10  65 210  60 131 183  15  81 220
15 13  63 318 130 209 108  81 182 173
15 18  75  55 184 209  68 176  53 142
15 25 179 269  51  81  64 113  46  49
15 37   0   0   0   0   0   0   0   0
16  1  64  13  69 154 270 190  88  78
16  3  49 338 140 164  13 293 198 152
16 11  49  57  45  43  99 332 160  84
16 20  51 289 115 189  54 331 122   5
16 22 154  57 300 101   0 114 182 205
16 38   0   0   0   0   0   0   0   0
17  0   7 260 257  56 153 110  91 183
17 14 164 303 147 110 137 228 184 112
17 16  59  81 128 200   0 247  30 106
17 17   1 358  51  63   0 116   3 219
17 21 144 375 228   4 162 190 155 129
17 39   0   0   0   0   0   0   0   0
18  1  42 130 260 199 161  47   1 183
18 12 233 163 294 110 151 286  41 215
18 13   8 280 291 200   0 246 167 180
18 18 155 132 141 143 241 181  68 143
18 19 147   4 295 186 144  73 148  14
18 40   0   0   0   0   0   0   0   0
19  0  60 145  64   8   0  87  12 179
19  1  73 213 181   6   0 110   6 108
19  7  72 344 101 103 118 147 166 159
19  8 127 242 270 198 144 258 184 138
19 10 224 197  41   8   0 204 191 196
19 41   0   0   0   0   0   0   0   0
20  0 151 187 301 105 265  89   6  77
20  3 186 206 162 210  81  65  12 187
20  9 217 264  40 121  90 155  15 203
20 11  47 341 130 214 144 244   5 167
20 22 160  59  10 183 228  30  30 130
20 42   0   0   0   0   0   0   0   0
21  1 249 205  79 192  64 162   6 197
21  5 121 102 175 131  46 264  86 122
21 16 109 328 132 220 266 346  96 215
21 20 131 213 283  50   9 143  42  65
21 21 171  97 103 106  18 109 199 216
21 43   0   0   0   0   0   0   0   0
22  0  64  30 177  53  72 280  44  25
22 12 142  11  20   0 189 157  58  47
22 13 188 233  55   3  72 236 130 126
22 17 158  22 316 148 257 113 131 178
22 44   0   0   0   0   0   0   0   0
23  1 156  24 249  88 180  18  45 185
23  2 147  89  50 203   0   6  18 127
23 10 170  61 133 168   0 181 132 117
23 18 152  27 105 122 165 304 100 199
23 45   0   0   0   0   0   0   0   0
24  0 112 298 289  49 236  38   9  32
24  3  86 158 280 157 199 170 125 178
24  4 236 235 110  64   0 249 191   2
24 11 116 339 187 193 266 288  28 156
24 22 222 234 281 124   0 194   6  58
24 46   0   0   0   0   0   0   0   0
25  1  23  72 172   1 205 279   4  27
25  6 136  17 295 166   0 255  74 141
25  7 116 383  96  65   0 111  16  11
25 14 182 312  46  81 183  54  28 181
25 47   0   0   0   0   0   0   0   0
26  0 195  71 270 107   0 325  21 163
26  2 243  81 110 176   0 326 142 131
26  4 215  76 318 212   0 226 192 169
26 15  61 136  67 127 277  99 197  98
26 48   0   0   0   0   0   0   0   0
27  1  25 194 210 208  45  91  98 165
27  6 104 194  29 141  36 326 140 232
27  8 194 101 304 174  72 268  22   9
27 49   0   0   0   0   0   0   0   0
28  0 128 222  11 146 275 102   4  32
28  4 165  19 293 153   0   1   1  43
28 19 181 244  50 217 155  40  40 200
28 21  63 274 234 114  62 167  93 205
28 50   0   0   0   0   0   0   0   0
29  1  86 252  27 150   0 273  92 232
29 14 236   5 308  11 180 104 136  32
29 18  84 147 117  53   0 243 106 118
29 25   6  78  29  68  42 107   6 103
29 51   0   0   0   0   0   0   0   0
30  0 216 159  91  34   0 171   2 170
30 10  73 229  23 130  90  16  88 199
30 13 120 260 105 210 252  95 112  26
30 24   9  90 135 123 173 212  20 105
30 52   0   0   0   0   0   0   0   0
31  1  95 100 222 175 144 101   4  73
31  7 177 215 308  49 144 297  49 149
31 22 172 258  66 177 166 279 125 175
31 25  61 256 162 128  19 222 194 108
31 53   0   0   0   0   0   0   0   0
32  0 221 102 210 192   0 351   6 103
32 12 112 201  22 209 211 265 126 110
32 14 199 175 271  58  36 338  63 151
32 24 121 287 217  30 162  83  20 211
32 54   0   0   0   0   0   0   0   0
33  1   2 323 170 114   0  56  10 199
33  2 187   8  20  49   0 304  30 132
33 11  41 361 140 161  76 141   6 172
33 21 211 105  33 137  18 101  92  65
33 55   0   0   0   0   0   0   0   0
34  0 127 230 187  82 197  60   4 161
34  7 167 148 296 186   0 320 153 237
34 15 164 202   5  68 108 112 197 142
34 17 159 312  44 150   0  54 155 180
34 56   0   0   0   0   0   0   0   0
35  1 161 320 207 192 199 100   4 231
35  6 197 335 158 173 278 210  45 174
35 12 207   2  55  26   0 195 168 145
35 22 103 266 285 187 205 268 185 100
35 57   0   0   0   0   0   0   0   0
36  0  37 210 259 222 216 135   6  11
36 14 105 313 179 157  16  15 200 207
36 15  51 297 178   0   0  35 177  42
36 18 120  21 160   6   0 188  43 100
36 58   0   0   0   0   0   0   0   0
37  1 198 269 298  81  72 319  82  59
37 13 220  82  15 195 144 236   2 204
37 23 122 115 115 138   0  85 135 161
37 59   0   0   0   0   0   0   0   0
38  0 167 185 151 123 190 164  91 121
38  9 151 177 179  90   0 196  64  90
38 10 157 289  64  73   0 209 198  26
38 12 163 214 181  10   0 246 100 140
38 60   0   0   0   0   0   0   0   0
39  1 173 258 102  12 153 236   4 115
39  3 139  93  77  77   0 264  28 188
39  7 149 346 192  49 165  37 109 168
39 19   0 297 208 114 117 272 188  52
39 61   0   0   0   0   0   0   0   0
40  0 157 175  32  67 216 304  10   4
40  8 137  37  80  45 144 237  84 103
40 17 149 312 197  96   2 135  12  30
40 62   0   0   0   0   0   0   0   0
41  1 167  52 154  23   0 123   2  53
41  3 173 314  47 215   0  77  75 189
41  9 139 139 124  60   0  25 142 215
41 18 151 288 207 167 183 272 128  24
41 63   0   0   0   0   0   0   0   0
42  0 149 113 226 114  27 288 163 222
42  4 157  14  65  91   0  83  10 170
42 24 137 218 126  78  35  17 162  71
42 64   0   0   0   0   0   0   0   0
43  1 151 113 228 206  52 210   1  22
43 16 163 132  69  22 243   3 163 127
43 18 173 114 176 134   0  53  99  49
43 25 139 168 102 161 270 167  98 125
43 65   0   0   0   0   0   0   0   0
44  0 139  80 234  84  18  79   4 191
44  7 157  78 227   4   0 244   6 211
44  9 163 163 259   9   0 293 142 187
44 22 173 274 260  12  57 272   3 148
44 66   0   0   0   0   0   0   0   0
45  1 149 135 101 184 168  82 181 177
45  6 151 149 228 121   0  67  45 114
45 10 167  15 126  29 144 235 153  93
45 67   0   0   0   0   0   0   0   0
"""
BASE_GRAPH_2 = """
 0  0   9 174   0  72   3 156 143 145
 0  1 117  97   0 110  26 143  19 131
 0  2 204 166   0  23  53  14 176  71
 0  3  26  66   0 181  35   3 165  21
 0  6 189  71   0  95 115  40 196  23
 0  9 205 172   0   8 127 123  13 112
 0 10   0   0   0   1   0   0   0   1
 0 11   0   0   0   0   0   0   0   0
 1  0 167  27 137  53  19  17  18 142
 1  3 166  36 124 156  94  65  27 174
 1  4 253  48   0 115 104  63   3 183
 1  5 125  92   0 156  66   1 102  27
 1  6 226  31  88 115  84  55 185  96
 1  7 156 187   0 200  98  37  17  23
 1  8 224 185   0  29  69 171  14   9
 1  9 252   3  55  31  50 133 180 167
 1 11   0   0   0   0   0   0   0   0
 1 12   0   0   0   0   0   0   0   0
 2  0  81  25  20 152  95  98 126  74
 2  1 114 114  94 131 106 168 163  31
 2  3  44 117  99  46  92 107  47   3
 2  4  52 110   9 191 110  82 183  53
 2  8 240 114 108  91 111 142 132 155
 2 10   1   1   1   0   1   1   1   0
 2 12   0   0   0   0   0   0   0   0
 2 13   0   0   0   0   0   0   0   0
 3  1   8 136  38 185 120  53  36 239
 3  2  58 175  15   6 121 174  48 171
 3  4 158 113 102  36  22 174  18  95
 3  5 104  72 146 124   4 127 111 110
 3  6 209 123  12 124  73  17 203 159
 3  7  54 118  57 110  49  89   3 199
 3  8  18  28  53 156 128  17 191  43
 3  9 128 186  46 133  79 105 160  75
 3 10   0   0   0   1   0   0   0   1
 3 13   0   0   0   0   0   0   0   0
 4  0 179  72   0 200  42  86  43  29
 4  1 214  74 136  16  24  67  27 140
 4 11  71  29 157 101  51  83 117 180
 4 14   0   0   0   0   0   0   0   0
 5  0 231  10   0 185  40  79 136 121
 5  1  41  44 131 138 140  84  49  41
 5  5 194 121 142 170  84  35  36 169
 5  7 159  80 141 219 137 103 132  88
 5 11 103  48  64 193  71  60  62 207
 5 15   0   0   0   0   0   0   0   0
 6  0 155 129   0 123 109  47   7 137
 6  5 228  92 124  55  87 154  34  72
 6  7  45 100  99  31 107  10 198 172
 6  9  28  49  45 222 133 155 168 124
 6 11 158 184 148 209 139  29  12  56
 6 16   0   0   0   0   0   0   0   0
 7  1 129  80   0 103  97  48 163  86
 7  5 147 186  45  13 135 125  78 186
 7  7 140  16 148 105  35  24 143  87
 7 11   3 102  96 150 108  47 107 172
 7 13 116 143  78 181  65  55  58 154
 7 17   0   0   0   0   0   0   0   0
 8  0 142 118   0 147  70  53 101 176
 8  1  94  70  65  43  69  31 177 169
 8 12 230 152  87 152  88 161  22 225
 8 18   0   0   0   0   0   0   0   0
 9  1 203  28   0   2  97 104 186 167
 9  8 205 132  97  30  40 142  27 238
 9 10  61 185  51 184  24  99 205  48
 9 11 247 178  85  83  49  64  81  68
 9 19   0   0   0   0   0   0   0   0
10  0  11  59   0 174  46 111 125  38
10  1 185 104  17 150  41  25  60 217
10  6   0  22 156   8 101 174 177 208
10  7 117  52  20  56  96  23  51 232
10 20   0   0   0   0   0   0   0   0
11  0  11  32   0  99  28  91  39 178
11  7 236  92   7 138  30 175  29 214
11  9 210 174   4 110 116  24  35 168
11 13  56 154   2  99  64 141   8  51
11 21   0   0   0   0   0   0   0   0
12  1  63  39   0  46  33 122  18 124
12  3 111  93 113 217 122  11 155 122
12 11  14  11  48 109 131   4  49  72
12 22   0   0   0   0   0   0   0   0
13  0  83  49   0  37  76  29  32  48
13  1   2 125 112 113  37  91  53  57
13  8  38  35 102 143  62  27  95 167
13 13 222 166  26 140  47 127 186 219
13 23   0   0   0   0   0   0   0   0
14  1 115  19   0  36 143  11  91  82
14  6 145 118 138  95  51 145  20 232
14 11   3  21  57  40 130   8  52 204
14 13 232 163  27 116  97 166 109 162
14 24   0   0   0   0   0   0   0   0
15  0  51  68   0 116 139 137 174  38
15 10 175  63  73 200  96 103 108 217
15 11 213  81  99 110 128  40 102 157
15 25   0   0   0   0   0   0   0   0
16  1 203  87   0  75  48  78 125 170
16  9 142 177  79 158   9 158  31  23
16 11   8 135 111 134  28  17  54 175
16 12 242  64 143  97   8 165 176 202
16 26   0   0   0   0   0   0   0   0
17  1 254 158   0  48 120 134  57 196
17  5 124  23  24 132  43  23 201 173
17 11 114   9 109 206  65  62 142 195
17 12  64   6  18   2  42 163  35 218
17 27   0   0   0   0   0   0   0   0
18  0 220 186   0  68  17 173 129 128
18  6 194   6  18  16 106  31 203 211
18  7  50  46  86 156 142  22 140 210
18 28   0   0   0   0   0   0   0   0
19  0  87  58   0  35  79  13 110  39
19  1  20  42 158 138  28 135 124  84
19 10 185 156 154  86  41 145  52  88
19 29   0   0   0   0   0   0   0   0
20  1  26  76   0   6   2 128 196 117
20  4 105  61 148  20 103  52  35 227
20 11  29 153 104 141  78 173 114   6
20 30   0   0   0   0   0   0   0   0
21  0  76 157   0  80  91 156  10 238
21  8  42 175  17  43  75 166 122  13
21 13 210  67  33  81  81  40  23  11
21 31   0   0   0   0   0   0   0   0
22  1 222  20   0  49  54  18 202 195
22  2  63  52   4   1 132 163 126  44
22 32   0   0   0   0   0   0   0   0
23  0  23 106   0 156  68 110  52   5
23  3 235  86  75  54 115 132 170  94
23  5 238  95 158 134  56 150  13 111
23 33   0   0   0   0   0   0   0   0
24  1  46 182   0 153  30 113 113  81
24  2 139 153  69  88  42 108 161  19
24  9   8  64  87  63 101  61  88 130
24 34   0   0   0   0   0   0   0   0
25  0 228  45   0 211 128  72 197  66
25  5 156  21  65  94  63 136 194  95
25 35   0   0   0   0   0   0   0   0
26  2  29  67   0  90 142  36 164 146
26  7 143 137 100   6  28  38 172  66
26 12 160  55  13 221 100  53  49 190
26 13 122  85   7   6 133 145 161  86
26 36   0   0   0   0   0   0   0   0
27  0   8 103   0  27  13  42 168  64
27  6 151  50  32 118  10 104 193 181
27 37   0   0   0   0   0   0   0   0
28  1  98  70   0 216 106  64  14   7
28  2 101 111 126 212  77  24 186 144
28  5 135 168 110 193  43 149  46  16
28 38   0   0   0   0   0   0   0   0
29  0  18 110   0 108 133 139  50  25
29  4  28  17 154  61  25 161  27  57
29 39   0   0   0   0   0   0   0   0
30  2  71 120   0 106  87  84  70  37
30  5 240 154  35  44  56 173  17 139
30  7   9  52  51 185 104  93  50 221
30  9  84  56 134 176  70  29   6  17
30 40   0   0   0   0   0   0   0   0
31  1 106   3   0 147  80 117 115 201
31 13   1 170  20 182 139 148 189  46
31 41   0   0   0   0   0   0   0   0
32  0 242  84   0 108  32 116 110 179
32  5  44   8  20  21  89  73   0  14
32 12 166  17 122 110  71 142 163 116
32 42   0   0   0   0   0   0   0   0
33  2 132 165   0  71 135 105 163  46
33  7 164 179  88  12   6 137 173   2
33 10 235 124  13 109   2  29 179 106
33 43   0   0   0   0   0   0   0   0
34  0 147 173   0  29  37  11 197 184
34 12  85 177  19 201  25  41 191 135
34 13  36  12  78  69 114 162 193 141
34 44   0   0   0   0   0   0   0   0
35  1  57  77   0  91  60 126 157  85
35  5  40 184 157 165 137 152 167 225
35 11  63  18   6  55  93 172 181 175
35 45   0   0   0   0   0   0   0   0
36  0 140  25   0   1 121  73 197 178
36  2  38 151  63 175 129 154 167 112
36  7 154 170  82  83  26 129 179 106
36 46   0   0   0   0   0   0   0   0
37 10 219  37   0  40  97 167 181 154
37 13 151  31 144  12  56  38 193 114
37 47   0   0   0   0   0   0   0   0
38  1  31  84   0  37   1 112 157  42
38  5  66 151  93  97  70   7 173  41
38 11  38 190  19  46   1  19 191 105
38 48   0   0   0   0   0   0   0   0
39  0 239  93   0 106 119 109 181 167
39  7 172 132  24 181  32   6 157  45
39 12  34  57 138 154 142 105 173 189
39 49   0   0   0   0   0   0   0   0
40  2   0 103   0  98   6 160 193  78
40 10  75 107  36  35  73 156 163  67
40 13 120 163 143  36 102  82 179 180
40 50   0   0   0   0   0   0   0   0
41  1 129 147   0 120  48 132 191  53
41  5 229   7   2 101  47   6 197 215
41 11 118  60  55  81  19   8 167 230
41 51   0   0   0   0   0   0   0   0
"""

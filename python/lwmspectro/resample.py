"""Rational resampling between a source rate and the analysis rate."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
import scipy.signal

PIECE_OUTPUTS = 256
"""Longest run of outputs computed with one weight matrix; longer runs are cut into pieces so
that the matrix (inputs x outputs) stays small however long the run."""
MAX_SHARED_PIECE = 2048
"""Pieces are rounded up to a multiple of `up` (so that all pieces of a run share one matrix)
only while that keeps them this short."""


MAX_PIECE_PHASES = 32
"""Most weight matrices (one per phase of a piece) resample_prefix cycles through; within the
matrix cache of each resampler."""

MAX_RATIO_TERM = 100_000
"""Largest up or down factor: the polyphase filter has 20 max(up, down) + 1 taps, so this keeps it
within 2 million taps (8 MB) however odd the rates."""


@functools.lru_cache(maxsize=256)
def rational_ratio(from_rate_hz: float, to_rate_hz: float, max_denominator: int = 10_000) -> tuple[int, int]:
    """(up, down) with to/from = up/down, as small as the rates allow; neither above MAX_RATIO_TERM
    (an odd ratio is approximated within a part in 10^8 rather than given a filter of millions of taps)."""
    if not (0 < from_rate_hz < math.inf and 0 < to_rate_hz < math.inf):
        raise ValueError(f"sample rates must be positive and finite, got {from_rate_hz} and {to_rate_hz}")
    exact = to_rate_hz / from_rate_hz
    ratio = Fraction(exact).limit_denominator(max(1, min(max_denominator, int(MAX_RATIO_TERM / exact))))
    if ratio.numerator == 0 or ratio.numerator > MAX_RATIO_TERM:
        raise ValueError(
            f"cannot resample {from_rate_hz:g} Hz to {to_rate_hz:g} Hz: the ratio {exact:g} is beyond "
            f"1/{MAX_RATIO_TERM} .. {MAX_RATIO_TERM}"
        )
    return ratio.numerator, ratio.denominator


def resample_to(iq: np.ndarray, from_rate_hz: float, to_rate_hz: float) -> np.ndarray:
    """Resample along the last axis with scipy's polyphase filter; complex64 out."""
    up, down = rational_ratio(from_rate_hz, to_rate_hz)
    if up == down:
        return np.asarray(iq, np.complex64)
    return scipy.signal.resample_poly(np.asarray(iq), up, down, axis=-1).astype(np.complex64)


class PointResampler:
    """Runs of consecutive outputs of resample_poly(x, up, down) (scipy's default
    Kaiser-windowed filter), computed from the inputs under each run only.

    Why not resample_poly itself: G reads 3 % of an observation, and scipy's upfirdn computes
    every output sample (some 100 ns each, too slow for a 20 MS/s stream on one core); scipy
    has no resampler evaluated at chosen outputs. The values equal resample_to's to float32
    rounding.

    resample_poly's output n is sum_i x[i] h[n down + L - i up], with h its FIR filter of
    2L + 1 taps (L = 10 max(up, down)) scaled by `up`; it reads the inputs from
    first(n) = ceil((n down - L) / up) on, at most 2L / up + 1 of them. For a run of outputs
    n0 .. n0 + N - 1 this is one matrix (inputs x N) that depends on n0 mod up only, so
    runs that share it are computed with one matrix product. Equal rates (up = down = 1)
    are a plain copy.
    """

    def __init__(self, up: int, down: int):
        self.up, self.down = int(up), int(down)
        if not (1 <= self.up <= MAX_RATIO_TERM and 1 <= self.down <= MAX_RATIO_TERM):
            raise ValueError(
                f"up and down must be integers from 1 to {MAX_RATIO_TERM} (a filter of at most "
                f"{20 * MAX_RATIO_TERM + 1} taps), got {up} and {down}"
            )
        self.identity = self.up == self.down
        self.half_len = 0 if self.identity else 10 * max(self.up, self.down)
        if not self.identity:
            self.taps = (
                scipy.signal.firwin(2 * self.half_len + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0))
                * self.up
            ).astype(np.float32)
        self.n_taps = 2 * self.half_len // self.up + 1
        shared = self.up * max(1, PIECE_OUTPUTS // self.up)
        self.piece = shared if shared <= MAX_SHARED_PIECE else PIECE_OUTPUTS
        self._matrix = functools.lru_cache(maxsize=2 * MAX_PIECE_PHASES)(self._build_matrix)
        self._double_matrix = functools.lru_cache(maxsize=2 * MAX_PIECE_PHASES)(self._build_double_matrix)

    @functools.cached_property
    def narrow_piece(self) -> int:
        """The shortest run of outputs (of at least 16, for the product's efficiency) that needs
        at most MAX_PIECE_PHASES matrices: a run of N outputs reads N down / up + n_taps inputs
        each, so a long resampled run costs least cut into short pieces (a piece of `up` outputs,
        768 at 5 or 25 MS/s to 30.72, reads 30 times the inputs its filter needs)."""
        fits = [n for n in range(16, 65) if self.up // math.gcd(self.up, n) <= MAX_PIECE_PHASES]
        return fits[0] if fits else self.piece

    @classmethod
    def for_rates(cls, from_rate_hz: float, to_rate_hz: float) -> PointResampler:
        """The (shared) resampler from one rate to another, as resample_to reduces them."""
        return _resampler(*rational_ratio(from_rate_hz, to_rate_hz))

    def first_input(self, index):
        """The first input sample output `index` reads (negative near the stream's start)."""
        return -(-(np.asarray(index) * self.down - self.half_len) // self.up)

    def input_span(self, starts, length: int) -> tuple[int, int]:
        """(first, end): the inputs [first, end) that outputs starts[f] .. starts[f] + length - 1
        read; first is negative when they reach before the stream's start."""
        starts = np.asarray(starts)
        return (int(self.first_input(starts.min())), int(self.first_input(starts.max() + length - 1)) + self.n_taps)

    def _build_matrix(self, phase_class: int, length: int) -> np.ndarray:
        """(inputs, length) real weights of the outputs phase_class .. phase_class + length - 1,
        on the inputs from first_input(phase_class) on."""
        outputs = phase_class + np.arange(length)
        firsts = self.first_input(outputs)
        n_inputs = int(firsts[-1] - firsts[0]) + self.n_taps
        inputs = firsts[0] + np.arange(n_inputs)
        filter_index = outputs[None, :] * self.down + self.half_len - inputs[:, None] * self.up
        inside = (filter_index >= 0) & (filter_index <= 2 * self.half_len)
        return np.where(inside, self.taps[np.clip(filter_index, 0, 2 * self.half_len)], np.float32(0))

    def _build_double_matrix(self, phase_class: int, length: int) -> np.ndarray:
        """_build_matrix in double precision (frames' product)."""
        return self._matrix(phase_class, length).astype(np.float64)

    def frames(self, x: np.ndarray, x_first: int, starts, length: int) -> np.ndarray:
        """(len(starts), length) complex64: outputs starts[f] .. starts[f] + length - 1, reading
        `x`, whose first element is input sample `x_first`.

        `x` must hold every input the frames read (input_span) from the stream's start on;
        inputs before the stream's start, and past the end of `x` (taken as the stream's
        end), read as zero, as resample_poly pads."""
        starts = np.atleast_1d(np.asarray(starts, np.int64))
        x = np.asarray(x, np.complex64)
        if len(starts) == 0:
            return np.zeros((0, length), np.complex64)
        first, end = self.input_span(starts, length)
        if max(first, 0) < x_first:
            raise ValueError(f"inputs from {max(first, 0)} are needed but x starts at {x_first}")
        lead, tail = max(0, x_first - first), max(0, end - x_first - len(x))
        if lead or tail:
            # Only the inputs the frames read are padded: `x` may be a whole capture, ten times more.
            read = x[max(0, first - x_first) : max(0, end - x_first)]
            x = np.concatenate([np.zeros(lead, np.complex64), read, np.zeros(tail, np.complex64)])
            x_first = first
        if self.identity:
            return x[starts[:, None] - x_first + np.arange(length)[None, :]]
        if length > self.piece:
            return self._long_runs(x, x_first, starts, length)
        out = np.empty((len(starts), length), np.complex64)
        firsts = self.first_input(starts)
        classes = starts % self.up
        for phase_class in np.unique(classes):
            chosen = np.flatnonzero(classes == phase_class)
            matrix = self._double_matrix(int(phase_class), length)
            rows = firsts[chosen] - x_first
            # The weights are real: one real product of the rows' real parts stacked over their
            # imaginary parts costs half a complex product. In double precision, rounded once to
            # single: BLAS rounds a row differently with the number of rows of the product (its
            # last rows take other kernels), and a frame must be the same numbers whichever other
            # frames are formed with it.
            stacked = np.empty((2 * len(chosen), len(matrix)), np.float64)
            for part, into in ((x.real, stacked[: len(chosen)]), (x.imag, stacked[len(chosen) :])):
                into[...] = np.lib.stride_tricks.sliding_window_view(part, len(matrix))[rows]
            products = (stacked @ matrix).astype(np.float32)
            out.real[chosen] = products[: len(chosen)]
            out.imag[chosen] = products[len(chosen) :]
        return out

    def _long_runs(self, x: np.ndarray, x_first: int, starts: np.ndarray, length: int) -> np.ndarray:
        """frames() of runs longer than a piece: each cut into pieces computed together."""
        n_pieces = -(-length // self.piece)
        piece_starts = (starts[:, None] + np.arange(n_pieces) * self.piece).ravel()
        out = self.frames(x, x_first, piece_starts, self.piece)
        return out.reshape(len(starts), n_pieces * self.piece)[:, :length]


@functools.lru_cache(maxsize=16)
def _resampler(up: int, down: int) -> PointResampler:
    return PointResampler(up, down)


PREFIX_CHUNK = 16384
"""Outputs resample_prefix computes per matrix product of each phase (rounded down to whole
cycles of phases): every chunk of a prefix is the same products, so that its numbers do not
depend on how many chunks follow."""


def resample_prefix(x: np.ndarray, from_rate_hz: float, to_rate_hz: float, n_out: int) -> np.ndarray:
    """resample_to(x)[:n_out] (complex64), computed from the inputs those outputs read (zero past
    the end of `x`, as resample_poly pads), in chunks of one shape, so that the first outputs are
    the same numbers however many more are asked for: views of one capture that read different
    lengths at one rate share one resampled prefix.

    The outputs are cut into pieces of `narrow_piece`; the pieces of one phase come back every
    cycle (a multiple of `up` outputs, `cycle_inputs` inputs later), so each phase's pieces of a
    chunk are one real matrix product over a strided view of the inputs, without copying them."""
    resampler = PointResampler.for_rates(from_rate_hz, to_rate_hz)
    x = np.asarray(x, np.complex64)
    if resampler.identity:
        out = np.zeros(n_out, np.complex64)
        out[: min(n_out, len(x))] = x[:n_out]
        return out
    piece = resampler.narrow_piece
    phases = resampler.up // math.gcd(resampler.up, piece)
    cycle = phases * piece
    cycle_inputs = cycle * resampler.down // resampler.up
    cycles = max(1, PREFIX_CHUNK // cycle)
    n_chunks = -(-n_out // (cycles * cycle))
    first, end = resampler.input_span(np.arange(0, n_chunks * cycles * cycle, piece), piece)
    # The inputs, zero before the capture and past its end, as contiguous real and imaginary parts.
    parts = np.zeros((2, end - first), np.float32)
    kept = x[max(first, 0) : end]
    parts[0, max(0, -first) : max(0, -first) + len(kept)] = kept.real
    parts[1, max(0, -first) : max(0, -first) + len(kept)] = kept.imag
    out = np.empty((n_chunks * cycles, phases, piece), np.complex64)
    for phase in range(phases):
        matrix = resampler._matrix(phase * piece % resampler.up, piece)
        offset = int(resampler.first_input(phase * piece)) - first
        for part, into in zip(parts, (out.real, out.imag)):
            # The chunks stacked: numpy's matmul forms each with a product of its own, the same
            # as one call per chunk, without a Python call and a view per chunk.
            step = cycle_inputs * part.itemsize
            rows = np.lib.stride_tricks.as_strided(
                part[offset:],
                shape=(n_chunks, cycles, len(matrix)),
                strides=(cycles * step, step, part.itemsize),
                writeable=False,
            )
            into[:, phase] = (rows @ matrix).reshape(n_chunks * cycles, piece)
    return out.ravel()[:n_out]


def prefix_inputs(from_rate_hz: float, to_rate_hz: float, n_out: int) -> int:
    """The source samples resample_prefix reads for `n_out` outputs (its filter's reach included)."""
    resampler = PointResampler.for_rates(from_rate_hz, to_rate_hz)
    if resampler.identity:
        return n_out
    return resampler.input_span([0], n_out)[1]


def resample_segments(x: np.ndarray, from_rate_hz: float, to_rate_hz: float, starts, length: int) -> np.ndarray:
    """resample_to(x)[s : s + length] for each output-rate start s, zero outside that output,
    computed only around the segments (the dataset generator needs a few short frames of a
    long stream). Returns (len(starts), length) complex64."""
    resampler = PointResampler.for_rates(from_rate_hz, to_rate_hz)
    starts = np.atleast_1d(np.asarray(starts, np.int64))
    x = np.asarray(x, np.complex64)
    n_out = -(-len(x) * resampler.up // resampler.down)
    out = resampler.frames(x, 0, starts, length)
    index = starts[:, None] + np.arange(length)[None, :]
    out[(index < 0) | (index >= n_out)] = 0
    return out

"""802.11 binary convolutional code: K=7, generators (133, 171) octal, punctured to 2/3 and 3/4
(IEEE 802.11-2020 17.3.5.6), with a vectorised Viterbi decoder to prove the round trip."""

from __future__ import annotations

import numpy as np

from .. import labels

CONSTRAINT_LENGTH = 7
GENERATORS = (0o133, 0o171)
# Keep-masks over one puncturing period of the interleaved A0 B0 A1 B1 ... output.
PUNCTURE = {
    "1/2": np.array([1, 1], bool),
    "2/3": np.array([1, 1, 1, 0], bool),
    "3/4": np.array([1, 1, 1, 0, 0, 1], bool),
}


def _taps(generator: int) -> list[int]:
    """Delays (0 = current input) whose bit is set in the octal generator, MSB = delay 0."""
    return [d for d in range(CONSTRAINT_LENGTH) if (generator >> (CONSTRAINT_LENGTH - 1 - d)) & 1]


def _mother(bits: np.ndarray) -> np.ndarray:
    """Rate-1/2 output (n, 2) from the all-zero state: five XORs of shifted copies per output,
    not a loop per bit."""
    bits = np.asarray(bits, np.uint8)
    padded = np.concatenate([np.zeros(CONSTRAINT_LENGTH - 1, np.uint8), bits])
    n = len(bits)
    out = np.empty((n, 2), np.uint8)
    for column, generator in enumerate(GENERATORS):
        acc = np.zeros(n, np.uint8)
        for delay in _taps(generator):
            acc ^= padded[CONSTRAINT_LENGTH - 1 - delay : CONSTRAINT_LENGTH - 1 - delay + n]
        out[:, column] = acc
    return out


def encode(bits: np.ndarray, code_rate: str = "1/2") -> np.ndarray:
    """Encode from the all-zero state and puncture; len(bits) must fill whole puncture periods."""
    labels.check_choice("BCC code rate", code_rate, tuple(PUNCTURE))
    return puncture(_mother(bits).reshape(-1), code_rate)


def encode_blocks(blocks: list[np.ndarray], code_rate: str) -> np.ndarray:
    """Encode several blocks, each from the all-zero state, in one pass; outputs concatenated.

    The concatenation is encoded once; the first six outputs of each later block, which saw
    the previous block's last bits in the register, are then corrected by XOR-ing those
    contributions back out.
    """
    labels.check_choice("BCC code rate", code_rate, tuple(PUNCTURE))
    stream = np.concatenate(blocks).astype(np.uint8, copy=False)
    out = _mother(stream)
    starts = np.cumsum([len(b) for b in blocks[:-1]]).astype(np.int64)
    if len(starts):
        for column, generator in enumerate(GENERATORS):
            for delay in _taps(generator):
                for t in range(min(delay, CONSTRAINT_LENGTH - 1)):
                    # output s+t saw input s+t-delay, which belongs to the previous block when t < delay
                    out[starts + t, column] ^= stream[starts + t - delay]
    return puncture(out.reshape(-1), code_rate)


def puncture(mother: np.ndarray, code_rate: str) -> np.ndarray:
    keep = PUNCTURE[code_rate]
    if len(mother) % len(keep):
        raise ValueError(f"{len(mother)} coded bits do not fill whole {code_rate} puncture periods")
    if keep.all():
        return mother
    return mother.reshape(-1, len(keep))[:, np.flatnonzero(keep)].reshape(-1)


def depuncture(soft: np.ndarray, code_rate: str) -> np.ndarray:
    """Put zeros (no information) back where bits were stolen."""
    keep = PUNCTURE[code_rate]
    n_periods = len(soft) // int(keep.sum())
    full = np.zeros((n_periods, len(keep)), np.float64)
    full[:, keep] = np.asarray(soft, np.float64).reshape(n_periods, -1)
    return full.reshape(-1)


def _trellis():
    """Next state and the two output bits for every (state, input); state = last 6 inputs, newest MSB."""
    n_states = 1 << (CONSTRAINT_LENGTH - 1)
    states = np.arange(n_states)
    outputs = np.zeros((n_states, 2, 2), np.int8)
    next_state = np.zeros((n_states, 2), np.int64)
    for u in (0, 1):
        register = (u << (CONSTRAINT_LENGTH - 1)) | states  # bit 6 = current input, bit 6-d = delay d
        next_state[:, u] = register >> 1
        for column, generator in enumerate(GENERATORS):
            parity = np.zeros(n_states, np.int64)
            for delay in _taps(generator):
                parity ^= (register >> (CONSTRAINT_LENGTH - 1 - delay)) & 1
            outputs[:, u, column] = parity
    return next_state, outputs


def viterbi_decode(soft: np.ndarray, code_rate: str = "1/2", terminated: bool = True) -> np.ndarray:
    """Maximum-likelihood decode of soft values (+ for bit 0, - for bit 1, 0 for erasures).

    Vectorised over the 64 states, one step per information bit. Hand-written because
    scikit-commpy's decoder is a Python loop over states and not a dependency of the core.
    """
    labels.check_choice("BCC code rate", code_rate, tuple(PUNCTURE))
    mother = depuncture(soft, code_rate).reshape(-1, 2)
    next_state, outputs = _trellis()
    n_states = next_state.shape[0]
    signs = 1.0 - 2.0 * outputs  # (state, input, 2): +1 for bit 0
    # Predecessors of each state: state' = (u << 5) | (s >> 1) — two (s, u) pairs per state'.
    src = np.zeros((n_states, 2), np.int64)
    src_u = np.zeros((n_states, 2), np.int64)
    filled = np.zeros(n_states, np.int64)
    for s in range(n_states):
        for u in (0, 1):
            t = next_state[s, u]
            src[t, filled[t]], src_u[t, filled[t]] = s, u
            filled[t] += 1
    metric = np.full(n_states, -np.inf)
    metric[0] = 0.0
    decisions = np.zeros((len(mother), n_states), np.int8)
    branch_signs = signs[src, src_u]  # (state', 2 predecessors, 2 outputs)
    for step, pair in enumerate(mother):
        candidates = metric[src] + branch_signs @ pair
        choice = np.argmax(candidates, axis=1)
        decisions[step] = choice
        metric = candidates[np.arange(n_states), choice]
    state = 0 if terminated else int(np.argmax(metric))
    decoded = np.zeros(len(mother), np.uint8)
    for step in range(len(mother) - 1, -1, -1):
        pick = decisions[step, state]
        decoded[step] = src_u[state, pick]
        state = src[state, pick]
    return decoded

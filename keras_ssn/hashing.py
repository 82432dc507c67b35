"""The HashedNets hash, computed on the device from each entry's position.

HashedNets (Chen et al., 2015) sets entry `j` of the weights to a randomly
signed bank entry chosen by a hash of `j`. Here the hash is a pseudo-random
permutation of the positions `0 .. total - 1` of all hashed weight entries,
taken modulo the bank size: every bank entry is read, by `total // size` or
`total // size + 1` weight entries.

The permutation is a swap-or-not shuffle (Hoang, Morris and Rogaway, CRYPTO
2012), which permutes any range `0 .. total - 1` with elementwise integer
operations: in each round, position `x` and its partner `key - x (mod
total)` swap when a round function of the pair says so. The round function
is a small polynomial hash modulo a prime, whose products stay below 2**31,
so int32 arithmetic is exact on every backend. Nothing weight-sized is
stored: a layer computes its positions from `arange` in the forward pass,
and the graph holds only a few integers per round.
"""

import numpy as np
from keras import ops

ROUNDS = 16
_PRIME = 46337  # the largest prime whose square is below 2**31
_HALF_BITS = 15
_KEY_BOUND = 2**14  # round multipliers; keeps every product below 2**31
MAX_TOTAL = 2**30


def hashed_reads(seed, total, rounds, positions, size):
    """Bank positions and signs of the weight entries at `positions`.

    Args:
        seed: Seed of the hash (an `int`).
        total: How many hashed weight entries there are, all weights
            together; at most `MAX_TOTAL`, so that int32 arithmetic is
            exact.
        rounds: Swap-or-not rounds.
        positions: int32 tensor of entry positions in `0 .. total - 1`.
        size: Bank size (entries the weights read from).

    Returns:
        `(index, sign)`: int32 bank positions in `0 .. size - 1` and float32
        signs (`-1.0` or `1.0`), both shaped like `positions`.
    """
    keys = _round_keys(seed, total, rounds)
    permuted = positions
    for key, round_function in zip(keys["partners"], keys["functions"]):
        partner = ops.mod(key + total - permuted, total)
        swap = _round_bit(ops.maximum(permuted, partner), round_function)
        permuted = ops.where(swap, partner, permuted)
    negative = _round_bit(positions, keys["sign"])
    sign = ops.where(negative, -1.0, 1.0)
    return ops.mod(permuted, size), ops.cast(sign, "float32")


def _round_keys(seed, total, rounds):
    rng = np.random.default_rng(seed)
    return {
        "partners": [int(k) for k in rng.integers(0, total, rounds)],
        "functions": [_function_key(rng) for _ in range(rounds)],
        "sign": _function_key(rng),
    }


def _function_key(rng):
    low, high = (int(k) for k in rng.integers(1, _KEY_BOUND, 2))
    return low, high, int(rng.integers(0, _PRIME)), int(rng.integers(0, _PRIME))


def _round_bit(x, key):
    """A pseudo-random bit of each `x` in `0 .. 2**30 - 1`: `(y*y + e) mod p`
    is odd, where `y = (a * low + b * high + c) mod p` of x's two 15-bit halves."""
    a, b, c, e = key
    low = ops.bitwise_and(x, 2**_HALF_BITS - 1)
    high = ops.right_shift(x, _HALF_BITS)
    y = ops.mod(low * a + high * b + c, _PRIME)
    z = ops.mod(y * y + e, _PRIME)
    return ops.equal(ops.bitwise_and(z, 1), 1)

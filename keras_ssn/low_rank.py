"""The low-rank baseline: every shared weight a truncated SVD of its trained value.

Each weight's 2-D view `W` (all leading axes by the last) becomes `U @ V`
with `U` `(rows, rank)` and `V` `(rank, cols)` taken from the SVD of `W`
(`U = U_r sqrt(S_r)`, `V = sqrt(S_r) V_r^T`), so the factors start at the
best rank-`rank` approximation of the trained weight (Eckart-Young). The
ranks share one budget by water-filling: every weight gets rank 1, then the
rank-one component with the most relative energy (`s_k^2 / ||W||^2`) per
parameter (`rows + cols`) is added, and again, while one fits. The entries
left over, fewer than any further component costs, are added to the first
entries of the largest weights, fitted to what the factors leave there, so
the budget is spent exactly and every entry is used.

Each weight is its own group, whose slice holds its factors (see
`WeightSpec.factors`), so the result is a converted model like any other:
it trains, saves, loads and materializes.
"""

import heapq
import math

import numpy as np

from keras_ssn.budget import BudgetError
from keras_ssn.plan import GroupSlice
from keras_ssn.plan import SharingPlan
from keras_ssn.plan import WeightSpec

SHARE = "low rank"


def plan_low_rank(weights, values, unshared_params, budget, unshared_layers=()):
    """The plan and the bank of the low-rank baseline.

    Args:
        weights: List of `SharedWeight`.
        values: Dict mapping each weight's path to its value (NumPy).
        unshared_params: Trainable parameters outside the bank.
        budget: Exact trainable parameter count to reach.
        unshared_layers: Report entries for layers left unshared.

    Returns:
        `(plan, bank)`: a `SharingPlan` with one group per weight, and the
        bank's values (float32 NumPy vector) that make each weight its
        truncated SVD.

    Raises:
        BudgetError: The budget cannot give every weight rank 1, or is more
            than every weight at full rank with every entry corrected.
    """
    matrices = [_matrix(values[w.path]) for w in weights]
    costs = [sum(m.shape) for m in matrices]
    bank_size = budget - unshared_params
    largest = sum(min(m.shape) * c + m.size for m, c in zip(matrices, costs))
    if not sum(costs) <= bank_size <= largest:
        raise BudgetError(budget, smallest=unshared_params + sum(costs),
                          largest=unshared_params + largest, options="low-rank factors")
    svds = [np.linalg.svd(m, full_matrices=False) for m in matrices]
    ranks = _water_fill([s for _, s, _ in svds], costs, bank_size - sum(costs))
    left = bank_size - sum(r * c for r, c in zip(ranks, costs))
    extras = _spread(left, [m.size for m in matrices])
    specs, groups, parts, start = {}, [], [], 0
    for index, (weight, matrix, svd, rank, extra) in enumerate(
            zip(weights, matrices, svds, ranks, extras)):
        size = rank * sum(matrix.shape) + extra
        specs[weight.path] = WeightSpec(
            group=index, shape=tuple(weight.shape), start=start, size=size, offset=0,
            templates=1, scale=1.0, share=SHARE, factors=(rank, extra))
        groups.append(GroupSlice(index, start, size, weight.stddev, (weight.path,)))
        parts.append(_factors(matrix, svd, rank, extra))
        start += size
    plan = SharingPlan(
        budget=int(budget), bank_size=int(bank_size), unshared_params=int(unshared_params),
        groups=tuple(groups), weights=specs, unshared_layers=tuple(unshared_layers))
    return plan, np.concatenate(parts).astype("float32")


def _matrix(value):
    value = np.asarray(value, dtype="float64")
    return value.reshape(math.prod(value.shape[:-1]), value.shape[-1])


def _water_fill(spectra, costs, spare):
    """Ranks: 1 each, then components by relative energy per parameter."""
    ranks = [1] * len(spectra)
    energy = [max(float(np.sum(s**2)), 1e-30) for s in spectra]
    heap = [(-s[1] ** 2 / e / c, i) for i, (s, e, c) in enumerate(zip(spectra, energy, costs))
            if len(s) > 1]
    heapq.heapify(heap)
    while heap:
        _, i = heapq.heappop(heap)
        if costs[i] > spare:
            continue  # no further component of this weight fits
        spare -= costs[i]
        ranks[i] += 1
        s = spectra[i]
        if ranks[i] < len(s):
            heapq.heappush(heap, (-s[ranks[i]] ** 2 / energy[i] / costs[i], i))
    return ranks


def _spread(left, sizes):
    """Correction entries per weight: the largest weights first."""
    extras = [0] * len(sizes)
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        extras[i] = min(left, sizes[i])
        left -= extras[i]
    return extras


def _factors(matrix, svd, rank, extra):
    """`U`, `V` and the correction entries, flat, for one weight."""
    u, s, vt = svd
    root = np.sqrt(s[:rank])
    left, right = u[:, :rank] * root, root[:, None] * vt[:rank]
    correction = (matrix - left @ right).reshape(-1)[:extra]
    return np.concatenate([left.reshape(-1), right.reshape(-1), correction])

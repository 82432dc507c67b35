"""Slice sizes whose tiling keeps a weight's rows apart.

A layer that upsamples by tiling (`upsample="repeat"`, `"mask"`, `"scale"`)
reads its weight's `rows x cols` view from a slice of `s` entries wrapping
around: row `i` starts at slice entry `(offset + i * cols) % s`, so the rows
come round again after `s / gcd(s, cols)` of them (`Upsampling.distinct_rows`)
and the weight's rank is at most that. The proportional split of the bank
can land on such sizes: a 64 x 256 kernel tiled from a 512-entry slice has 2
distinct rows, from 511 entries 64.

A slice of `s` entries can keep at most `min(rows, s)` rows apart, and does
where `s` shares no factor with `cols`; the rows it loses to a common factor
beyond that are avoidable. `spread_rows` moves a few entries between the
groups' slices, where the plan's other rules allow it, so that fewer rows
repeat avoidably. It repairs divisibility and does not reallocate: a slice
too small for its rows stays small, and no slice moves further from its
settled size than `max(MAX_SHIFT, size // _DRIFT_DIVISOR)` entries.
"""

import itertools

from keras_ssn.methods import upsampling
from keras_ssn.placement import is_upsampled

# At most this many entries move between two slices in one step, and at
# most one in `_REACH_DIVISOR` of the smaller slice (at least one).
MAX_SHIFT = 8
_REACH_DIVISOR = 16
# A slice ends at most `max(MAX_SHIFT, size // _DRIFT_DIVISOR)` entries from
# the size the budget settled on.
_DRIFT_DIVISOR = 8


def copied_entries(weights, owner, templates, sizes, upsample):
    """Entries of upsampled weights in rows that repeat where they need not.

    A weight's row counts where it copies an earlier row although a slice of
    the same size sharing no factor with the columns would have kept it
    apart: `min(rows, size) - distinct_rows` rows per weight.

    Args:
        weights: The `SharedWeight`s of the plan.
        owner: The group index of each weight.
        templates: The template count of each weight.
        sizes: The slice size of each group.
        upsample: The upsampling method's name.

    Returns:
        The count, summed over the weights.
    """
    return sum(
        _group_copies(weights, [i for i, g in enumerate(owner) if g == group],
                      templates, size, upsample)
        for group, size in enumerate(sizes)
    )


def spread_rows(weights, owner, templates, sizes, upsample, allowed):
    """Moves entries between slices until no move makes fewer rows repeat.

    Each step takes the move of up to `MAX_SHIFT` entries from one slice to
    another that removes the most avoidably copied entries
    (`copied_entries`), that keeps every slice within
    `max(MAX_SHIFT, size // 8)` entries of its size in `sizes` and that
    `allowed` accepts; the total stays the same, and so does the set of
    weights each slice upsamples.

    Args:
        weights, owner, templates, upsample: As `copied_entries`.
        sizes: The slice sizes the budget settled on.
        allowed: `allowed(sizes)` is whether a plan with these slice sizes
            keeps the planner's other rules (the same learned parameters,
            every entry read, distinct output units).

    Returns:
        The new list of slice sizes (`sizes` itself where nothing moves).
    """
    members = [[i for i, g in enumerate(owner) if g == group] for group in range(len(sizes))]
    counted = {}

    def copies(group, size):
        if (group, size) not in counted:
            counted[group, size] = _group_copies(
                weights, members[group], templates, size, upsample)
        return counted[group, size]

    def upsampled(group, size):
        return [is_upsampled(weights[i], templates[i], size) for i in members[group]]

    lowest = [size - max(MAX_SHIFT, size // _DRIFT_DIVISOR) for size in sizes]
    highest = [size + max(MAX_SHIFT, size // _DRIFT_DIVISOR) for size in sizes]
    sizes = list(sizes)
    while True:
        moves = []
        for a, b in itertools.permutations(range(len(sizes)), 2):
            reach = min(MAX_SHIFT, max(1, min(sizes[a], sizes[b]) // _REACH_DIVISOR),
                        sizes[a] - max(1, lowest[a]), highest[b] - sizes[b])
            for shift in range(1, reach + 1):
                gain = (copies(a, sizes[a]) + copies(b, sizes[b])
                        - copies(a, sizes[a] - shift) - copies(b, sizes[b] + shift))
                if gain > 0:
                    moves.append((-gain, shift, a, b))
        for _, shift, a, b in sorted(moves):
            trial = list(sizes)
            trial[a] -= shift
            trial[b] += shift
            if (upsampled(a, trial[a]) == upsampled(a, sizes[a])
                    and upsampled(b, trial[b]) == upsampled(b, sizes[b])
                    and allowed(trial)):
                sizes = trial
                break
        else:
            return sizes


def _group_copies(weights, member, templates, size, upsample):
    method = upsampling(upsample)
    copied = 0
    for i in member:
        if is_upsampled(weights[i], templates[i], size):
            rows, cols = method.output_view(weights[i].shape, weights[i].columns)
            avoidable = min(rows, size) - method.distinct_rows(rows, cols, size)
            copied += max(0, avoidable) * cols
    return copied

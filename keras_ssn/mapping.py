"""Parameter mapping: which shared weights form a parameter group."""

import numpy as np

STRATEGIES = ("auto", "single", "type", "shape")

# The fewest bank entries a layer family gets as a group of its own under
# `groups="auto"` (see `_auto_groups`).
MIN_GROUP_ENTRIES = 32


def assign_groups(paths, families, shapes, groups="auto", seed=None,
                  layer_paths=None, bank_entries=None):
    """Gives every shareable weight a group id.

    Args:
        paths: Weight paths, one per shareable weight.
        families: Layer family names (`"dense"`, `"conv"`, ...), one per weight.
        shapes: Weight shapes, one per weight.
        groups: `"auto"` (one per layer family, except that a family whose
            share of the bank would be under `MIN_GROUP_ENTRIES` entries
            joins the largest family's group), `"single"` (one group),
            `"type"` (one per layer family), `"shape"` (one per family and
            weight shape), an `int` N (N random non-empty groups,
            reproducible with `seed`), or a dict mapping weight paths or
            layer paths (all the layer's shared weights) to group ids,
            covering every weight.
        seed: Seed for random groups.
        layer_paths: Path of the layer of each weight; defaults to `paths`.
        bank_entries: About how many entries the bank will hold (the budget
            less the parameters outside the bank); needed for `"auto"`.

    Returns:
        A list of group ids, one per weight.
    """
    if isinstance(groups, dict):
        return _explicit_groups(paths, layer_paths or paths, groups)
    if isinstance(groups, bool) or not isinstance(groups, (str, int, np.integer)):
        raise TypeError(
            f"groups must be one of {STRATEGIES}, an int or a dict of layer "
            f"path to group id; received {groups!r}."
        )
    if isinstance(groups, (int, np.integer)):
        return _random_groups(len(paths), int(groups), seed)
    if groups == "auto":
        sizes = [int(np.prod(shape)) for shape in shapes]
        return _auto_groups(list(families), sizes, bank_entries)
    if groups == "single":
        return [0] * len(paths)
    if groups == "type":
        return list(families)
    if groups == "shape":
        return [f"{f}:{tuple(s)}" for f, s in zip(families, shapes)]
    raise ValueError(
        f"Unknown groups={groups!r}. Use one of {STRATEGIES}, an int or a dict "
        "of layer path to group id."
    )


def _auto_groups(families, sizes, bank_entries):
    """One group per layer family, none starved.

    The planner gives each group a slice in proportion to its full-size
    weights. A family whose slice would hold fewer than `MIN_GROUP_ENTRIES`
    entries (a classifier layer beside a convolutional body, at a low
    budget) would generate its weights from a sliver, so it joins the group
    of the family with the most weights instead. Merging a family changes no
    other family's slice, so one pass decides every family.
    """
    totals = {}
    for family, size in zip(families, sizes):
        totals[family] = totals.get(family, 0) + size
    largest = max(totals, key=lambda family: (totals[family], family))
    full = sum(totals.values())
    starved = {
        family for family, total in totals.items()
        if max(bank_entries, 0) * total < MIN_GROUP_ENTRIES * full
    }
    return [largest if family in starved else family for family in families]


def _random_groups(count, num_groups, seed):
    if not 1 <= num_groups <= count:
        raise ValueError(
            f"groups={num_groups} random groups need between 1 and the number "
            f"of shareable weights ({count})."
        )
    rng = np.random.default_rng(seed)
    ids = np.concatenate(
        [np.arange(num_groups), rng.integers(0, num_groups, count - num_groups)]
    )
    rng.shuffle(ids)
    return [int(i) for i in ids]


def _explicit_groups(paths, layer_paths, mapping):
    known = set(paths) | set(layer_paths)
    unknown = sorted(str(key) for key in set(mapping) - known)
    missing = [
        p for p, layer in zip(paths, layer_paths) if p not in mapping and layer not in mapping
    ]
    if unknown or missing:
        raise ValueError(
            "groups must map every shareable weight (by its path, or by its "
            "layer's path) to a group id. "
            f"Unknown paths: {unknown}. Missing paths: {missing}. "
            f"Shareable weights: {list(paths)}."
        )
    return [
        mapping[p] if p in mapping else mapping[layer]
        for p, layer in zip(paths, layer_paths)
    ]

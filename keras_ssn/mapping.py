"""Parameter mapping: which shared weights form a parameter group."""

import numpy as np

STRATEGIES = ("auto", "single", "type", "shape")

# The fewest bank entries a layer family gets as a group of its own under
# `groups="auto"` (see `AutoGrouping`).
MIN_GROUP_ENTRIES = 32


def assign_groups(paths, families, shapes, groups="auto", seed=None,
                  layer_paths=None):
    """Gives every shareable weight a group id, or ids to try per budget.

    Args:
        paths: Weight paths, one per shareable weight.
        families: Layer family names (`"dense"`, `"conv"`, ...), one per weight.
        shapes: Weight shapes, one per weight.
        groups: `"auto"` (see `AutoGrouping`), `"single"` (one group),
            `"type"` (one per layer family), `"shape"` (one per family and
            weight shape), an `int` N (N random non-empty groups, drawn
            from `seed`, 0 when it is `None`, so that the same call gives
            the same groups), or a dict mapping weight paths or
            layer paths (all the layer's shared weights) to group ids,
            covering every weight.
        seed: Seed for random groups (`None`: 0).
        layer_paths: Path of the layer of each weight; defaults to `paths`.

    Returns:
        A `Grouping`: an `AutoGrouping` for `"auto"`, else a
        `FixedGrouping` of one group id per weight.
    """
    if groups == "auto":
        return AutoGrouping(families, [int(np.prod(shape)) for shape in shapes])
    return FixedGrouping(_group_ids(paths, families, shapes, groups, seed, layer_paths))


def _group_ids(paths, families, shapes, groups, seed, layer_paths):
    if isinstance(groups, dict):
        return _explicit_groups(paths, layer_paths or paths, groups)
    if isinstance(groups, bool) or not isinstance(groups, (str, int, np.integer)):
        raise TypeError(
            f"groups must be one of {STRATEGIES}, an int or a dict of layer "
            f"path to group id; received {groups!r}."
        )
    if isinstance(groups, (int, np.integer)):
        return _random_groups(len(paths), int(groups), seed)
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


class FixedGrouping:
    """One group id per weight, at every budget."""

    def __init__(self, group_ids):
        self.group_ids = list(group_ids)

    def candidates(self, bank_entries):
        """The group ids to try for a bank of about `bank_entries` entries."""
        return [self.group_ids]

    def every_candidate(self):
        """Every list of group ids `candidates` can give."""
        return [self.group_ids]

    @property
    def fewest_groups(self):
        return len(set(self.group_ids))

    def describe(self):
        count = self.fewest_groups
        return f"{count} parameter group{'s' if count > 1 else ''}"


class AutoGrouping:
    """`groups="auto"`: one group per layer family, none starved.

    The planner gives each group a slice in proportion to its full-size
    weights. A family whose slice would hold fewer than `MIN_GROUP_ENTRIES`
    entries (a classifier layer beside a convolutional body, at a low
    budget) would generate its weights from a sliver, so it joins the group
    of the family with the most weights. Starved families are the smallest
    ones, and merging a family changes no other family's slice, so the
    grouping for a budget is the family grouping with its `k` smallest
    families merged into the largest. Where that grouping cannot spend the
    budget exactly (each group's learned generation parameters cost
    entries), the next smallest family merges too, down to one group, so
    `"auto"` spends every budget one group can.

    Args:
        families: Layer family of each weight.
        sizes: Entries of each weight.
    """

    fewest_groups = 1

    def __init__(self, families, sizes):
        totals = {}
        for family, size in zip(families, sizes):
            totals[family] = totals.get(family, 0) + size
        self.full_size = sum(totals.values())
        # Smallest first; the largest family absorbs the others.
        self.order = sorted(totals, key=lambda family: (totals[family], family))
        self.totals = totals
        largest = self.order[-1]
        self.levels = [
            [largest if family in self.order[:merged] else family for family in families]
            for merged in range(len(self.order))
        ]

    def starved(self, bank_entries):
        """How many families would get fewer than `MIN_GROUP_ENTRIES` entries."""
        return sum(
            max(bank_entries, 0) * self.totals[family] < MIN_GROUP_ENTRIES * self.full_size
            for family in self.order[:-1]
        )

    def candidates(self, bank_entries):
        """The group ids to try for a bank of about `bank_entries` entries."""
        return self.levels[self.starved(bank_entries):]

    def every_candidate(self):
        return list(self.levels)

    def describe(self):
        return "groups='auto'"


def _random_groups(count, num_groups, seed):
    if not 1 <= num_groups <= count:
        raise ValueError(
            f"groups={num_groups} random groups need between 1 and the number "
            f"of shareable weights ({count})."
        )
    # A fixed draw without a seed: a budget that a BudgetError names for
    # these groups must work when the user passes it back.
    rng = np.random.default_rng(0 if seed is None else seed)
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

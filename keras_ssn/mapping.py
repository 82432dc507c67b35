"""Parameter mapping: which shared layers form a parameter group."""

import numpy as np

STRATEGIES = ("single", "type", "shape")


def assign_groups(paths, families, shapes, groups="single", seed=None):
    """Gives every shareable layer a group id.

    Args:
        paths: Layer paths, one per shareable layer.
        families: Layer family names (`"dense"`, `"conv"`, ...), one per layer.
        shapes: Weight shapes, one per layer.
        groups: `"single"` (one group), `"type"` (one per layer family),
            `"shape"` (one per family and weight shape), an `int` N (N random
            non-empty groups, reproducible with `seed`), or a dict mapping
            every layer path to a group id.
        seed: Seed for random groups.

    Returns:
        A list of group ids, one per layer.
    """
    if isinstance(groups, dict):
        return _explicit_groups(paths, groups)
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


def _random_groups(count, num_groups, seed):
    if not 1 <= num_groups <= count:
        raise ValueError(
            f"groups={num_groups} random groups need between 1 and the number "
            f"of shareable layers ({count})."
        )
    rng = np.random.default_rng(seed)
    ids = np.concatenate(
        [np.arange(num_groups), rng.integers(0, num_groups, count - num_groups)]
    )
    rng.shuffle(ids)
    return [int(i) for i in ids]


def _explicit_groups(paths, mapping):
    unknown = sorted(set(mapping) - set(paths))
    missing = [p for p in paths if p not in mapping]
    if unknown or missing:
        raise ValueError(
            "groups must map every shareable layer path to a group id. "
            f"Unknown paths: {unknown}. Missing paths: {missing}. "
            f"Shareable layers: {list(paths)}."
        )
    return [mapping[p] for p in paths]

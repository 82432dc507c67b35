"""Parameter mapping: which shared weights form a parameter group."""

import numpy as np

STRATEGIES = ("single", "type", "shape")


def assign_groups(paths, families, shapes, groups="single", seed=None,
                  layer_paths=None):
    """Gives every shareable weight a group id.

    Args:
        paths: Weight paths, one per shareable weight.
        families: Layer family names (`"dense"`, `"conv"`, ...), one per weight.
        shapes: Weight shapes, one per weight.
        groups: `"single"` (one group), `"type"` (one per layer family),
            `"shape"` (one per family and weight shape), an `int` N (N random
            non-empty groups, reproducible with `seed`), or a dict mapping
            weight paths or layer paths (all the layer's shared weights) to
            group ids, covering every weight.
        seed: Seed for random groups.
        layer_paths: Path of the layer of each weight; defaults to `paths`.

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

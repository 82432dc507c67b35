"""Plans with one group whose layers all read the whole bank.

`plan_warped` is the pretraining plan of `learn_groups()`; `plan_hashed` is
the HashedNets baseline of `keras_ssn.baselines.hashed()`.
"""

import math

from keras_ssn import hashing
from keras_ssn.budget import BudgetError
from keras_ssn.budget import budget_error
from keras_ssn.resize import bilinear_gain
from keras_ssn.resize import reduced_template_shape
from keras_ssn.plan import GroupSlice
from keras_ssn.plan import SharingPlan
from keras_ssn.plan import WeightSpec
from keras_ssn.placement import group_stddev


def plan_warped(weights, unshared_params, budget, templates=4):
    """A one-group plan where every layer reads the whole bank.

    The bank is cut into `templates` chunks of `stride` entries (the last
    one also holds the `bank % templates` entries left); each layer reads a
    reduced template from every chunk, resizes it to its weight and mixes
    the results with softmax coefficients. Since all layers mix the same
    chunks, their coefficient vectors are comparable, which is what learning
    groups needs (the paper's pretraining step). Layers start reading each
    chunk where the previous layer stopped, wrapping around `stride + bank %
    templates` entries, so together they read every entry.

    Args:
        weights: List of `SharedWeight`.
        unshared_params: Trainable parameters outside the bank.
        budget: Exact trainable parameter count to reach.
        templates: Chunks, and so coefficients, per layer.

    Returns:
        A `SharingPlan` with one group.
    """
    shapes = _warped_shapes(weights, unshared_params, budget, templates)
    if shapes is None:
        full = sum(w.size for w in weights)
        raise budget_error(
            budget,
            lambda b: _warped_shapes(weights, unshared_params, b, templates) is not None,
            below=unshared_params + templates * (len(weights) + 1) - 1,
            above=unshared_params + templates * (len(weights) + full + 1) + 1,
            options=f"learned groups ({templates} templates per layer)",
        )
    bank = budget - unshared_params - templates * len(weights)
    stride = bank // templates
    span = stride + bank % templates
    stddev = group_stddev(weights)
    specs = {}
    before = 0
    for weight, shape in zip(weights, shapes):
        gain = bilinear_gain(shape, _matrix_shape(weight)) / math.sqrt(templates)
        specs[weight.path] = _whole_bank_spec(
            weight,
            bank,
            offset=before % span,
            templates=templates,
            template_shape=shape,
            scale=float(weight.stddev / stddev / gain),
            share="softmax",
            upsample="inter",
            template_stride=stride,
            align_corners=True,
        )
        before += math.prod(shape)
    return _single_group_plan(specs, stddev, budget, unshared_params)


def _warped_shapes(weights, unshared_params, budget, templates):
    """Each layer's reduced template, or `None` when the bank cannot be read whole.

    The bank needs a chunk per template, and the layers' templates together
    must cover a chunk and the entries left over.
    """
    bank = budget - unshared_params - templates * len(weights)
    if bank < templates:
        return None
    stride = bank // templates
    shapes = [_reduced_shape(weight, stride) for weight in weights]
    if sum(math.prod(shape) for shape in shapes) < stride + bank % templates:
        return None
    return shapes


def _matrix_shape(weight):
    return math.prod(weight.shape[:-1]), weight.shape[-1]


def _reduced_shape(weight, stride):
    """The reduced template a layer reads from each chunk of `stride` entries."""
    rows, cols = _matrix_shape(weight)
    return reduced_template_shape(rows, cols, min(stride, rows * cols))


def plan_hashed(weights, unshared_params, budget, seed=0, unshared_layers=()):
    """A HashedNets plan: every weight entry reads one random bank entry.

    The baseline of Chen et al. (2015) that the paper compares against: one
    bank, and each entry of each weight is a randomly signed copy of a bank
    entry chosen by a fixed hash. Hashing is a random permutation of all
    weight entries taken modulo the bank size, so every bank entry is used
    and all are used about equally often.

    Args:
        weights: List of `SharedWeight`.
        unshared_params: Trainable parameters outside the bank.
        budget: Exact trainable parameter count to reach.
        seed: Seed of the hash.
        unshared_layers: Report entries for layers left unshared.

    Returns:
        A `SharingPlan` with one group and `hashing` set in every spec.
    """
    total = sum(w.size for w in weights)
    if total > hashing.MAX_TOTAL:
        raise ValueError(
            f"The HashedNets hash covers at most {hashing.MAX_TOTAL} weight "
            f"entries; this model's shared weights have {total}. Leave some "
            "layers out with `exclude=`."
        )
    bank = budget - unshared_params
    if not 1 <= bank <= total:
        raise BudgetError(
            budget,
            smallest=unshared_params + 1,
            largest=unshared_params + total,
            options="a hashed bank",
        )
    stddev = group_stddev(weights)
    specs = {}
    position = 0
    for weight in weights:
        specs[weight.path] = _whole_bank_spec(
            weight,
            bank,
            templates=1,
            scale=float(weight.stddev / stddev),
            share="hashed",
            hashing=(int(seed), position, total, hashing.ROUNDS),
        )
        position += weight.size
    return _single_group_plan(specs, stddev, budget, unshared_params, unshared_layers)


def _whole_bank_spec(weight, bank, offset=0, **fields):
    """The spec of a weight that reads the whole one-group bank of `bank` entries."""
    return WeightSpec(
        group=0, shape=tuple(weight.shape), start=0, size=bank, offset=offset, **fields
    )


def _single_group_plan(specs, stddev, budget, unshared_params, unshared_layers=()):
    """A plan whose one group is the whole bank, read by every spec."""
    bank = budget - unshared_params - sum(s.num_coefficients for s in specs.values())
    return SharingPlan(
        budget=int(budget),
        bank_size=bank,
        unshared_params=int(unshared_params),
        groups=(GroupSlice(0, 0, bank, stddev, tuple(specs)),),
        weights=specs,
        unshared_layers=tuple(unshared_layers),
    )

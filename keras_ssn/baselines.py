"""Baselines that SSNs are compared against, at the same budget: HashedNets, low rank."""

import numpy as np

from keras_ssn.budget import BudgetError
from keras_ssn.budget import resolve_budget
from keras_ssn.convert import MAX_SEED
from keras_ssn.convert import apply_plan
from keras_ssn.convert import checked_seed
from keras_ssn.convert import check_model
from keras_ssn.copying import copy_model
from keras_ssn.layer_paths import count_trainable
from keras_ssn.low_rank import plan_low_rank
from keras_ssn.selection import find_shareable
from keras_ssn.selection import layer_filter
from keras_ssn.single_group_plans import plan_hashed


def hashed(model, budget, *, seed=0, exclude=None, min_size=0):
    """Returns a HashedNets copy of `model` with exactly `budget` trainable parameters.

    HashedNets (Chen et al., 2015): every entry of every shareable weight is
    a copy of one entry of a single shared vector, with a random sign, both
    chosen by a fixed hash. There are no templates and no learned
    coefficients. The result is a model like the ones `convert()` returns
    (same layers, bank, saving, `summary()` and `materialize()`), so the two
    can be compared at equal budgets.

    Args:
        model: A built Sequential or Functional model.
        budget: `int` exact trainable count, or `float` fraction of the
            model's; at most the model's own count.
        seed: Seed of the hash and of the bank initializer: an int from 0
            to 2**31 - 1, or `None` for a random one (the sharing plan
            records it, so a saved model keeps its hash).
        exclude: Layers to keep unshared, as in `convert()`.
        min_size: Smallest weight to share, as in `convert()`.

    Returns:
        A `SharedFunctional` or `SharedSequential`.

    Raises:
        TypeError, ValueError: `seed` is not an int in range.
    """
    check_model(model)
    seed = checked_seed(seed)
    if seed is None:
        seed = int(np.random.default_rng().integers(0, MAX_SEED))
    original, target, copy, candidates, unshared, weights = _shareable_copy(
        model, budget, exclude, min_size)
    try:
        plan = plan_hashed(
            weights, original - sum(w.size for w in weights), target, seed=seed,
            unshared_layers=unshared,
        )
    except BudgetError as error:
        raise error.restated(budget, original) from None
    return apply_plan(copy, candidates, plan, seed)


def low_rank(model, budget, *, exclude=None, min_size=0):
    """Returns a copy of `model` whose shared weights are truncated SVDs of its own.

    The low-rank baseline for starting from a trained model (see
    `keras_ssn.low_rank`): every shareable weight (dense, einsum, embedding,
    convolution and recurrent kernels, attention projections) is replaced by
    two factors fitted to its current value by SVD, with ranks chosen by
    water-filling so that the trainable count is exactly `budget`. Like
    `convert()`, the result trains, saves, loads and materializes, and the
    weights that layers keep keep their values.

    Args:
        model: A built model, as for `convert()`.
        budget: `int` exact trainable count, or `float` fraction of the
            model's trainable count.
        exclude: Layers to keep unshared, as in `convert()`.
        min_size: Smallest weight to factor, as in `convert()`.

    Returns:
        A model like `convert()` returns.

    Raises:
        BudgetError: The budget cannot give every weight rank 1, or exceeds
            every weight at full rank (`.smallest`, `.largest`).
    """
    check_model(model)
    original, target, copy, candidates, unshared, weights = _shareable_copy(
        model, budget, exclude, min_size)
    values = {path: value for c in candidates for path, value in c.weight_values().items()}
    try:
        plan, vector = plan_low_rank(
            weights, values, original - sum(w.size for w in weights), target, unshared)
    except BudgetError as error:
        raise error.restated(budget, original) from None
    converted = apply_plan(copy, candidates, plan, seed=0)
    converted.bank.assign_vector(vector)
    return converted


def _shareable_copy(model, budget, exclude, min_size):
    """`(original count, target count, copy, candidates, unshared, weights)`."""
    original = count_trainable(model)
    target = resolve_budget(budget, original)
    copy = copy_model(model)
    candidates, unshared = find_shareable(copy, False, layer_filter(exclude, min_size, copy))
    if not candidates:
        raise ValueError(f"Model '{model.name}' has no layer whose weight can be shared.")
    weights = [w for c in candidates for w in c.shared_weights()]
    return original, target, copy, candidates, unshared, weights

"""`learn_groups()`: the paper's learned parameter mapping.

A short pretraining of a single-group SSN in which every layer mixes the same
few bank chunks (each resized to the layer's weight) with softmax
coefficients, then k-means on the layers' coefficient vectors: layers that
learned to mix the bank alike end up in the same parameter group.
"""

import keras
import numpy as np

from keras_ssn.budget import BudgetError
from keras_ssn.budget import resolve_budget
from keras_ssn.convert import apply_plan
from keras_ssn.convert import check_model
from keras_ssn.copying import copy_model
from keras_ssn.layer_paths import count_trainable
from keras_ssn.selection import find_shareable
from keras_ssn.selection import layer_filter
from keras_ssn.single_group_plans import plan_warped


def learn_groups(
    model,
    data,
    num_groups,
    *,
    loss,
    budget=0.1,
    epochs=1,
    templates=4,
    optimizer="adam",
    batch_size=None,
    steps_per_epoch=None,
    exclude=None,
    min_size=0,
    seed=None,
    verbose="auto",
):
    """Learns which layers should share parameters, as the paper does.

    Trains a low-budget copy of `model` briefly (by default one epoch; the
    paper uses 10-15% of the normal schedule), then clusters the layers by
    how they learned to mix the bank. The input model is not modified.

    Args:
        model: A built Sequential or Functional model.
        data: Training data as `fit` takes it: a `(x, y)` tuple of arrays, a
            `tf.data.Dataset` or a Python generator of `(x, y)` batches.
        num_groups: Number of parameter groups to return.
        loss: Loss for the pretraining, as `compile` takes it.
        budget: Budget of the pretraining model (`int` or fraction).
        epochs: Pretraining epochs.
        templates: Bank chunks every layer mixes (the paper uses 4).
        optimizer: Optimizer for the pretraining, as `compile` takes it.
        batch_size: Batch size when `data` holds arrays.
        steps_per_epoch: Steps per epoch, needed for endless generators.
        exclude: Layers to keep unshared, as in `convert()`; pass the same
            value to both.
        min_size: Smallest weight to share, as in `convert()`.
        seed: Seed for the pretraining model and for k-means.
        verbose: Passed to `fit`: `"auto"` shows Keras's progress bar.

    Returns:
        A dict mapping the path of every shareable weight (layer path, then
        weight name) to a group id in `range(num_groups)`, ready for
        `convert(model, budget, groups=...)`.
    """
    check_model(model)
    copy = copy_model(model)
    candidates, _ = find_shareable(
        copy, strict=False, exclusion=layer_filter(exclude, min_size, copy)
    )
    owners = {path: (owner, name) for c in candidates
              for path, (_, owner, name) in c.weight_paths().items()}
    paths = list(owners)
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)):
        raise TypeError(f"num_groups must be an int; received {num_groups!r}.")
    if not 1 <= num_groups <= len(paths):
        raise ValueError(
            f"num_groups must be between 1 and the number of shareable weights "
            f"({len(paths)}); received num_groups={num_groups}."
        )
    weights = [w for c in candidates for w in c.shared_weights()]
    original = count_trainable(model)
    try:
        plan = plan_warped(
            weights,
            unshared_params=original - sum(w.size for w in weights),
            budget=resolve_budget(budget, original),
            templates=templates,
        )
    except BudgetError as error:
        raise error.restated(budget, original) from None
    pretrain = apply_plan(copy, candidates, plan, seed)
    pretrain.compile(optimizer=optimizer, loss=loss)
    _fit(pretrain, data, epochs, batch_size, steps_per_epoch, verbose)
    vectors = np.stack(
        [_mixing_weights(owner.coefficients[name]) for owner, name in owners.values()]
    )
    from sklearn.cluster import KMeans  # imported here: only this step needs it

    labels = KMeans(num_groups, n_init=10, random_state=seed).fit_predict(vectors)
    return {path: int(label) for path, label in zip(paths, labels)}


def _fit(model, data, epochs, batch_size, steps_per_epoch, verbose):
    if isinstance(data, tuple):
        if len(data) != 2:
            raise ValueError(
                "An array `data` must be a tuple `(x, y)`; received a tuple of "
                f"{len(data)} items."
            )
        x, y = data
        model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose)
        return
    # A dataset or generator shuffles itself (or not); Keras warns on the
    # default shuffle=True.
    model.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch, shuffle=False,
              verbose=verbose)


def _mixing_weights(coefficients):
    values = keras.ops.convert_to_numpy(coefficients)[0]
    values = np.exp(values - values.max())
    return values / values.sum()

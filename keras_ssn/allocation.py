"""`search_allocation()`: how much of the bank each group gets, from data.

Neural Parameter Allocation Search (Plummer et al., ICLR 2022, Section 3)
decides from the model and a little data where a budget's parameters go.
Here the loss's sensitivity to each shareable weight, its squared gradient
summed over the weight's entries and a few batches (the diagonal of the
empirical Fisher information, as in Fisher pruning), sizes the groups'
slices: a group of `n` entries with sensitivity `F` gets a slice in
proportion to `n * sqrt(F / n)` instead of `n` (see
`mapping.slice_weights`). A few forward and backward passes of the
original model, no training.
"""

import math
import time

import keras
import numpy as np

from keras_ssn.backends import squared_gradients
from keras_ssn.convert import check_model
from keras_ssn.copying import copy_model
from keras_ssn.selection import find_shareable
from keras_ssn.selection import layer_filter


class Allocation:
    """`groups=` for `convert()`: a parameter mapping and each weight's sensitivity.

    `convert(model, budget, groups=allocation)` groups the weights as
    `allocation.groups` says and splits the bank between the groups by
    their sensitivity (`mapping.slice_weights`); one allocation serves
    every budget. The slices it gives are in the converted model's plan
    (`summary()`, `plot_sharing()`, saved with the model).

    Args:
        sensitivity: Dict from each shareable weight's path (as
            `summary()` prints it) to its sensitivity, a float ≥ 0.
        groups: The parameter mapping, any value `convert(groups=...)`
            takes other than an `Allocation`.
        batches: Batches the sensitivity was measured on.
        seconds: Wall time of the measurement.
    """

    def __init__(self, sensitivity, groups="auto", batches=None, seconds=None):
        if isinstance(groups, Allocation):
            raise TypeError("groups must be a grouping, not another Allocation.")
        self.sensitivity = {str(k): float(v) for k, v in sensitivity.items()}
        bad = {k: v for k, v in self.sensitivity.items() if not v >= 0 or math.isinf(v)}
        if bad:
            raise ValueError(
                f"Sensitivities must be finite and non-negative; received {bad}."
            )
        self.groups = groups
        self.batches = batches
        self.seconds = seconds

    def sensitivity_of(self, paths):
        """The sensitivity of each weight in `paths`, in order.

        Raises:
            ValueError: Some path has none: the allocation was searched on
                another model, or with a different `exclude=`/`min_size=`.
        """
        missing = [p for p in paths if p not in self.sensitivity]
        if missing:
            raise ValueError(
                f"The allocation has no sensitivity for {missing}: it was "
                f"searched on another model, or with other exclude= or "
                f"min_size= options. It covers {sorted(self.sensitivity)}."
            )
        return [self.sensitivity[p] for p in paths]

    def get_config(self):
        return {"sensitivity": dict(self.sensitivity), "groups": self.groups,
                "batches": self.batches, "seconds": self.seconds}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return (f"<Allocation groups={self.groups!r} of {len(self.sensitivity)} "
                f"weights, {self.batches} batches>")


def search_allocation(
    model,
    data,
    *,
    loss,
    groups="auto",
    batches=8,
    batch_size=32,
    seed=0,
    exclude=None,
    min_size=0,
):
    """Measures how much each shareable weight matters to the loss.

    Draws `batches` batches of `batch_size` examples from `data` (seeded),
    and sums each shareable weight's squared gradient of `loss` over its
    entries and the batches, with `model` in training mode; `model` is not
    modified. On a model just built, the gradients are those of its
    initialization; on a trained model, of what it learned.

    Args:
        model: A built Keras model, as `convert()` takes it.
        data: `(x, y)`: arrays (or nested structures of arrays) with one
            example per row.
        loss: The training loss, as `compile()` takes it (a name, a
            `keras.losses.Loss` or a callable `loss(y_true, y_pred)`).
        groups: The parameter mapping to size: any value
            `convert(groups=...)` takes other than an `Allocation`.
        batches: Batches to measure on.
        batch_size: Examples per batch.
        seed: Seed of the batches drawn (and of dropout).
        exclude: Layers to keep unshared, as in `convert()`; pass the same
            value to both.
        min_size: Smallest weight to share, as in `convert()`.

    Returns:
        An `Allocation` to pass as `convert(model, budget, groups=...)`.

    Raises:
        TypeError: `data` is not an `(x, y)` tuple.
        ValueError: `data`'s x and y hold different numbers of rows, or
            `batches` or `batch_size` is not a positive int.
    """
    start = time.perf_counter()
    check_model(model)
    x, y = _pair(data)
    for name, value in (("batches", batches), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int; received {value!r}.")
    copy = copy_model(model)
    candidates, _ = find_shareable(
        copy, strict=False, exclusion=layer_filter(exclude, min_size, copy)
    )
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    rows = _rows(x)
    drawn = [rng.integers(0, rows, batch_size) for _ in range(batches)]
    totals = squared_gradients(
        copy, keras.losses.get(loss), ((_take(x, r), _take(y, r)) for r in drawn)
    )
    by_variable = {id(v): t for v, t in zip(copy.trainable_variables, totals)}
    sensitivity = {
        path: by_variable[id(variable)]
        for c in candidates for path, variable in c.variables().items()
    }
    return Allocation(sensitivity, groups, batches, time.perf_counter() - start)


def _pair(data):
    if not isinstance(data, tuple) or len(data) != 2:
        raise TypeError(f"data must be a tuple (x, y) of arrays; received {type(data)}.")
    rows = {_rows(part) for part in data}
    if len(rows) != 1:
        raise ValueError(f"data's x and y hold different numbers of rows: {sorted(rows)}.")
    return data


def _rows(structure):
    counts = {len(a) for a in keras.tree.flatten(structure)}
    if len(counts) != 1:
        raise ValueError(f"Arrays of one input hold different numbers of rows: {counts}.")
    return counts.pop()


def _take(structure, rows):
    return keras.tree.map_structure(lambda array: np.asarray(array)[rows], structure)

"""The generation engine: every shared weight, generated once per forward pass.

A forward pass puts its shared weights in a `GeneratedWeights` scope, and
each shared layer reads its weight from the scope instead of generating it.
By default (`SharingPlan.rematerialize`) the scope holds a `WeightRecipe` per
weight, generated where its layer uses it (`keras_ssn.recipes`,
`keras_ssn.remat`). With `rematerialize=False` a converted model generates
all its shared weights at the start of its `call()`, one parameter group at
a time (`generate_groups`): the paper's "weight generation happens once per
forward pass" (Plummer et al., ICLR 2022, Section 3.2), which reads the bank
the least, at the cost of keeping every weight until its backward pass:

- The bank is held in pieces (`WeightBank.pieces`, cut as `bank_cuts.bank_pieces`
  says), cut into its groups' slices by one `split` where a piece holds
  several groups: no layer's gradient is a bank-sized buffer.
- With consecutive placement, a group's layers read its slice end to end,
  going round it (`reading.read_end_to_end`). Where they read it at most twice
  over, the bank's pieces are their windows: a window is a variable of the
  bank, read without a copy, and its gradient is that variable's (a window
  that wraps joins two pieces). Otherwise static `split`s cut the slice
  into the windows, and the gradient into the slice is one concatenation
  per pass, summed. The gradient buffers hold the entries read, about the
  size of the generated weights, whatever the depth.
- With rows placement (`placement="rows"`, and the groups `"auto"` places
  in rows), the layers of one size mix rows of one ring: at low budgets one
  `(layers, rows) @ (rows, size)` matmul generates them all and reads the
  slice once (`shared_rows`); otherwise each layer's rows are read end to
  end like the slice above.
- Hashed layers of a group read their entries with one gather.

Other reads (sliding placement, the warped templates of `learn_groups()`)
slice the group's slice per layer.

A shared layer that is called outside a scope that holds its weights (on
its own, or a layer that `convert()` could not reach through its model)
generates them itself, once per call (see `standalone_scope`).
"""

import bisect
import contextlib
import threading

import numpy as np
from keras import ops

from keras_ssn import generation
from keras_ssn.plan import mixes_every_row
from keras_ssn.plan import shared_rows
from keras_ssn.reading import cut_at
from keras_ssn.reading import join
from keras_ssn.reading import read_end_to_end
from keras_ssn.reading import read_group
from keras_ssn.recipes import WeightRecipe

_STACK = threading.local()


class GeneratedWeights:
    """Generated weights of one forward pass, by layer and weight name.

    A weight is held either as a tensor, generated ahead, or as a
    `WeightRecipe` that generates it where its layer uses it (see
    `keras_ssn.remat`).
    """

    def __init__(self):
        self._weights = {}
        self._layers_by_id = {}

    def add(self, layer, name, weight):
        """Holds `weight`, a tensor or a `WeightRecipe`, for `layer`'s `name`."""
        self._weights[(id(layer), name)] = weight
        self._layers_by_id[id(layer)] = layer  # keeps ids valid while in scope

    def get(self, layer, name):
        """The weight as a tensor (a recipe's weight is generated once), or `None`."""
        weight = self._weights.get((id(layer), name))
        return weight.weight() if isinstance(weight, WeightRecipe) else weight

    def holds(self, layer, name):
        return (id(layer), name) in self._weights

    def recipe(self, layer, name):
        """The `WeightRecipe` held for `layer`'s `name`, or `None`."""
        weight = self._weights.get((id(layer), name))
        return weight if isinstance(weight, WeightRecipe) else None

    def covers(self, layer):
        return id(layer) in self._layers_by_id

    def __len__(self):
        return len(self._weights)


def _stack():
    if not hasattr(_STACK, "scopes"):
        _STACK.scopes = []
    return _STACK.scopes


@contextlib.contextmanager
def scope(weights):
    """Makes `weights` (a `GeneratedWeights`) what shared layers read inside."""
    stack = _stack()
    stack.append(weights)
    try:
        yield weights
    finally:
        stack.pop()


def lookup(layer, name):
    """The weight `name` of `layer` generated in an enclosing scope, or `None`."""
    for weights in reversed(_stack()):
        weight = weights.get(layer, name)
        if weight is not None:
            return weight
    return None


def lookup_recipe(layer, name):
    """The `WeightRecipe` of `layer`'s `name` in an enclosing scope, or `None`.

    `None` too where an enclosing scope holds the weight generated ahead.
    """
    for weights in reversed(_stack()):
        if weights.holds(layer, name):
            return weights.recipe(layer, name)
    return None


def is_covered(layer):
    """Whether an enclosing scope holds `layer`'s generated weights."""
    return any(weights.covers(layer) for weights in _stack())


def generate_groups(bank, plan, owners):
    """Generates the weights of every layer in `owners`, group by group.

    Args:
        bank: The model's `WeightBank`.
        plan: The model's `SharingPlan`.
        owners: Dict mapping weight paths of the plan to `(layer, name)`;
            weights missing from it are not generated.

    Returns:
        A `GeneratedWeights`, in float32.
    """
    generated = GeneratedWeights()
    slices = group_pieces(bank, plan.groups)
    maps = bank.coefficient_maps
    maps = None if maps is None else maps.value
    for group, group_slice in zip(plan.groups, slices):
        paths = [p for p in group.weights if p in owners]
        if not paths:
            continue
        specs = [plan.weights[p] for p in paths]
        parameters = [
            owners[p][0].generation_parameters(owners[p][1], maps) for p in paths
        ]
        weights = generate_group(group_slice, specs, parameters)
        for path, weight in zip(paths, weights):
            generated.add(*owners[path], weight)
    return generated


def group_pieces(bank, groups):
    """Each group's slice of the bank, as the pieces that hold it.

    Args:
        bank: The model's `WeightBank`.
        groups: The plan's `GroupSlice`s, in bank order.

    Returns:
        List with, per group, the 1-D tensors that laid end to end are its
        slice: the bank's pieces, cut with one `split` where a piece holds
        entries of several groups.
    """
    starts = [g.start for g in groups]
    slices = [[] for _ in groups]
    low = 0
    for part in cut_at(bank.piece_values(), starts[1:]):
        slices[bisect.bisect_right(starts, low) - 1].append(part)
        low += part.shape[0]
    return slices


def generate_group(pieces, specs, parameters):
    """Generates the weights of one group's layers from its slice.

    Args:
        pieces: 1-D tensors that laid end to end are the group's slice.
        specs: `WeightSpec`s of the layers, in the plan's order.
        parameters: Each layer's learned generation parameters, or `None`.

    Returns:
        List of weights, one per spec.
    """
    weights = [None] * len(specs)
    for members in shared_rows(specs):
        generated = _generate_rows(
            join(pieces), [specs[i] for i in members], [parameters[i] for i in members]
        )
        for i, weight in zip(members, generated):
            weights[i] = weight
    rest = [i for i, weight in enumerate(weights) if weight is None]
    windows = read_group(pieces, [specs[i] for i in rest])
    for i, window in zip(rest, windows):
        weights[i] = generation.shape_weight(window, specs[i], parameters[i])
    return weights


def _generate_rows(group_slice, specs, parameters):
    """Weights of layers that mix rows of one ring, read once."""
    if mixes_every_row(specs):
        ring = _read_rows(group_slice, specs[0], specs[0].ring[0], specs[0].ring[1])
        # Each layer's scale goes into its row of the mixing matrix, so the
        # matmul's output rows are the weights themselves.
        mixing = ops.concatenate(
            [_row_mixing(spec, params) for spec, params in zip(specs, parameters)],
            axis=0,
        )
        # `split`, not `unstack`: its gradient is one concatenation, where
        # unstack's is a sum of layer-count zero-padded copies.
        weights = ops.split(ops.matmul(mixing, ring), len(specs), axis=0)
    else:
        weights = _mix_own_rows(group_slice, specs, parameters)
    return [ops.reshape(weight, spec.shape) for spec, weight in zip(specs, weights)]


def _read_rows(group_slice, spec, start, count):
    """`count` rows of `spec`'s ring from the row at `start`: `(count, size)`.

    Rows follow each other in the slice up to the ring's last row, which
    wraps to the ring's start; `count` must not go past it.
    """
    entries = generation.read_window(
        group_slice, 0, spec.size, start, count * spec.weight_size
    )
    return ops.reshape(entries, (count, spec.weight_size))


def _mix_own_rows(group_slice, specs, parameters):
    """Each layer mixes only its own rows.

    The unit's layers take consecutive rows going round the ring, so their
    templates are consecutive windows of the ring (see `read_end_to_end`).
    """
    rotation, rows = specs[0].ring
    counts = [spec.templates for spec in specs]
    first = specs[0].ring_row
    if first + sum(counts) <= rows:
        ring = _read_rows(group_slice, specs[0], specs[0].offset, sum(counts))
        first = 0
    else:
        ring = _read_rows(group_slice, specs[0], rotation, rows)
    weight_size = specs[0].weight_size
    windows = read_end_to_end(
        [ops.reshape(ring, (-1,))], [k * weight_size for k in counts], first * weight_size
    )
    templates = [
        ops.reshape(window, (k, weight_size)) for window, k in zip(windows, counts)
    ]
    return [
        spec.combination.combine(own, params, spec.scale)
        for spec, own, params in zip(specs, templates, parameters)
    ]


def _row_mixing(spec, parameters):
    """A layer's template coefficients times its scale, at its rows: `(1, rows)`."""
    _, rows = spec.ring
    placement = np.zeros((spec.templates, rows), "float32")
    for k in range(spec.templates):
        placement[k, (spec.ring_row + k) % rows] = spec.scale
    coefficients = spec.combination.coefficients(parameters, spec.templates)
    return ops.matmul(coefficients, placement)

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

- The bank is held in pieces (`WeightBank.pieces`, cut as `bank_pieces`
  says), cut into its groups' slices by one `split` where a piece holds
  several groups: no layer's gradient is a bank-sized buffer.
- With consecutive placement, a group's layers read its slice end to end,
  going round it (`read_end_to_end`). Where they read it at most twice
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
from keras_ssn.generation import COMBINE
from keras_ssn.generation import HASHED
from keras_ssn.generation import UPSAMPLE
from keras_ssn.plan import mixes_every_row
from keras_ssn.plan import shared_rows
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
    for part in _cut_at(bank.piece_values(), starts[1:]):
        slices[bisect.bisect_right(starts, low) - 1].append(part)
        low += part.shape[0]
    return slices


def bank_pieces(plan):
    """Sizes of the pieces a bank for `plan` is best held in (`WeightBank(pieces=)`).

    When the plan rematerializes its weights (`plan.rematerialize`), each
    layer generates its weight from the pieces it reads, so the bank is cut
    wherever a layer's reads start or stop, and at every template of a
    weight whose templates no larger template overlaps (`_read_edges`): a
    layer's gradient then reaches only the pieces it read, the optimizer
    can update a piece as soon as the last layer that reads it has its
    gradient, and those weights mix whole pieces.

    Otherwise a group whose layers read its slice end to end, at most twice
    over, is cut wherever a window starts or stops (see `read_end_to_end`):
    a window of the first pass is then a piece of its own, read without a
    copy and trained without a concatenation, and a window that goes round
    joins whole pieces. Groups read otherwise (rows, sliding, hashed, or
    round the slice more than twice) are left together in one piece, which
    one `split` cuts into their slices (holding each in a variable of its
    own costs more: measured on 2 x LSTM(256) at 1%, 0.997x the plain
    step's bytes instead of 0.920x).

    Returns:
        List of positive sizes adding up to `plan.bank_size`.
    """
    edges = {0, plan.bank_size}
    for group in plan.groups:
        specs = [plan.weights[p] for p in group.weights]
        if plan.rematerialize:
            cuts = _read_edges(specs)
        else:
            cuts = slice_cuts(specs, group.size)
        if cuts:
            edges.update((group.start, group.start + group.size))
            edges.update(group.start + cut for cut in cuts)
    edges = sorted(edges)
    return [high - low for low, high in zip(edges[:-1], edges[1:])]


def _read_edges(specs):
    """Where a group's rematerialized layers start and stop reading its slice.

    Every weight's reads (`WeightSpec.read_spans`), and where each of its
    templates starts and stops (`WeightSpec.window_spans`) for a weight
    whose templates no larger template overlaps: those templates are then
    whole pieces, read without a copy, each with a gradient of its own. A
    template that overlaps a larger one would cut it into small pieces
    (ResNet50V2 at 10%, its convolutions of many sizes mixing templates of
    one slice: 192 pieces instead of 49, 2.7x the bytes accessed), so only
    that weight's reads are cut out.
    """
    whole = _whole_template_readers(specs)
    return [
        edge
        for index, spec in enumerate(specs)
        for span in (spec.window_spans if index in whole else spec.read_spans)
        for edge in span
    ]


def _whole_template_readers(specs):
    """Indices of the specs whose templates no larger template overlaps."""
    spans = sorted(
        (begin, end, spec.weight_size, index)
        for index, spec in enumerate(specs)
        for begin, end in spec.window_spans
    )
    smaller = set()
    for i, (begin, end, size, index) in enumerate(spans):
        for other_begin, _, other_size, other in spans[i + 1 :]:
            if other_begin >= end:
                break
            if other_size < size:
                smaller.add(other)
            elif size < other_size:
                smaller.add(index)
    return set(range(len(specs))) - smaller


def slice_cuts(specs, size):
    """Where a group's windows, read end to end, start and stop in its slice.

    Args:
        specs: `WeightSpec`s of all the group's weights.
        size: The group's slice size.

    Returns:
        Sorted positions inside the slice; empty where the layers do not
        read it end to end, or go round it more than twice.
    """
    lengths = [s.read_length for s in specs if s.read_length]
    if not lengths or not is_end_to_end(specs) or sum(lengths) > 2 * size:
        return []
    return sorted({b % size for b in np.cumsum(lengths).tolist()} - {0})


def _first_pass_cuts(bounds, size):
    return sorted({b % size for b in bounds if b < bounds[0] + size} - {0})


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
            _join(pieces), [specs[i] for i in members], [parameters[i] for i in members]
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


def read_group(pieces, specs):
    """The entries each layer of a group reads, read together where possible.

    Args:
        pieces: 1-D tensors that laid end to end are the group's slice.
        specs: `WeightSpec`s of the layers to read for.
    """
    if not specs:
        return []
    if is_end_to_end(specs):
        return read_end_to_end(pieces, [s.read_length for s in specs])
    group_slice = _join(pieces)
    if all(spec.mode == HASHED for spec in specs):
        return _read_hashed(group_slice, specs)
    return [generation.read(group_slice, spec) for spec in specs]


def is_end_to_end(specs):
    """Whether the layers' reads, laid end to end, are one tiling of the slice.

    True when every layer reads one contiguous window (combining or
    upsampling) and each starts where the previous one stopped, as with
    consecutive placement.
    """
    before = 0
    for spec in specs:
        if spec.ring is not None or spec.mode not in (COMBINE, UPSAMPLE):
            return False
        if spec.offset != before % spec.size:
            return False
        before += spec.read_length
    return True


def read_end_to_end(pieces, lengths, start=0):
    """Consecutive windows of a 1-D source read round and round, from `start`.

    The source is given as `pieces`, 1-D tensors laid end to end (one
    tensor, or the variables a bank is held in). Window `i` holds
    `lengths[i]` entries and starts where window `i - 1` stopped, wrapping
    around the end of the source. A window is a slice of the source cut by a
    `split`, or a concatenation of such slices where it wraps, so XLA reads
    only the entries each window holds, and the gradient into the source is
    a concatenation of the windows' gradients:

    - Where the windows read the source at most twice over (a group whose
      layers read its slice once, one of them going round into the start),
      the windows of the first pass are one `split` of the source, and a
      later window reads their pieces, or parts of one cut by one more
      `split`: one concatenation in all, a piece that two windows read
      carrying the sum of their gradients. Where `pieces` are already cut
      where windows start and stop (see `bank_pieces`), the windows read
      them as they are: no `split`, and no concatenation in the gradient.
    - Where they go round many times (layers that upsample from a small
      slice), each pass is its own `split` of the source, and the gradient
      is one concatenation per pass, summed; a piece read by many windows
      would instead sum all their gradients.

    Args:
        pieces: List of 1-D tensors, the source in order.
        lengths: Window lengths (a window of length 0 is empty).
        start: Where the first window starts.

    Returns:
        List of 1-D tensors, one per window.
    """
    if 0 in lengths:
        read = iter(read_end_to_end(pieces, [n for n in lengths if n], start))
        empty = ops.zeros((0,), dtype=pieces[0].dtype)
        return [next(read) if n else empty for n in lengths]
    if not lengths:
        return []
    size = sum(piece.shape[0] for piece in pieces)
    bounds = [start, *(start + np.cumsum(lengths)).tolist()]
    if bounds[-1] - start <= 2 * size:
        return _read_from_first_pass(pieces, bounds)
    return _read_pass_by_pass(_join(pieces), bounds)


def _read_pass_by_pass(source, bounds):
    """`read_end_to_end`, with one `split` of `source` per pass."""
    size = source.shape[0]
    pieces = []  # (begin, end, tensor), in positions of the unrolled reading
    first = bounds[0] - bounds[0] % size
    while first < bounds[-1]:
        cuts = sorted({b - first for b in bounds if first < b < first + size})
        parts = ops.split(source, cuts) if cuts else [source]
        for low, high, part in zip([0, *cuts], [*cuts, size], parts):
            pieces.append((first + low, first + high, part))
        first += size
    return [
        _join([part for begin, end, part in pieces if begin >= low and end <= high])
        for low, high in zip(bounds[:-1], bounds[1:])
    ]


def _read_from_first_pass(source_pieces, bounds):
    """`read_end_to_end`, later windows reusing the pieces of the first pass.

    The source is cut where the first pass's windows start and stop, and
    where its pieces already are cut.
    """
    edges = np.cumsum([0, *(piece.shape[0] for piece in source_pieces)]).tolist()
    size = edges[-1]
    cuts = sorted(set(_first_pass_cuts(bounds, size)) | set(edges[1:-1]))
    piece_starts, piece_stops = [0, *cuts], [*cuts, size]
    segments = []  # per window: (piece, begin, end) in positions of the source
    spans = [set() for _ in piece_starts]  # per piece: the spans read of it
    for low, high in zip(bounds[:-1], bounds[1:]):
        parts = []
        while low < high:
            turn, offset = divmod(low, size)
            index = bisect.bisect_right(piece_starts, offset) - 1
            stop = min(piece_stops[index], offset + high - low)
            parts.append((index, offset, stop))
            spans[index].add((offset, stop))
            low = turn * size + stop
        segments.append(parts)
    pieces = [
        _cut_piece(*piece)
        for piece in zip(_cut_at(source_pieces, cuts), piece_starts, piece_stops, spans)
    ]
    return [
        _join([pieces[index][(begin, end)] for index, begin, end in parts])
        for parts in segments
    ]


def _cut_at(pieces, cuts):
    """The source held as `pieces`, each cut at the `cuts` inside it.

    `cuts` are positions in the source; one `split` per piece they fall in.
    """
    parts = []
    low = 0
    for piece in pieces:
        high = low + piece.shape[0]
        inner = [cut - low for cut in cuts if low < cut < high]
        parts.extend(ops.split(piece, inner) if inner else [piece])
        low = high
    return parts


def _cut_piece(piece, low, high, spans):
    """The parts of `piece` (`source[low:high]`) read as `spans`, by span.

    Returns:
        Dict mapping each `(begin, end)` span of `source` to its tensor.
    """
    cuts = sorted({b for span in spans for b in span} - {low, high})
    by_span = {(low, high): piece}
    if not cuts:
        return by_span
    edges = [low, *cuts, high]
    parts = ops.split(piece, [c - low for c in cuts])
    for begin, end in sorted(spans - {(low, high)}):
        by_span[(begin, end)] = _join(parts[edges.index(begin) : edges.index(end)])
    return by_span


def _join(parts):
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=0)


def _read_hashed(group_slice, specs):
    """Reads a hashed group with one hash and one gather over all its layers."""
    index, sign = generation.hashed_read(specs)
    signed = ops.take(group_slice, index, axis=0) * sign
    if len(specs) == 1:
        return [signed]
    return ops.split(signed, _boundaries([s.weight_size for s in specs]))


def _boundaries(lengths):
    """Split points between consecutive pieces of the given lengths."""
    return np.cumsum(lengths[:-1]).tolist()

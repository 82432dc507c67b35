"""Weight generation: from bank entries to a layer's weight tensor.

Every function here uses static shapes and `keras.ops` only, so generation
compiles under XLA and runs on every backend.
"""

import functools
import math

import numpy as np
from keras import ops

# How a layer's weight relates to its group's slice (see `WeightSpec.mode`).
COMBINE = "combine"  # mixes `templates` full-size templates
UPSAMPLE = "upsample"  # enlarges entries of a slice smaller than the weight
WARP = "warp"  # resizes reduced templates read from the whole bank, then mixes
HASHED = "hashed"  # the HashedNets baseline: each entry a signed random bank entry


def read_window(bank, start, size, offset, length):
    """Reads `length` entries of a bank slice, wrapping around its end.

    Args:
        bank: 1-D tensor, the whole bank.
        start: First entry of the slice.
        size: Length of the slice.
        offset: Position inside the slice where reading begins.
        length: Number of entries to read.

    Returns:
        1-D tensor of `length` entries.
    """
    head = bank[start + offset : start + size]
    if length <= size - offset:
        return head[:length]
    pieces = [head]
    rest = length - (size - offset)
    full_cycles, tail = divmod(rest, size)
    segment = bank[start : start + size]
    if full_cycles:
        pieces.append(ops.tile(segment, (full_cycles,)))
    if tail:
        pieces.append(segment[:tail])
    return ops.concatenate(pieces, axis=0)


def combine_templates(templates, coefficients, share="wavg"):
    """Combines templates into one weight (the paper's WAvg, Emb or Avg).

    Args:
        templates: Tensor of shape `(num_templates, weight_size)`.
        coefficients: Tensor of shape `(1, num_templates)`, or `None` for a
            single template used as is. For `"emb"` these are the
            coefficients already projected from the layer embedding.
        share: `"wavg"` or `"emb"` (weighted by `coefficients`), `"avg"` (the
            mean) or `"softmax"` (weighted by the softmax of `coefficients`).

    Returns:
        1-D tensor of `weight_size` entries.
    """
    if share == "avg":
        return ops.mean(templates, axis=0)
    if coefficients is None:
        return templates[0]
    if share == "softmax":
        coefficients = ops.softmax(coefficients, axis=-1)
    # A broadcast multiply and a sum over templates, not a (1, K) @ (K, n)
    # matmul: XLA fuses it with the reads and the scale, and the gradient
    # with respect to the bank with the accumulation into the bank.
    return ops.sum(ops.transpose(coefficients) * templates, axis=0)


def embedded_coefficients(embedding, coefficient_maps, spec):
    """The paper's Emb: a layer embedding projected by its group's linear map.

    Args:
        embedding: The layer's embedding, shape `(1, embedding_dim)`.
        coefficient_maps: 1-D tensor holding every group's map.
        spec: The layer's `WeightSpec`; `spec.coefficient_map` is the
            `(start, embedding_dim, group_templates)` of its group's map.

    Returns:
        Coefficients of shape `(1, spec.templates)`.
    """
    start, rows, cols = spec.coefficient_map
    projection = ops.reshape(coefficient_maps[start : start + rows * cols], (rows, cols))
    return ops.matmul(embedding, projection[:, : spec.templates])


def upsample_template(template, matrix_shape):
    """Bilinearly resizes a reduced 2-D template to the weight's 2-D view.

    Uses half-pixel centers with edge clamping (the convention of
    `keras.ops.image.resize(..., interpolation="bilinear")` when enlarging),
    written as two gathers and two linear blends: the cost is linear in the
    output size and the gradient is a cheap scatter-add, on every backend.

    Args:
        template: Tensor of shape `(rows, cols)`, the reduced template.
        matrix_shape: Target `(rows, cols)`, each at least the template's.

    Returns:
        Tensor of shape `matrix_shape`.
    """
    for axis, target in enumerate(matrix_shape):
        source = template.shape[axis]
        if source == target:
            continue
        low, fraction = bilinear_axis(source, target)
        # Each output blends entries `low` and `low + 1` (clamped), so one
        # gather of (entry, next entry) pairs serves both: one gather, and
        # one scatter-add in the gradient, per axis.
        following = ops.concatenate(
            [_drop_first(template, axis), _last(template, axis)], axis=axis
        )
        pairs = ops.take(ops.stack([template, following], axis=-1), low, axis=axis)
        fraction = np.expand_dims(fraction, 1 - axis)
        template = pairs[..., 0] * (1.0 - fraction) + pairs[..., 1] * fraction
    return template


def _drop_first(matrix, axis):
    return matrix[1:] if axis == 0 else matrix[:, 1:]


def _last(matrix, axis):
    return matrix[-1:] if axis == 0 else matrix[:, -1:]


@functools.lru_cache(maxsize=256)
def bilinear_axis(source, target):
    """Sample positions of a bilinear resize from `source` to `target` points.

    Returns:
        `(low, fraction)`: for every output point, the first of the two
        input points it blends (the second is the next one, clamped to the
        last) and the weight of the second.
    """
    position = (np.arange(target) + 0.5) * source / target - 0.5
    position = np.clip(position, 0, source - 1)
    low = np.floor(position).astype("int32")
    fraction = (position - low).astype("float32")
    return low, fraction


def bilinear_gain(source_shape, target_shape):
    """Standard deviation that bilinear upsampling keeps from i.i.d. inputs.

    Each output of a bilinear resize is a convex mix of inputs, which shrinks
    the variance of independent entries. This returns the root mean square of
    the per-output mixing-weight norms, so dividing by it restores the
    variance.
    """
    gain = 1.0
    for source, target in zip(source_shape, target_shape):
        _, fraction = bilinear_axis(source, target)
        gain *= float(np.mean((1 - fraction) ** 2 + fraction**2))
    return math.sqrt(gain)


def generate_weight(bank, spec, coefficients=None):
    """Generates one layer's weight from the bank, in the bank's dtype.

    Args:
        bank: 1-D tensor, the whole bank.
        spec: The layer's `WeightSpec`.
        coefficients: The layer's learned generation parameters, or `None`:
            template coefficients `(1, templates)` when combining, the mask
            `(copies,)` for `"mask"` upsampling, the piece mixes
            `(chunks, 2)` for `"wavg"` upsampling.

    Returns:
        Tensor of shape `spec.shape`.
    """
    if spec.mode == HASHED:
        index, sign = hash_table(spec)
        slice_ = bank[spec.start : spec.start + spec.size]
        flat = ops.take(slice_, index, axis=0) * sign
        return ops.reshape(flat * spec.scale, spec.shape)
    if spec.mode == WARP:
        templates = ops.stack(
            [_warped_template(bank, spec, k) for k in range(spec.templates)]
        )
        flat = combine_templates(templates, coefficients, spec.share)
        return ops.reshape(flat * spec.scale, spec.shape)
    window = read_window(
        bank, spec.start, spec.size, spec.offset, spec.read_length
    )
    if spec.mode == UPSAMPLE:
        matrix = upsample_window(window, spec, coefficients)
    else:
        templates = ops.reshape(window, (spec.templates, spec.weight_size))
        matrix = combine_templates(templates, coefficients, spec.share)
    return ops.reshape(matrix * spec.scale, spec.shape)


def upsample_window(window, spec, coefficients=None):
    """Makes a weight larger than the group's slice from the entries read.

    - `"inter"`: the window is a reduced template, bilinearly resized.
    - `"repeat"`: the window already tiles the slice to the weight's size.
    - `"mask"`: the tiling, with each copy of the slice multiplied by its
      own learned mask value, so that copies can diverge.
    - `"wavg"`: the window is two halves of the slice; the weight is cut into
      chunks of one half's length, each a learned mix of the two halves.

    Args:
        window: The entries read, `spec.read_length` of them.
        spec: The layer's `WeightSpec` in `"upsample"` mode.
        coefficients: The mask or the piece mixes; `None` otherwise.

    Returns:
        Tensor of the weight's 2-D view, `spec.matrix_shape`.
    """
    rows, cols = spec.matrix_shape
    if spec.upsample == "inter":
        template = ops.reshape(window, spec.template_shape)
        return upsample_template(template, spec.matrix_shape)
    if spec.upsample == "wavg":
        pieces = ops.reshape(window, spec.template_shape)
        mixed = ops.reshape(ops.matmul(coefficients, pieces), (-1,))
        return ops.reshape(mixed[: spec.weight_size], (rows, cols))
    if spec.upsample == "mask":
        mask = ops.repeat(coefficients, spec.size, axis=0)[: spec.weight_size]
        window = window * mask
    return ops.reshape(window, (rows, cols))


def hash_table(spec):
    """Bank positions and signs of a hashed weight's entries (see `hashing`)."""
    seed, position, total = spec.hashing
    index, sign = _hash_tables(seed, total, spec.size)
    stop = position + spec.weight_size
    return index[position:stop], sign[position:stop]


@functools.lru_cache(maxsize=8)
def _hash_tables(seed, total, size):
    rng = np.random.default_rng(seed)
    index = (rng.permutation(total) % size).astype("int32")
    sign = rng.choice(np.array([-1.0, 1.0], "float32"), size=total)
    return index, sign


def _warped_template(bank, spec, index):
    """Template `index` of a warp-mode layer, resized to the weight, flattened."""
    offset = (spec.offset + index * spec.template_stride) % spec.size
    window = read_window(
        bank, spec.start, spec.size, offset, math.prod(spec.template_shape)
    )
    template = ops.reshape(window, spec.template_shape)
    return ops.reshape(upsample_template(template, spec.matrix_shape), (-1,))

"""Bilinear resizing of a reduced template to a weight (`upsample="inter"`).

The paper's Inter upsampling (Plummer et al., ICLR 2022, Section 3.2) reads
a reduced template of the weight's 2-D view from its group's slice and
resizes it bilinearly to the weight. Here: the template's shape, the resize
itself (two gathers and two blends, linear in the weight's size), its sample
positions, and the standard deviation it keeps of i.i.d. entries, which the
planner divides out. Static shapes and `keras.ops` only, so it compiles
under XLA.
"""

import functools
import math

import numpy as np
from keras import ops


def reduced_template_shape(rows, cols, min_size):
    """The smallest `(r, c)` grid with `r * c >= min_size` and the weight's aspect.

    Each side is at least 2 where the weight's is: a template of one column
    would resize to a weight whose columns are all equal.

    Args:
        rows: Rows of the weight's 2-D view.
        cols: Columns of the weight's 2-D view.
        min_size: Entries the template must hold (the group's slice size), so
            that reading it uses every entry of the slice.

    Returns:
        A tuple `(r, c)` with `r <= rows` and `c <= cols`.
    """
    ratio = math.sqrt(min_size / (rows * cols))
    r = min(rows, max(2, round(rows * ratio)))
    c = min(cols, max(2, math.ceil(min_size / r)))
    if r * c < min_size:
        r = min(rows, math.ceil(min_size / c))
    return (r, c)


def upsample_template(template, matrix_shape, align_corners=True):
    """Bilinearly resizes a reduced 2-D template to the weight's 2-D view.

    Written as one gather of (entry, next entry) pairs and one linear blend
    per axis: the cost is linear in the output size and the gradient is one
    scatter-add per axis, on every backend.

    Args:
        template: Tensor of shape `(rows, cols)`, the reduced template.
        matrix_shape: Target `(rows, cols)`, each at least the template's.
        align_corners: Where outputs sample the template (see
            `bilinear_axis`).

    Returns:
        Tensor of shape `matrix_shape`.
    """
    for axis, target in enumerate(matrix_shape):
        source = template.shape[axis]
        if source == target:
            continue
        low, fraction = bilinear_axis(source, target, align_corners)
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
def bilinear_axis(source, target, align_corners=True):
    """Sample positions of a bilinear resize from `source` to `target` points.

    Args:
        source: Points of the input axis.
        target: Points of the output axis.
        align_corners: `True`: the first and last points of both axes
            coincide and output `j` samples input position
            `j * (source - 1) / (target - 1)`. `False`: half-pixel centers,
            `(j + 0.5) * source / target - 0.5`, clamped to the edges (as
            `keras.ops.image.resize` does).

    Returns:
        `(low, fraction)`: for every output point, the first of the two
        input points it blends (the second is the next one, clamped to the
        last) and the weight of the second.
    """
    if align_corners:
        position = np.arange(target) * ((source - 1) / max(target - 1, 1))
    else:
        position = (np.arange(target) + 0.5) * source / target - 0.5
    position = np.clip(position, 0, source - 1)
    low = np.floor(position).astype("int32")
    fraction = (position - low).astype("float32")
    return low, fraction


def bilinear_gain(source_shape, target_shape, align_corners=True):
    """Standard deviation that bilinear upsampling keeps from i.i.d. inputs.

    Each output of a bilinear resize is a convex mix of inputs, which shrinks
    the variance of independent entries. This returns the root mean square of
    the per-output mixing-weight norms, so dividing by it restores the
    variance.
    """
    gain = 1.0
    for source, target in zip(source_shape, target_shape):
        _, fraction = bilinear_axis(source, target, align_corners)
        gain *= float(np.mean((1 - fraction) ** 2 + fraction**2))
    return math.sqrt(gain)

"""Weight generation: from bank entries to a layer's weight tensor.

Every function here uses static shapes and `keras.ops` only, so generation
compiles under XLA and runs on every backend.
"""

from keras import ops

from keras_ssn.plan import UPSAMPLE


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


def combine_templates(templates, coefficients):
    """Weighted average of templates (the paper's WAvg).

    Args:
        templates: Tensor of shape `(num_templates, weight_size)`.
        coefficients: Tensor of shape `(1, num_templates)`, or `None` for a
            single template used as is.

    Returns:
        1-D tensor of `weight_size` entries.
    """
    if coefficients is None:
        return templates[0]
    return ops.matmul(coefficients, templates)[0]


def upsample_template(template, matrix_shape):
    """Bilinearly resizes a reduced 2-D template to the weight's 2-D view.

    Args:
        template: Tensor of shape `(rows, cols)`, the reduced template.
        matrix_shape: Target `(rows, cols)`.

    Returns:
        Tensor of shape `matrix_shape`.
    """
    if tuple(template.shape) == tuple(matrix_shape):
        return template
    image = ops.expand_dims(template, -1)
    resized = ops.image.resize(
        image,
        matrix_shape,
        interpolation="bilinear",
        antialias=False,
        data_format="channels_last",
    )
    return resized[..., 0]


def generate_weight(bank, spec, coefficients=None):
    """Generates one layer's weight from the bank, in the bank's dtype.

    Args:
        bank: 1-D tensor, the whole bank.
        spec: The layer's `LayerSpec`.
        coefficients: The layer's combination coefficients, shape
            `(1, spec.templates)`, or `None`.

    Returns:
        Tensor of shape `spec.shape`.
    """
    window = read_window(
        bank, spec.start, spec.size, spec.offset, spec.read_length
    )
    if spec.mode == UPSAMPLE:
        template = ops.reshape(window, spec.template_shape)
        flat = upsample_template(template, spec.matrix_shape)
    else:
        templates = ops.reshape(window, (spec.templates, spec.weight_size))
        flat = combine_templates(templates, coefficients)
    return ops.reshape(flat * spec.scale, spec.shape)

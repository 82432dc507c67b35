"""The standard deviation a layer's initializer gives its weight.

A generated weight is scaled so that it starts with the spread its layer's
own initializer would give it (He, Glorot, ...); otherwise deep models do
not train (Plummer et al., ICLR 2022, Section 3.2). The spread follows from
the initializer and the weight's shape alone, not from the values a random
draw happened to give, so two conversions of the same architecture get the
same scales and a weights-only checkpoint restores a model exactly.
"""

import math

import keras
import numpy as np

# Std of a unit normal truncated at two standard deviations, as Keras's
# `TruncatedNormal` draws it.
TRUNCATED_NORMAL_STD = 0.87962566103423978


def initial_stddev(initializer, shape, variable=None):
    """The standard deviation of the weights `initializer` draws for `shape`.

    Keras's random initializers (`VarianceScaling` and its Glorot, He and
    LeCun forms, `RandomNormal`, `TruncatedNormal`, `RandomUniform`,
    `Orthogonal`) give it in closed form. Another initializer that takes a
    `seed` is sampled once with seed 0. Initializers that give every entry
    the same value (`Zeros`, `Ones`, `Constant`) get Glorot's std, which is
    Keras's default for kernels.

    Args:
        initializer: A Keras initializer (or its name or config).
        shape: The weight's shape.
        variable: The layer's variable, whose values give the std of an
            initializer that cannot be sampled reproducibly.

    Returns:
        A positive float.
    """
    if initializer is not None:
        initializer = keras.initializers.get(initializer)
    stddev = _closed_form(initializer, shape)
    if stddev is None:
        stddev = _sampled(initializer, shape, variable)
    if not stddev > 0:
        fan_in, fan_out = fans(shape)
        stddev = math.sqrt(2.0 / (fan_in + fan_out))
    return float(stddev)


def fans(shape, input_axes=None, output_axes=None):
    """`(fan_in, fan_out)` of a weight shape, as Keras's initializers count them.

    With `input_axes` and `output_axes` (set by `EinsumDense` on its
    variance-scaling initializer), the fans are the products of those axes.
    """
    if input_axes is not None and output_axes is not None:
        return (math.prod(shape[axis] for axis in input_axes),
                math.prod(shape[axis] for axis in output_axes))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _closed_form(initializer, shape):
    initializers = keras.initializers
    if isinstance(initializer, initializers.VarianceScaling):
        fan_in, fan_out = fans(shape, initializer.input_axes, initializer.output_axes)
        fan = {"fan_in": fan_in, "fan_out": fan_out,
               "fan_avg": (fan_in + fan_out) / 2}[initializer.mode]
        return math.sqrt(initializer.scale / max(1.0, fan))
    if isinstance(initializer, initializers.TruncatedNormal):
        return initializer.stddev * TRUNCATED_NORMAL_STD
    if isinstance(initializer, initializers.RandomNormal):
        return initializer.stddev
    if isinstance(initializer, initializers.RandomUniform):
        return (initializer.maxval - initializer.minval) / math.sqrt(12)
    if isinstance(initializer, initializers.Orthogonal):
        rows, cols = math.prod(shape[:-1]), shape[-1]
        return initializer.gain / math.sqrt(max(rows, cols))
    if isinstance(initializer, (initializers.Zeros, initializers.Ones,
                                initializers.Constant)):
        return 0.0
    return None


def _sampled(initializer, shape, variable):
    config = initializer.get_config() if initializer is not None else {}
    if "seed" in config:
        seeded = type(initializer).from_config({**config, "seed": 0})
        values = seeded(shape, dtype="float32")
    elif variable is not None:
        values = variable
    else:
        return None
    return float(np.std(keras.ops.convert_to_numpy(values)))

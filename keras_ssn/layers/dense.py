"""Shared variants of `Dense` and `EinsumDense`.

Both apply their kernel through `apply_weight`, so that the kernel is
generated where the matmul (einsum) uses it and again for its backward
pass; bias and activation are the base class's.
"""

import keras
from keras import ops

from keras_ssn.layers.base import SharedWeightMixin
from keras_ssn.layers.variants import generated_weight_property
from keras_ssn.layers.variants import shared_variant


def _bias_and_activation(layer, x):
    """`Dense.call` and `EinsumDense.call` after the kernel's op."""
    if layer.bias is not None:
        x = ops.add(x, layer.bias)
    if layer.activation is not None:
        x = layer.activation(x)
    return x


class RematerializedDenseCall:
    """`Dense.call`, with the kernel applied through `apply_weight`."""

    def call(self, inputs, training=None):
        return _bias_and_activation(self, self.apply_weight("kernel", ops.matmul, inputs))


SharedDense = shared_variant(keras.layers.Dense, call=RematerializedDenseCall)


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedEinsumDense(SharedWeightMixin, keras.layers.EinsumDense):
    """`EinsumDense` whose kernel is generated from the model's weight bank."""

    base_class = keras.layers.EinsumDense
    shared_weights = ("kernel",)
    attribute_prefixes = {}
    kernel = generated_weight_property("kernel")

    def call(self, inputs, training=None):
        x = self.apply_weight(
            "kernel", lambda x, kernel: ops.einsum(self.equation, x, kernel), inputs
        )
        return _bias_and_activation(self, x)

    @classmethod
    def initializer_of(cls, layer, name):
        """The initializer `EinsumDense.build` draws the kernel with.

        A variance-scaling initializer (Glorot, He, ...) counts its fans
        along the kernel's input and output axes of the layer's equation
        (for `MultiHeadAttention`'s `(dim, heads, head_dim)` query kernel,
        `dim` in and `heads * head_dim` out), not along the last two axes.
        """
        return einsum_initializer(super().initializer_of(layer, name), layer.equation)

    @classmethod
    def output_units(cls, layer, name, shape):
        """The product of the kernel's trailing axes that the output keeps.

        `MultiHeadAttention`'s `(dim, heads, head_dim)` query kernel has
        `heads * head_dim` output units: a slice of `head_dim` entries
        would give every head the same projection. The last axis where the
        output does not keep it.
        """
        kernel, output = _kernel_and_output(layer.equation)
        units = 1
        for letter, size in reversed(list(zip(kernel, shape))):
            if letter not in output:
                break
            units *= size
        return units if kernel[-1] in output else shape[-1]


def einsum_initializer(initializer, equation):
    """`initializer` with the fan axes `EinsumDense` gives it for `equation`.

    As `EinsumDense.build`: a kernel axis whose letter appears in the output
    is an output axis, any other an input axis. Other initializers, and
    variance-scaling ones that already name their axes, are returned as is.
    """
    initializer = keras.initializers.get(initializer)
    if not isinstance(initializer, keras.initializers.VarianceScaling) or (
        initializer.input_axes is not None and initializer.output_axes is not None
    ):
        return initializer
    kernel, output = _kernel_and_output(equation)
    config = dict(
        initializer.get_config(),
        input_axes=[i for i, letter in enumerate(kernel) if letter not in output],
        output_axes=[i for i, letter in enumerate(kernel) if letter in output],
    )
    return type(initializer).from_config(config)


def _kernel_and_output(equation):
    """The kernel's and the output's axis letters in an `EinsumDense` equation."""
    operands, output = equation.replace(" ", "").split("->")
    return operands.split(",")[1], output

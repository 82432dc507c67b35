"""Shared variants of the convolution layers.

Standard, depthwise and transposed convolutions read one `kernel`, separable
convolutions a `depthwise_kernel` and a `pointwise_kernel`; the shared
variants generate them from the model's weight bank.
"""

import keras
from keras import ops

from keras_ssn.layers.variants import shared_variant


class RematerializedConvCall:
    """The call of `Conv1D`, `Conv2D` and `Conv3D`, with the kernel applied
    through `apply_weight` (generated where the convolution uses it)."""

    def call(self, inputs):
        padding = self.padding
        if padding == "causal":  # Conv1D only
            inputs = ops.pad(inputs, self._compute_causal_padding())
            padding = "valid"

        def convolution(x, kernel):
            return ops.conv(
                x,
                kernel,
                strides=list(self.strides),
                padding=padding,
                dilation_rate=self.dilation_rate,
                data_format=self.data_format,
            )

        outputs = self.apply_weight("kernel", convolution, inputs)
        if self.use_bias:
            if self.data_format == "channels_last":
                bias_shape = (1,) * (self.rank + 1) + (self.filters,)
            else:
                bias_shape = (1, self.filters) + (1,) * self.rank
            outputs = ops.add(outputs, ops.reshape(self.bias, bias_shape))
        if self.activation is not None:
            return self.activation(outputs)
        return outputs


def _shared_conv(base_class, weights=("kernel",), attribute_prefixes=None, call=None):
    return shared_variant(base_class, weights, attribute_prefixes, call=call)


def _shared_depthwise(base_class):
    # Keeps `kernel`'s initializer, regularizer and constraint at `depthwise_*`.
    return _shared_conv(base_class, attribute_prefixes={"kernel": "depthwise"})


def _shared_separable(base_class):
    return _shared_conv(
        base_class,
        ("depthwise_kernel", "pointwise_kernel"),
        {"depthwise_kernel": "depthwise", "pointwise_kernel": "pointwise"},
    )



SharedConv1D = _shared_conv(keras.layers.Conv1D, call=RematerializedConvCall)
SharedConv2D = _shared_conv(keras.layers.Conv2D, call=RematerializedConvCall)
SharedConv3D = _shared_conv(keras.layers.Conv3D, call=RematerializedConvCall)
SharedDepthwiseConv1D = _shared_depthwise(keras.layers.DepthwiseConv1D)
SharedDepthwiseConv2D = _shared_depthwise(keras.layers.DepthwiseConv2D)
SharedConv1DTranspose = _shared_conv(keras.layers.Conv1DTranspose)
SharedConv2DTranspose = _shared_conv(keras.layers.Conv2DTranspose)
SharedConv3DTranspose = _shared_conv(keras.layers.Conv3DTranspose)
SharedSeparableConv1D = _shared_separable(keras.layers.SeparableConv1D)
SharedSeparableConv2D = _shared_separable(keras.layers.SeparableConv2D)

CONV_CLASSES = (
    SharedConv1D,
    SharedConv2D,
    SharedConv3D,
    SharedDepthwiseConv1D,
    SharedDepthwiseConv2D,
    SharedConv1DTranspose,
    SharedConv2DTranspose,
    SharedConv3DTranspose,
    SharedSeparableConv1D,
    SharedSeparableConv2D,
)

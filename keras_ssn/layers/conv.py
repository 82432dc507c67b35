"""Shared variants of the convolution layers.

Standard, depthwise and transposed convolutions read one `kernel`, separable
convolutions a `depthwise_kernel` and a `pointwise_kernel`; the shared
variants generate them from the model's weight bank.
"""

import keras

from keras_ssn.layers.base import shared_variant


def _shared_conv(base_class, weights=("kernel",), attribute_prefixes=None):
    return shared_variant(base_class, weights, attribute_prefixes)


def _shared_depthwise(base_class):
    # Keeps `kernel`'s initializer, regularizer and constraint at `depthwise_*`.
    return _shared_conv(base_class, attribute_prefixes={"kernel": "depthwise"})


def _shared_separable(base_class):
    return _shared_conv(
        base_class,
        ("depthwise_kernel", "pointwise_kernel"),
        {"depthwise_kernel": "depthwise", "pointwise_kernel": "pointwise"},
    )



SharedConv1D = _shared_conv(keras.layers.Conv1D)
SharedConv2D = _shared_conv(keras.layers.Conv2D)
SharedConv3D = _shared_conv(keras.layers.Conv3D)
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
